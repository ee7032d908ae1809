"""One trainer for one SAE or a vmapped population of them (sweeps).

The step is a pure function (state, hyper, batch, factor) -> (state, metrics) under
`eqx.filter_jit`; a population is the same function under `eqx.filter_vmap` over stacked
states and hyperparameters, all members reading the same batch. The batch is sharded over
the devices of a 1-D mesh ("data"), the state replicated, so XLA all-reduces the gradients.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, Int

from mechinterp.formats.errors import SAEError
from sae_jax.architectures import get
from sae_jax.checkpoint import Checkpointer, tree_bytes
from sae_jax.config import SAEConfig, TrainConfig, to_dict
from sae_jax.data_init import data_init
from sae_jax.guards import Diverged, check_resume, run_settings, window_problem
from sae_jax.losses import Hyper, loss_fn, make_hyper
from sae_jax.modules import SAE, init_sae, normalise_decoder, split_row


class TrainState(eqx.Module):
    sae: SAE
    opt_state: Any
    step: Int[Array, ""]
    key: Array
    since_fired: Int[Array, " d_sae"]
    """Training tokens since each latent last fired (capped)."""
    threshold: Float[Array, ""]
    """batchtopk: moving estimate of the smallest kept activation (the inference threshold)."""


def optimizer(tcfg: TrainConfig) -> optax.GradientTransformation:
    # the learning rate is applied in the step, so it can be a per-member array in sweeps
    return optax.scale_by_adam(b1=tcfg.b1, b2=tcfg.b2)


def init_state(scfg: SAEConfig, tcfg: TrainConfig, key, b_dec, W_skip=None) -> TrainState:
    k_init, k_run = jax.random.split(key)
    sae = init_sae(scfg, k_init, b_dec, W_skip)
    return TrainState(sae, optimizer(tcfg).init(sae), jnp.int32(0), k_run,
                      jnp.zeros((scfg.d_sae,), jnp.int32), jnp.float32(0))


def lr_scale(step, tcfg: TrainConfig):
    s, n = step.astype(jnp.float32), tcfg.steps
    warm = max(1, round(tcfg.warmup_frac * n))
    decay = max(1, round(tcfg.decay_frac * n))
    w = jnp.minimum(1.0, (s + 1) / warm) if tcfg.warmup_frac > 0 else 1.0
    d = jnp.clip((n - s) / decay, 0.0, 1.0) if tcfg.decay_frac > 0 else 1.0
    return w * d


def l1_scale(step, tcfg: TrainConfig):
    if tcfg.l1_warmup_frac <= 0:
        return jnp.float32(1)
    return jnp.minimum(1.0, (step.astype(jnp.float32) + 1) / max(1, round(tcfg.l1_warmup_frac * tcfg.steps)))


def _remove_parallel(g, W):
    """Drop the gradient component along each (unit-norm) decoder row."""
    return g - (g * W).sum(-1, keepdims=True) * W


def make_step(scfg: SAEConfig, tcfg: TrainConfig, with_aux: bool = True):
    """with_aux: include the topk family's aux-k term (fit compiles a second step without it
    and takes that one while no latent is dead, when the term is 0)."""
    opt, unit_norm = optimizer(tcfg), get(scfg.arch).unit_norm_decoder

    def step(state: TrainState, hyper: Hyper, x_raw: Float[Array, "b d_in"], factor) -> tuple[TrainState, dict]:
        x = x_raw * factor
        dead = state.since_fired >= scfg.dead_tokens
        (loss, st), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(
            state.sae, x, hyper, l1_scale(state.step, tcfg), dead, scfg, with_aux)
        if unit_norm:
            grads = eqx.tree_at(lambda g: g.W_dec, grads, _remove_parallel(grads.W_dec, state.sae.W_dec))
        updates, opt_state = opt.update(grads, state.opt_state)
        lr = hyper.lr * lr_scale(state.step, tcfg)
        sae = eqx.apply_updates(state.sae, jax.tree.map(lambda u: -lr * u, updates))
        if unit_norm:
            sae = normalise_decoder(sae)
        since = jnp.where(st["fired"], 0, jnp.minimum(state.since_fired + x.shape[0], 1 << 30))
        thr = state.threshold
        if get(scfg.arch).tracks_threshold:
            bt = st["batch_threshold"]
            new = jnp.where(state.step == 0, bt, (1 - scfg.threshold_ema) * thr + scfg.threshold_ema * bt)
            thr = jnp.where(jnp.isfinite(bt), new, thr)
        new_state = TrainState(sae, opt_state, state.step + 1, jax.random.split(state.key)[0], since, thr)
        metrics = dict(loss=loss, mse=st["mse"], fvu=st["fvu"], l0=st["l0"], aux=st["aux"],
                       sparsity=st["sparsity"], lr=lr, dead=dead.sum(), dead_next=(since >= scfg.dead_tokens).sum())
        return new_state, metrics

    return step


def over_members(fn, chunk: int):
    """fn(state, hyper, *shared) over stacked members: vmapped within chunks of `chunk`
    members, the chunks in sequence (lax.map), every member reading the same shared inputs."""
    def run(states, hypers, *shared):
        return jax.lax.map(lambda sh: fn(sh[0], sh[1], *shared), (states, hypers), batch_size=chunk)
    return run


def sweep_chunk(tcfg: TrainConfig, n_members: int, devices) -> int:
    if tcfg.sweep_chunk is not None:
        return min(tcfg.sweep_chunk, n_members)
    return 1 if devices[0].platform == "cpu" else n_members


def _zero_latents(tree: SAE, dead) -> SAE:
    return eqx.tree_at(lambda s: (s.W_enc, s.b_enc, s.W_dec), tree,
                       (jnp.where(dead[None, :], 0.0, tree.W_enc), jnp.where(dead, 0.0, tree.b_enc),
                        jnp.where(dead[:, None], 0.0, tree.W_dec)))


def make_resample(scfg: SAEConfig):
    """relu: dead latents get an input direction drawn with probability ~ squared error
    (Anthropic, 2023): encoder column at 0.2x the mean live encoder norm, decoder row at the
    mean live decoder norm, b_enc = 0, their Adam moments zeroed."""

    def resample(state: TrainState, rows: Float[Array, "b d_row"]) -> TrainState:
        sae = state.sae
        x, y = split_row(rows, scfg)
        dead = state.since_fired >= scfg.dead_tokens
        err = ((sae.decode(jax.nn.relu(sae.pre_acts(x))) + sae.skip_path(x) - y) ** 2).sum(-1)
        key, sub = jax.random.split(state.key)
        # inverse-CDF sampling: categorical's Gumbel trick would draw a [d_sae, batch] tensor, which
        # XLA-CPU fused with the matmuls above into one kernel measured at 16 s
        pick = jax.random.choice(sub, x.shape[0], (scfg.d_sae,), p=err + 1e-12)
        unit = lambda v: v / jnp.maximum(jnp.linalg.norm(v, axis=1, keepdims=True), 1e-8)
        v_in, v_out = unit(x[pick] - sae.input_offset), unit(y[pick] - sae.b_dec)  # the same for an SAE
        alive = (~dead).astype(jnp.float32)
        n_alive = jnp.maximum(alive.sum(), 1.0)
        enc_norm = jnp.where(alive.sum() > 0, (jnp.linalg.norm(sae.W_enc, axis=0) * alive).sum() / n_alive, 1.0)
        dec_norm = jnp.where(alive.sum() > 0, (jnp.linalg.norm(sae.W_dec, axis=1) * alive).sum() / n_alive,
                             scfg.dec_init_norm)
        new = eqx.tree_at(lambda s: (s.W_enc, s.b_enc, s.W_dec), sae,
                          (jnp.where(dead[None, :], 0.2 * enc_norm * v_in.T, sae.W_enc),
                           jnp.where(dead, 0.0, sae.b_enc),
                           jnp.where(dead[:, None], dec_norm * v_out, sae.W_dec)))
        opt = state.opt_state._replace(mu=_zero_latents(state.opt_state.mu, dead),
                                       nu=_zero_latents(state.opt_state.nu, dead))
        return TrainState(new, opt, state.step, key, jnp.where(dead, 0, state.since_fired), state.threshold)

    return resample


# ---------------------------------------------------------------------------- the loop


@dataclass
class FitResult:
    state: TrainState
    """Final state (stacked along axis 0 for a population)."""
    hypers: Hyper
    factor: float | np.ndarray
    """normalisation_factor of the store (a vector for a transcoder's paired rows)."""
    history: list[dict]
    steps: int
    tokens: int
    train_windows: np.ndarray
    eval_windows: np.ndarray
    resumed_from: int = 0
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


def normalisation_factor(store):
    """What the rows are scaled by so each site's mean norm is sqrt(its width): a float, or for a
    transcoder's paired rows a vector [d_in + d_out] (the input's factor, then the target's)."""
    paired = hasattr(store, "mean_norms")
    widths, norms = ((store.d_in, store.d_out), store.mean_norms) if paired else ((store.d_model,), (store.mean_norm,))
    for n in norms:
        if not n > 0 or not math.isfinite(n):
            raise SAEError(f"store {store} has mean norm {n}; its stats are missing or it is all zeros")
    factors = [math.sqrt(d) / n for d, n in zip(widths, norms)]
    return np.repeat(np.float32(factors), widths) if paired else factors[0]


def in_out_factors(factor) -> tuple[float, float]:
    """(input factor, target factor) of a normalisation_factor."""
    f = np.atleast_1d(factor)
    return float(f[0]), float(f[-1])


def _prefetch(it, depth: int = 2):
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker():
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        pass
                if stop.is_set():
                    return
        except BaseException as e:  # re-raised in the consumer
            q.put(e)

    threading.Thread(target=worker, daemon=True).start()

    def gen():
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
    return gen()


def _all_finite(tree) -> bool:
    return all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array)))


