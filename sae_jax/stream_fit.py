"""Train many SAEs or transcoders at once from a live stream instead of a dump.

A PyTorch producer process (extract/stream.py) runs the model over the corpus and writes each
batch's rows for every unit (a transcoder's mlp_in | mlp_out, an SAE's site) into a ring of
shared-memory slots (mechinterp/formats/ring.py); this process trains every unit on each slot and
hands the slot back. The two processes overlap on the cores, the ring bounds the memory, and the
disk holds only a small held-out dump (normalisation, initialisation, held-out metrics, the
exports' reference store) and the checkpoints.

Every unit checkpoints at the same steps with the batch number it reached; a resumed run restarts
the producer at that batch, whose rows (and their shuffle) do not depend on where it started, so
an interrupted run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from extract.corpus import DEFAULT_CORPUS
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.errors import SAEError
from mechinterp.formats.ring import END, FAILED, FULL, PLAN, Doorbell, Ring, RingError, default_ring_parent
from sae_jax.checkpoint import Checkpointer, tree_bytes
from sae_jax.config import SAEConfig, TrainConfig, to_dict
from sae_jax.data_init import data_init
from sae_jax.guards import Diverged, check_resume, run_settings, window_problem
from sae_jax.losses import loss_fn, make_hyper
from sae_jax.train import FitResult, in_out_factors, init_state, make_step, normalisation_factor


@dataclass(frozen=True)
class StreamConfig:
    """Where a stream's rows come from, and the ring that carries them."""
    model: str = DEFAULT_MODEL
    """Registry name, Hugging Face repo id or local model directory the producer runs."""
    corpus: str = DEFAULT_CORPUS
    """Corpus spec (see extract/corpus.py); the stream reads its training documents."""
    text_field: str = "text"
    """Field / column holding the text in .jsonl, parquet and Hugging Face corpora."""
    ctx: int = field(default=128, metadata=bounds(2))
    """Tokens per window, BOS included."""
    heldout_tokens: int = field(default=16_384, metadata=bounds(64))
    """Tokens of the dump written first (OUT/heldout, float16): normalisation and the start read its
    first --init_tokens, the held-out metrics the rest; the stream starts after its windows."""
    ring_slots: int | None = field(default=None, metadata=bounds(2))
    """Batches the ring holds (each slot: batch x every unit's row width, float32); None: twice
    --shuffle_batches, so the producer forwards the next buffer while the trainer reads this one."""
    ring_dir: str | None = None
    """Folder for the ring (None: /dev/shm where there is one, else the temporary folder)."""
    shuffle_batches: int = field(default=4, metadata=bounds(1))
    """Rows are shuffled within buffers of this many batches (consecutive tokens are alike)."""
    producer_threads: int = field(default=1, metadata=bounds(1))
    """Torch threads of the producer (the rest of the cores train)."""
    forward_windows: int = field(default=8, metadata=bounds(1))
    """Windows per forward pass of the producer."""
    curve_every: int = field(default=100, metadata=bounds(1))
    """Record every unit's held-out FVU every this many steps (on --curve_tokens held-out rows, with
    the training-time sparsity): the FVU-against-tokens curve."""
    curve_tokens: int = field(default=2048, metadata=bounds(1))
    """Held-out rows per unit the curve is measured on (kept in memory)."""
    producer_device: str = "cpu"
    """Torch device of the producer: cpu, cuda, cuda:N, mps, auto."""

    def __post_init__(self):
        check_bounds(self)

    @property
    def slots(self) -> int:
        return self.ring_slots if self.ring_slots is not None else 2 * self.shuffle_batches

    def producer(self, units: list[list[str]], skip_windows: int, batches: int, tcfg: TrainConfig) -> dict:
        """The ring's instructions to the producer (the seed and held-out fraction are the training run's)."""
        return dict(model=self.model, device=self.producer_device, units=units, corpus=self.corpus,
                    text_field=self.text_field, ctx=self.ctx, seed=tcfg.seed, eval_fraction=tcfg.eval_fraction,
                    skip_windows=skip_windows, batches=batches, shuffle_batches=self.shuffle_batches,
                    threads=self.producer_threads, forward_windows=self.forward_windows)

    def weights_settings(self) -> dict:
        """What shapes the rows (so a resume must ask for the same)."""
        return {"stream corpus": self.corpus, "stream ctx": self.ctx, "stream heldout_tokens": self.heldout_tokens,
                "stream shuffle_batches": self.shuffle_batches}


