"""Label an export from its statistics and write EXPORT/labels.json (what `mechinterp browse` and
`mechinterp label` call).

    path, labels = label_export("runs/sae/sae", "runs/browser/sae", model=model)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from interventions.labels.offline import LabelConfig, offline_labels
from mechinterp.formats.feature_stats import STATS_NPZ, load_feature_stats
from mechinterp.formats.fingerprint import fingerprint
from mechinterp.formats.labels import LabelError, labels_path, load_labels, save_labels
from mechinterp.formats.sae import CFG, WEIGHTS


def weights_fingerprint(export) -> str:
    return fingerprint(export, only=(WEIGHTS, CFG))


def labelled(export) -> bool:
    """Whether the export's offline labels were made from its present weights."""
    path = labels_path(export)
    if not path.exists():
        return False
    try:
        return load_labels(path)["source"].get("weights") == weights_fingerprint(export)
    except LabelError:
        return False


def token_text(tokenizer):
    """id -> string, cached; -1 is the window start."""
    cache: dict[int, str] = {-1: "<start>"}

    def text(t: int) -> str:
        if t not in cache:
            cache[t] = tokenizer.decode([t]) if tokenizer is not None else f"<{t}>"
        return cache[t]
    return text


def load_stats_for_labels(stats_dir: str | Path, export: str | Path):
    """The statistics, or one line saying which command makes them."""
    if not (Path(stats_dir) / STATS_NPZ).exists():
        raise LabelError(f"no feature statistics for {export} in {stats_dir}: make them with "
                         f"`mechinterp browse --sae {export}` (or pass --stats FOLDER)")
    stats = load_feature_stats(stats_dir)
    if "tok_ids" not in stats.arrays:
        raise LabelError(f"the statistics in {stats_dir} have no token counts (an older browse): "
                         f"re-run `mechinterp browse --sae {export}`")
    return stats


def label_export(export: str | Path, stats_dir: str | Path, model=None, tokenizer=None, logits: dict | None = None,
                 cfg: LabelConfig | None = None) -> tuple[Path, list[dict], dict]:
    """Offline labels for every latent, saved beside the export. `model` (a HookedModel) gives token
    strings and the output side; without it, `tokenizer` or token ids. Returns (path, labels, timing)."""
    t0 = time.perf_counter()
    stats = load_stats_for_labels(stats_dir, export)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if logits is None and model is not None:
        from interventions.browser.page import logit_tables
        from interventions.sae import load_sae

        logits = logit_tables(model, load_sae(export, device=model.device).W_dec, top=5)
    t1 = time.perf_counter()
    labels = offline_labels(stats.arrays, token_text(tokenizer), logits, cfg)
    t2 = time.perf_counter()
    path = save_labels(labels_path(export), labels, "offline", len(labels),
                       {"stats": str(Path(stats_dir).resolve()), "n_tokens": int(stats["n_tokens"]),
                        "weights": weights_fingerprint(export),
                        "config": vars(cfg or LabelConfig())})
    kinds = {str(k): int(v) for k, v in zip(*np.unique([lab["kind"] for lab in labels], return_counts=True))}
    return path, labels, {"logits_s": t1 - t0, "labels_s": t2 - t1, "total_s": time.perf_counter() - t0, "kinds": kinds}