def fit(store, scfg: SAEConfig, tcfg: TrainConfig, ckpt_dir: str | Path, members: list[dict] | None = None,
        devices=None, stop_at: int | None = None, desc: str = "train") -> FitResult:
    """Train one SAE (members=None) or a population (members: dicts with lr, l1, k, seed),
    resuming from the latest checkpoint in ckpt_dir. stop_at: stop at that step without a
    final checkpoint, as a crash would (tests)."""
    if store.d_model != scfg.d_row:
        raise SAEError(f"store rows are {store.d_model} wide but the SAE config says {scfg.d_row}")
    pop = members is not None
    devices = list(devices or jax.devices())
    if tcfg.batch % len(devices):
        raise SAEError(f"--batch {tcfg.batch} is not divisible by the {len(devices)} devices")
    mesh = Mesh(np.array(devices), ("data",))
    replicated, data_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

    factor = normalisation_factor(store)
    train_w, eval_w = store.split(tcfg.eval_fraction, seed=0)
    if len(train_w) == 0:
        raise SAEError("the store has no training windows left after the held-out split; dump more tokens")
    b_dec, W_skip = data_init(store, train_w, factor, scfg, tcfg)

    step_fns = [make_step(scfg, tcfg, with_aux=False), make_step(scfg, tcfg)]  # [no latent dead, some dead]
    resample = make_resample(scfg)
    resample_fn = lambda st, hyper, x: resample(st, x)
    if pop:
        for m in members:
            if scfg.topk_family and not 1 <= m["k"] <= scfg.kmax:
                raise SAEError(f"sweep k={m['k']} is outside [1, {scfg.kmax}]")
        hypers = jax.tree.map(lambda *xs: jnp.stack(xs),
                              *[make_hyper(m["lr"], m["l1"], m["k"]) for m in members])
        keys = jnp.stack([jax.random.PRNGKey(m["seed"]) for m in members])
        state = eqx.filter_vmap(lambda k: init_state(scfg, tcfg, k, b_dec, W_skip))(keys)
        chunk = sweep_chunk(tcfg, len(members), devices)
        step_fns, resample_fn = [over_members(f, chunk) for f in step_fns], over_members(resample_fn, chunk)
    else:
        hypers = make_hyper(tcfg.lr_for(scfg.d_sae), tcfg.l1_for(scfg.arch), scfg.k)
        state = init_state(scfg, tcfg, jax.random.PRNGKey(tcfg.seed), b_dec, W_skip)
    step_fns, resample_fn = [eqx.filter_jit(f) for f in step_fns], eqx.filter_jit(resample_fn)

    ckpt = Checkpointer(ckpt_dir)
    settings = run_settings(store, scfg, tcfg, members)
    history: list[dict] = []
    start = 0
    latest = ckpt.latest_step()
    if latest is not None:
        meta = ckpt.read_meta(latest)
        check_resume(meta.get("settings"), settings, ckpt_dir)
        state = ckpt.restore(latest, state)
        history, start = meta["history"], latest
    if start < tcfg.steps:
        ckpt.check_run_space(state, tree_bytes(state.sae))
    state = jax.device_put(state, replicated)
    hypers = jax.device_put(hypers, replicated)
    window: dict[str, list] = {"fvu": [], "l0": []}  # per step since the last checkpoint

    def kept() -> str:
        last = ckpt.latest_step()
        return (f"the last healthy checkpoint (step {last}) is kept in {ckpt_dir}" if last is not None
                else "no checkpoint was saved")

    def save(step_done: int):
        problem = None if _all_finite(state) else f"parameters became non-finite before step {step_done}"
        problem = problem or window_problem(window["fvu"], window["l0"], history[0]["fvu"] if history else np.inf, pop)
        if problem:
            lr = np.atleast_1d(jax.device_get(hypers.lr)).max()
            raise Diverged(f"training diverged: {problem}; {kept()}; delete {Path(ckpt_dir).parent} (or use "
                           f"another --out) and re-run with a lower --lr (now {lr:g})")
        ckpt.save(step_done, state, dict(settings=settings, history=history, factor=in_out_factors(factor),
                                         sae_config=to_dict(scfg), train_config=to_dict(tcfg)))
        window["fvu"], window["l0"] = [], []

    end = tcfg.steps if stop_at is None else min(stop_at, tcfg.steps)
    period, stop_resample = tcfg.resample_period, int(0.8 * tcfg.steps)
    t_start, tok_s = time.perf_counter(), 0.0
    bar = None
    if start < end:
        it = _prefetch(store.batches(tcfg.batch, windows=train_w, seed=tcfg.seed, start_batch=start, skip_bos=True))
        if tcfg.progress:
            from tqdm import tqdm
            bar = tqdm(total=tcfg.steps, initial=start, desc=desc, dynamic_ncols=True)
    step = start
    any_dead = scfg.topk_family and bool(np.any(np.asarray(jax.device_get(state.since_fired)) >= scfg.dead_tokens))
    try:
        for step in range(start, end):
            t0 = time.perf_counter()
            x = jax.device_put(next(it), data_sharding)
            if get(scfg.arch).resamples_dead and step > 0 and step % period == 0 and step < stop_resample:
                state = resample_fn(state, hypers, x * factor)
            state, m = step_fns[any_dead](state, hypers, x, factor)
            m = jax.device_get(m)
            any_dead = scfg.topk_family and bool(np.any(m["dead_next"]))
            loss = np.atleast_1d(m["loss"])
            if not np.isfinite(loss).all():
                who = f" (sweep member {int(np.argmin(np.isfinite(loss)))})" if pop else ""
                lr = np.atleast_1d(jax.device_get(hypers.lr)).max()
                raise Diverged(f"loss became non-finite ({loss[~np.isfinite(loss)][0]}) at step {step}{who}; "
                               f"{kept()}; delete {Path(ckpt_dir).parent} (or use another --out) and re-run with "
                               f"a lower --lr (now {lr:g})")
            window["fvu"].append(m["fvu"])
            window["l0"].append(m["l0"])
            dt = time.perf_counter() - t0
            tok_s = tcfg.batch / dt if tok_s == 0 else 0.9 * tok_s + 0.1 * tcfg.batch / dt
            if step % tcfg.log_every == 0 or step == tcfg.steps - 1:
                history.append({"step": step, **{k: np.asarray(v).tolist() for k, v in m.items()},
                                "tokens_per_s": tok_s})
            if bar is not None:
                mean = lambda k: float(np.mean(m[k]))
                bar.set_postfix(loss=f"{mean('loss'):.4g}", L0=f"{mean('l0'):.1f}", FVU=f"{mean('fvu'):.3f}",
                                tok_s=f"{tok_s:,.0f}", refresh=False)
                bar.update(1)
            if (step + 1) % tcfg.ckpt_every == 0 or step + 1 == tcfg.steps:
                save(step + 1)
    except KeyboardInterrupt:
        done = int(np.atleast_1d(jax.device_get(state.step))[0])
        if done > (ckpt.latest_step() or 0):
            save(done)
        raise
    finally:
        if bar is not None:
            bar.close()
        ckpt.close()
    return FitResult(state=state, hypers=hypers, factor=factor, history=history, steps=end,
                     tokens=end * tcfg.batch, train_windows=train_w, eval_windows=eval_w, resumed_from=start,
                     wall_s=time.perf_counter() - t_start)