@dataclass(frozen=True)
class StreamSite:
    """train-sae from a stream instead of a store."""
    stream: bool = False
    """Train from a live stream of the model's forward over a corpus (--model, --corpus, ...) instead of
    --acts: no activations on disk beyond a small held-out dump in OUT/heldout."""
    hook: str | None = None
    """With --stream: the site, e.g. blocks.15.hook_resid_pre (None: the middle layer's hook_resid_pre,
    a dump's default)."""


def heldout_dump(cfg: StreamConfig, tcfg: TrainConfig, hooks: list[str], layers: str | None, out: Path) -> None:
    """The held-out dump, written by `mechinterp dump` in a child process (this one stays free of torch)."""
    argv = [sys.executable, "-m", "mechinterp", "dump", "--model", cfg.model, "--out", str(out),
            "--n_tokens", str(cfg.heldout_tokens), "--ctx", str(cfg.ctx), "--seed", str(tcfg.seed),
            "--eval_fraction", str(tcfg.eval_fraction), "--corpus", cfg.corpus, "--text_field", cfg.text_field,
            "--device", cfg.producer_device, *(["--layers", layers] if layers else []),
            *([] if tcfg.progress else ["--no_progress"])]
    for h in hooks:
        argv += ["--hook", h]
    code = subprocess.run(argv).returncode
    if code:
        raise SAEError(f"the held-out dump into {out} failed (exit {code}, its message is above); fix that and "
                       "re-run the same command")


def heldout_split(store, tcfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(init windows, held-out windows) of the held-out dump: the stream never trains on its windows, so
    all but the first init_tokens' windows (which set the start) are held out."""
    n_init = math.ceil(tcfg.init_tokens / store.rows_per_window)
    if store.n_windows <= n_init:
        raise SAEError(f"--heldout_tokens ({store.n_rows} rows dumped) must exceed --init_tokens {tcfg.init_tokens}, "
                       "which set the start: the rest are the held-out tokens")
    windows = np.arange(store.n_windows)
    return windows[:n_init], windows[n_init:]


class ProducerProcess:
    """The producer child and this side of its doorbell."""

    def __init__(self, ring: Ring, start_batch: int):
        full_r, full_w = os.pipe()
        free_r, free_w = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-m", "extract.stream", str(ring.folder), str(free_r),
                                      str(full_w), str(start_batch)], pass_fds=(free_r, full_w))
        os.close(free_r)
        os.close(full_w)
        self.ring, self.bell = ring, Doorbell(full_r, free_w)
        for slot in range(ring.layout["slots"]):
            self.bell.free(slot)

    def receive(self, expect: int) -> tuple[int, int, int]:
        """(kind, slot, value) of the next message of kind `expect` or END; one clear error when the
        producer failed or died."""
        while True:
            try:
                msg = self.bell.wait_message(timeout=5.0)
            except TimeoutError:
                if self.proc.poll() is None:
                    continue
                msg = None
            if msg is None or msg[0] == FAILED:
                self.proc.wait()
                why = self.ring.error()
                raise SAEError("the stream's producer " + (f"failed: {why.splitlines()[0]}" if why else
                               f"died (exit {self.proc.returncode}) without a word") +
                               "; what was trained is saved, re-run the same command to resume")
            if msg[0] in (expect, END):
                return msg

    def stop(self) -> None:
        self.bell.close()  # the producer sees the pipe close and ends
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Unit:
    """One SAE or transcoder of the stream: its held-out store and where it trains."""
    name: str
    store: object
    out: Path
    hooks: list[str]


