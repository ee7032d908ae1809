"""What keeps a training run from being silently wrong: the settings a checkpoint was made with
(a resume must ask for the same ones), and the health of a run (a checkpoint is saved only while
training is healthy; an SAE that reconstructs worse than the mean is not exported)."""

from __future__ import annotations

import json

import numpy as np

from mechinterp.formats.errors import SAEError
from mechinterp.formats.fingerprint import stale
from sae_jax.config import SAEConfig, TrainConfig, to_dict

# TrainConfig fields that do not change the trained weights (a resume may change them)
RESULT_FREE = ("progress", "log_every", "ckpt_every", "eval_tokens", "sweep_chunk")
# the store's identity: which activations, and the normalisation they get
STORE_FIELDS = ("model", "weights", "hook", "d_model", "ctx", "keep_bos", "dtype")
# mid-training divergence: the median training FVU over a checkpoint interval above this
DIVERGED_FVU = 10.0


class Diverged(SAEError):
    """Training went wrong without a NaN (the message says how it shows)."""


def run_settings(store, scfg: SAEConfig, tcfg: TrainConfig, members: list[dict] | None) -> dict:
    """Every setting that shapes the trained weights, with derived values resolved (so --lr left
    to its default equals the same value given explicitly), as plain JSON values."""
    meta = store.meta
    s = {f"store {k}": getattr(meta, k) for k in STORE_FIELDS}
    paired = hasattr(store, "mean_norms")  # a transcoder's input and target stores
    s.update({"store rows": store.n_rows, "store corpus": meta.corpus.get("spec", meta.corpus.get("name")),
              "store mean_norm": store.mean_norms if paired else store.mean_norm,
              "store target hook": store.out.meta.hook if paired else None,
              "store inputs": {**meta.inputs, **({"target": store.out.meta.inputs} if paired else {})}})
    s.update(to_dict(scfg))
    s.update({k: v for k, v in to_dict(tcfg).items() if k not in RESULT_FREE and (k != "skip_init" or scfg.skip)})
    s.update(lr=tcfg.lr_for(scfg.d_sae), l1=tcfg.l1_for(scfg.arch),
             sweep_members=members or "none (one SAE)")
    return json.loads(json.dumps(s))


def check_resume(saved: dict | None, asked: dict, ckpt_dir) -> None:
    """Refuse to resume a checkpoint made with other settings, naming the first that differs."""
    if saved is None:
        raise SAEError(f"the checkpoint in {ckpt_dir} was made by an older version that did not record its "
                       "settings; use another --out (or delete that one) to train afresh")
    unknown = {"store inputs"} - set(saved)  # checkpoints made before stores recorded their inputs
    differ = [k for k in asked if k not in unknown and saved.get(k) != asked[k]] + [k for k in saved if k not in asked]
    if "store inputs" in differ and set(differ) <= {"store inputs", "store mean_norm"} and \
            stale(saved["store inputs"], asked["store inputs"]):  # the same site's activations, recomputed
        raise SAEError(f"the activations changed since the checkpoint in {ckpt_dir} was made "
                       f"({stale(saved['store inputs'], asked['store inputs'])}); delete that folder (or use "
                       "another --out) to train on them afresh")
    differ = [k for k in differ if k != "store inputs"] or differ  # the store fields that changed say more
    if differ:
        k = differ[0]
        more = f" (also {', '.join(differ[1:4])}{' ...' if len(differ) > 4 else ''})" if len(differ) > 1 else ""
        raise SAEError(f"the checkpoint in {ckpt_dir} was made with {k}={_show(saved.get(k))}, this run asks for "
                       f"{k}={_show(asked.get(k))}{more}; use another --out, or the settings it was made with")


def _show(v) -> str:
    return json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def window_problem(fvu: list, l0: list, initial_fvu, population: bool) -> str | None:
    """Why the steps since the last checkpoint look diverged, or None. fvu, l0: one entry per step
    (per member for a population, which counts as diverged only when every member is); initial_fvu:
    the FVU at step 0. Diverged: no latent fired at all, or a median FVU above DIVERGED_FVU that is
    also worse than at initialisation (some inits, e.g. JumpReLU's, start far above 1 and come down)."""
    if not fvu:
        return None
    f, z = np.median(np.asarray(fvu, np.float64), axis=0), np.asarray(l0, np.float64).max(axis=0)
    bad = ((f > DIVERGED_FVU) & (f > np.asarray(initial_fvu, np.float64))) | (z == 0)
    if not bad.all():
        return None
    f, z = np.atleast_1d(f), np.atleast_1d(z)
    if (z == 0).all():
        return f"no latent fired in the last {len(l0)} steps (every latent dead)"
    who = "every sweep member's" if population else "the"
    return (f"{who} training FVU is {f.min():.3g} over the last {len(fvu)} steps (explained variance "
            f"{1 - f.min():.3g}: far worse than predicting the mean, and worse than at initialisation)")


def heldout_problem(metrics: dict, d_sae: int) -> str | None:
    """Why the held-out metrics of a finished SAE make it unusable, or None."""
    ev = metrics.get("explained_variance")
    if metrics.get("dead", 0) >= d_sae:
        return f"every one of its {d_sae} latents is dead on the held-out tokens"
    if ev is not None and not ev >= 0:
        return f"its held-out explained variance is {ev:.4g} < 0 (it reconstructs worse than the mean)"
    return None