def inference_threshold(state: TrainState, scfg: SAEConfig):
    """[.., d_sae] threshold used at inference (learned, or estimated during training)."""
    if get(scfg.arch).tracks_threshold:
        return jnp.broadcast_to(state.threshold[..., None], state.sae.log_threshold.shape)
    return state.sae.threshold


def export_weights(sae: SAE, threshold, arch: str) -> dict[str, np.ndarray]:
    w = {k: np.asarray(getattr(sae, k)) for k in ("W_enc", "b_enc", "W_dec", "b_dec", "W_skip") if getattr(sae, k) is not None}
    if get(arch).export == "jumprelu":
        w["threshold"] = np.asarray(threshold)
    return w


def calibrate_threshold(res: FitResult, store, scfg: SAEConfig, tcfg: TrainConfig, n_batches: int = 4,
                        population: bool = False) -> np.ndarray:
    """batchtopk: the inference threshold, as the mean over a few training batches of the
    exact batch-level cut (the (batch * k)-th largest relu(pre) of the final SAE). Training
    caps each token at k_max candidates, and the moving average lags behind the growing
    activations of short runs; this makes the inference L0 match k. [n_members] or scalar."""
    kmax = scfg.k  # the largest k of a sweep

    def one(sae, hyper, x):
        z = jax.nn.relu(sae.pre_acts(split_row(x * res.factor, scfg)[0])).reshape(-1)
        top = jax.lax.top_k(z, x.shape[0] * kmax)[0]
        return top[x.shape[0] * hyper.k - 1]
    fn = eqx.filter_jit(eqx.filter_vmap(one, in_axes=(0, 0, None)) if population else one)
    it = store.batches(tcfg.batch, windows=res.train_windows, seed=tcfg.seed + 1, skip_bos=True)
    vals = [np.asarray(jax.device_get(fn(res.state.sae, res.hypers, jnp.asarray(next(it))))) for _ in range(n_batches)]
    return np.mean(vals, axis=0)