def fit_stream(units: list[Unit], scfg: SAEConfig, tcfg: TrainConfig, cfg: StreamConfig, devices=None,
               stop_at: int | None = None, say=print) -> tuple[list[FitResult], TrainConfig]:
    """Train every unit from one stream, resuming from their checkpoints. Returns their FitResults and the
    TrainConfig trained (fewer steps when the corpus held fewer batches). stop_at: stop there as a crash would."""
    devices = list(devices or jax.devices())
    if tcfg.batch % len(devices):
        raise SAEError(f"--batch {tcfg.batch} is not divisible by the {len(devices)} devices")
    skip_windows = units[0].store.meta.corpus["train_windows"][1]

    factors, splits, states, ckpts, curve_rows = [], [], [], [], []
    hyper = make_hyper(tcfg.lr_for(scfg.d_sae), tcfg.l1_for(scfg.arch), scfg.k)
    for u in units:
        factors.append(normalisation_factor(u.store))
        splits.append(heldout_split(u.store, tcfg))
        curve_rows.append(_curve_rows(u.store, splits[-1][1], cfg.curve_tokens) * factors[-1])
        b_dec, W_skip = data_init(u.store, splits[-1][0], factors[-1], scfg, tcfg)
        states.append(init_state(scfg, tcfg, jax.random.PRNGKey(tcfg.seed), b_dec, W_skip))
        ckpts.append(Checkpointer(u.out / "checkpoints"))
    try:
        latest = [c.latest_step() for c in ckpts]
        start = 0 if any(s is None for s in latest) else min(latest)
        if any(s is not None for s in latest) and start == 0:
            say(f"warning: only some units have checkpoints ({sum(s is not None for s in latest)} of {len(units)}); "
                "training all from step 0")
        # the settings asked for (a corpus that holds fewer batches trains fewer steps, the same on every resume)
        settings = [dict(run_settings(u.store, scfg, tcfg, None), **cfg.weights_settings()) for u in units]
        histories: list[list[dict]] = [[] for _ in units]
        curves: list[list[list]] = [[] for _ in units]
        trained = tcfg
        if start:
            for i, c in enumerate(ckpts):
                meta = c.read_meta(start)
                check_resume(meta.get("settings"), settings[i], c.dir)
                states[i] = c.restore(start, states[i])
                histories[i] = [h for h in meta["history"] if h["step"] < start]
                curves[i] = [p for p in meta.get("curve", []) if p[0] <= start * tcfg.batch]
            trained = replace(tcfg, steps=meta["train_config"]["steps"])
        end = trained.steps if stop_at is None else min(stop_at, trained.steps)
        wall, rate = 0.0, None
        if start < end:
            loop = _Loop(units, states, histories, curves, curve_rows, hyper, factors, ckpts, settings, scfg, cfg)
            trained, wall, rate = _run_producer(loop, trained, start, stop_at, skip_windows, devices, say)
            end = trained.steps if stop_at is None else min(stop_at, trained.steps)
    finally:
        for c in ckpts:
            c.close()
    return [FitResult(state=s, hypers=hyper, factor=f, history=h, steps=end, tokens=end * trained.batch,
                      train_windows=tw, eval_windows=ew, resumed_from=start, wall_s=wall,
                      extra=dict(curve=c, stream_tokens_per_s=rate))
            for s, f, h, c, (tw, ew) in zip(states, factors, histories, curves, splits)], trained


def _curve_rows(store, eval_windows: np.ndarray, n: int) -> np.ndarray:
    rpw = store.rows_per_window
    return store.read_windows(eval_windows[:math.ceil(1.2 * n / rpw) + 1], skip_bos=True)[:n]


def _run_producer(loop: _Loop, tcfg: TrainConfig, start: int, stop_at: int | None, skip_windows: int, devices,
                  say) -> tuple[TrainConfig, float, float | None]:
    """Start the producer at batch `start` and train to the end (or stop_at): (the TrainConfig trained,
    seconds, tokens per second after the first step, which pays for compilation)."""
    cfg, scfg, n = loop.cfg, loop.scfg, len(loop.units)
    need = cfg.slots * n * tcfg.batch * scfg.d_row * 4
    ring = Ring.create(cfg.ring_dir or default_ring_parent(need), n, tcfg.batch, scfg.d_row, cfg.slots,
                       cfg.producer([u.hooks for u in loop.units], skip_windows, tcfg.steps, tcfg))
    producer = None
    try:
        producer = ProducerProcess(ring, start)
        _, _, available = producer.receive(PLAN)
        if available < tcfg.steps:
            say(f"warning: the corpus holds {available} batches of {tcfg.batch} tokens after the held-out dump, "
                f"fewer than --steps {tcfg.steps}: training {available} steps on what there is")
            if available < 1:
                raise SAEError(f"the corpus {cfg.corpus} has no training tokens beyond the held-out dump; use a larger "
                               "corpus or fewer --heldout_tokens")
            tcfg = replace(tcfg, steps=available)
        for c, s in zip(loop.ckpts, loop.states):
            c.check_run_space(s, tree_bytes(s.sae))
        per_save = sum(tree_bytes(s) for s in loop.states)
        say(f"stream: {n} unit(s) x {tcfg.batch} tokens a step from {cfg.model} over {cfg.corpus}; the ring holds "
            f"{cfg.slots} x {need / cfg.slots / 1e6:.0f} MB in {ring.folder.parent}; on disk only the held-out dump "
            f"and the checkpoints ({per_save / 1e6:.0f} MB a save, the last {loop.ckpts[0].keep} kept)", flush=True)
        t_start = time.perf_counter()
        rate = loop.run(producer, tcfg, start, tcfg.steps if stop_at is None else min(stop_at, tcfg.steps), devices)
        return tcfg, time.perf_counter() - t_start, rate
    finally:
        if producer is not None:
            producer.stop()
        ring.remove()


@dataclass
class _Loop:
    """Every unit's training state, and the loop that trains them all on each slot of the ring."""
    units: list[Unit]
    states: list
    histories: list[list[dict]]
    curves: list[list[list]]
    curve_rows: list[np.ndarray]
    hyper: object
    factors: list
    ckpts: list[Checkpointer]
    settings: list[dict]
    scfg: SAEConfig
    cfg: StreamConfig

    def run(self, producer: ProducerProcess, tcfg: TrainConfig, start: int, end: int, devices) -> float | None:
        """Train steps start..end-1 (states, histories and curves updated in place); tokens per second
        after the first step."""
        scfg, n = self.scfg, len(self.units)
        mesh = Mesh(np.array(devices), ("data",))
        replicated, data_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
        self.states[:] = [jax.device_put(s, replicated) for s in self.states]
        hyper = jax.device_put(self.hyper, replicated)
        step_fns = [eqx.filter_jit(make_step(scfg, tcfg, with_aux=False)), eqx.filter_jit(make_step(scfg, tcfg))]
        no_dead = jax.numpy.zeros((scfg.d_sae,), bool)
        heldout_fvu = eqx.filter_jit(lambda sae, x: loss_fn(sae, x, hyper, 1.0, no_dead, scfg, False)[1]["fvu"])
        dead_any = [scfg.topk_family and bool(np.any(np.asarray(jax.device_get(s.since_fired)) >= scfg.dead_tokens))
                    for s in self.states]
        window: list[dict] = [{"fvu": [], "l0": []} for _ in range(n)]
        bar = None
        if tcfg.progress:
            from tqdm import tqdm
            bar = tqdm(total=tcfg.steps, initial=start, desc=f"stream x{n}", unit="step", dynamic_ncols=True)

        def curve_point(done: int) -> None:
            for i in range(n):
                if not self.curves[i] or self.curves[i][-1][0] < done * tcfg.batch:
                    fvu = float(heldout_fvu(self.states[i].sae, self.curve_rows[i]))
                    self.curves[i].append([done * tcfg.batch, fvu])

        def save(done: int) -> None:
            curve_point(done)
            for i, (u, c) in enumerate(zip(self.units, self.ckpts)):
                hist = self.histories[i]
                problem = window_problem(window[i]["fvu"], window[i]["l0"], hist[0]["fvu"] if hist else np.inf, False)
                if problem:
                    raise Diverged(f"training diverged in {u.name}: {problem}; the checkpoints in {c.dir} are kept; "
                                   f"re-run with a lower --lr (now {float(jax.device_get(hyper.lr)):g}) in another --out")
                c.save(done, self.states[i], dict(settings=self.settings[i], history=hist, curve=self.curves[i],
                                                  factor=in_out_factors(self.factors[i]), sae_config=to_dict(scfg),
                                                  train_config=to_dict(tcfg)))
                window[i] = {"fvu": [], "l0": []}

        t_first, tok_s = None, 0.0
        if start == 0:
            curve_point(0)
        try:
            for step in range(start, end):
                kind, slot, seq = producer.receive(FULL)
                if kind == END:
                    raise SAEError(f"the stream's producer ended after batch {seq}, before step {step}; re-run the "
                                   "same command to resume")
                if seq != step:
                    raise SAEError(f"the stream sent batch {seq} for step {step}; re-run the same command to resume")
                t0 = time.perf_counter()
                metrics = []
                for i in range(n):
                    x = jax.device_put(producer.ring.data[slot, i], data_sharding)
                    self.states[i], m = step_fns[dead_any[i]](self.states[i], hyper, x, self.factors[i])
                    metrics.append(m)
                metrics = jax.device_get(metrics)  # waits for every unit's step: the slot can be reused
                producer.bell.free(slot)
                for i, m in enumerate(metrics):
                    dead_any[i] = scfg.topk_family and bool(np.any(m["dead_next"]))
                    if not np.isfinite(m["loss"]):
                        raise Diverged(f"the loss of {self.units[i].name} became non-finite at step {step}; the last "
                                       "checkpoint is kept; re-run with a lower --lr in another --out")
                    window[i]["fvu"].append(m["fvu"])
                    window[i]["l0"].append(m["l0"])
                    if step % tcfg.log_every == 0 or step == tcfg.steps - 1:
                        self.histories[i].append({"step": step, **{k: np.asarray(v).tolist() for k, v in m.items()},
                                                  "tokens_per_s": tok_s})
                dt = time.perf_counter() - t0
                tok_s = tcfg.batch / dt if tok_s == 0 else 0.9 * tok_s + 0.1 * tcfg.batch / dt
                if t_first is None:
                    t_first = time.perf_counter()
                if (step + 1) % self.cfg.curve_every == 0:
                    curve_point(step + 1)
                if bar is not None:
                    bar.set_postfix(FVU=f"{np.mean([m['fvu'] for m in metrics]):.3f}", train_tok_s=f"{tok_s:,.0f}",
                                    refresh=False)
                    bar.update(1)
                if (step + 1) % tcfg.ckpt_every == 0 or step + 1 == tcfg.steps:
                    save(step + 1)
        except KeyboardInterrupt:
            done = int(jax.device_get(self.states[0].step))
            if done > (self.ckpts[0].latest_step() or 0):
                save(done)
            raise
        finally:
            if bar is not None:
                bar.close()
        steps_after_first = end - start - 1
        return steps_after_first * tcfg.batch / (time.perf_counter() - t_first) if steps_after_first > 0 else None


__all__ = ["StreamConfig", "StreamSite", "Unit", "fit_stream", "heldout_dump", "RingError"]
