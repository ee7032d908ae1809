"""The cache_activations stage: corpus windows -> truncated forward -> activation stores on disk.

    dump_activations(DumpConfig(n_tokens=25_000))   # middle layer's hook_resid_pre, BBC news

One pass of the model fills one store per hook (see mechinterp/formats/store.py for the format). Memory
stays constant in n_tokens: windows are generated lazily, each batch is written into the
preallocated memmap and the written pages are released at every flush. An interrupted dump
(Ctrl-C, crash, kill) leaves stores that say they are incomplete; the same call resumes them.

Under torchrun (RANK / WORLD_SIZE in the environment) rank r writes the windows
[r * n / W, (r + 1) * n / W) of the same plan into OUT/rank{r}/, so the shards read back in
rank order (open_store(OUT)) are exactly the single-process store.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from extract.corpus import DEFAULT_CORPUS, corpus_fingerprint, open_corpus
from extract.hooked import HookedModel
from extract.models import load_model
from extract.windows import WindowStream
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL
from mechinterp.formats.errors import LabError
from mechinterp.formats.layers import parse_layers
from mechinterp.formats.store import ACTS_FILE, META_FILE, TOKENS_FILE, StoreError, StoreMeta, open_store, read_meta
from mechinterp.formats.store_writer import StoreLock, StoreWriter, check_disk, disk_plan

PER_POSITION_SITES = ("hook_embed", "hook_pos_embed", "hook_resid_pre", "hook_resid_mid", "hook_resid_post",
                      "hook_attn_out", "hook_mlp_out", "attn.hook_z", "mlp.hook_post", "ln_final.hook_normalized",
                      "ln2.hook_normalized", "hook_mlp_in", "ln1.hook_normalized", "hook_normalized_resid_post")


class DumpError(LabError):
    """A dump request that cannot be served; the message says what to do."""


class DumpInterrupted(RuntimeError):
    """Ctrl-C: what was written is flushed; re-running the same command resumes."""


@dataclass
class DumpConfig:
    model: str = DEFAULT_MODEL
    """Registry name, Hugging Face repo id or local model directory (see extract/models.py)."""
    hooks: tuple[str, ...] = field(default=(), metadata={"flag": "hook", "repeat": True})
    """Hook name (TransformerLens style), e.g. blocks.15.hook_resid_pre; repeat for several (one
    store each). None given: `layer` and `site`."""
    layers: str = "all"
    """Layers a --hook containing {L} is expanded over: all, or a list such as 0,4,8-11. E.g.
    --hook 'blocks.{L}.hook_mlp_in' --hook 'blocks.{L}.hook_mlp_out' dumps every layer's
    transcoder pair in one pass."""
    layer: int | None = field(default=None, metadata=bounds(0))
    """Layer for `site` when no hooks are named; default the middle layer (n_layers // 2)."""
    site: str = "resid_pre"
    """Site within `layer`: resid_pre, resid_mid, resid_post, attn_out, mlp_out, attn.hook_z, mlp.hook_post."""
    n_tokens: int = field(default=25_000, metadata=bounds(1))
    """Activation rows to write (per hook), rounded up to whole windows."""
    ctx: int = field(default=128, metadata=bounds(2))
    """Tokens per window, BOS included."""
    out: str | None = None
    """Store directory (one hook) or parent of one directory per hook (None: runs/acts/<model>/<hook>)."""
    device: str = "auto"
    """auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the document shuffle and the held-out split."""
    batch: int = field(default=16, metadata=bounds(1))
    """Windows per forward pass."""
    keep_bos: bool = False
    """Store the BOS position's activations too (dropped by default: their norms are outliers)."""
    dtype: str = field(default="float16", metadata={"choices": ("float16", "float32")})
    """Storage dtype of the activations (float16 is refused where a value overflows it)."""
    corpus: str = DEFAULT_CORPUS
    """Corpus spec: bbc, shakespeare, dir:PATH, hf:NAME[:SPLIT], A+B (see extract/corpus.py)."""
    text_field: str = "text"
    """Field / column holding the text in .jsonl, parquet and Hugging Face corpora."""
    eval_fraction: float = field(default=0.05, metadata=bounds(0, 1, open_high=True))
    """Fraction of documents held out, and of windows dumped from them (the last windows)."""
    flush_every: int = field(default=4, metadata=bounds(1))
    """Batches between flushes: at most this many batches are redone after a crash."""
    progress: bool = True
    """Show a progress bar (items/s, ETA)."""

    def __post_init__(self):
        check_bounds(self)
        if self.dtype not in ("float16", "float32"):
            raise DumpError(f"--dtype must be float16 or float32, got {self.dtype}")
        self.hooks = tuple(self.hooks)


@dataclass
class DumpResult:
    path: Path
    meta: StoreMeta
    rows_written: int
    """Rows written by this call (less than meta.n_rows when it resumed a store)."""
    seconds: float
    skipped: bool = False
    """The store was already complete."""
    extra: dict = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum((self.path / f).stat().st_size for f in (ACTS_FILE, TOKENS_FILE, META_FILE))

    def summary(self) -> str:
        m = self.meta
        if self.skipped:
            return f"{self.path}: already complete ({m.n_rows} rows), nothing to do"
        rate = self.rows_written / max(self.seconds, 1e-9)
        return (f"{m.hook}: {m.n_rows} rows x {m.d_model} ({m.dtype}), {self.bytes / 1e6:.1f} MB "
                f"({self.bytes / max(m.n_rows, 1):.0f} B/token), {rate:.0f} tokens/s, -> {self.path}")


# ---------------------------------------------------------------------------- planning


def hook_names(model: HookedModel, cfg: DumpConfig) -> list[str]:
    if cfg.hooks:
        try:
            layers = parse_layers(cfg.layers, model.n_layers) if any("{L}" in h for h in cfg.hooks) else []
        except ValueError as e:
            raise DumpError(str(e)) from None
        names = list(dict.fromkeys(n for h in cfg.hooks for n in ([h.replace("{L}", str(L)) for L in layers]
                                                                  if "{L}" in h else [h])))
    else:
        layer = model.n_layers // 2 if cfg.layer is None else cfg.layer
        if not 0 <= layer < model.n_layers:
            raise DumpError(f"--layer {layer} out of range: {model.name} has {model.n_layers} layers (0..{model.n_layers - 1})")
        site = cfg.site if cfg.site.startswith(("hook_", "attn.", "mlp.")) else f"hook_{cfg.site}"
        names = [f"blocks.{layer}.{site}"]
    for name in names:
        try:
            model.site(name)
        except KeyError as e:
            raise DumpError(e.args[0]) from None
        if not any(name == s or name.endswith("." + s) for s in PER_POSITION_SITES):
            here = [s for s in PER_POSITION_SITES if any(n == s or n.endswith("." + s) for n in model.hook_names())]
            raise DumpError(f"hook {name} does not give one vector per token position; dumpable sites here: "
                            f"{', '.join(here)}")
    return names


def store_paths(cfg: DumpConfig, model_name: str, names: list[str], rank: int, world: int,
                default_dir: Callable[[str, str], Path] | None = None) -> dict[str, Path]:
    if cfg.out is None:
        if default_dir is None:
            raise DumpError("name an output folder (--out)")
        paths = {n: default_dir(model_name, n) for n in names}
    elif len(names) == 1:
        paths = {names[0]: Path(cfg.out)}
    else:
        paths = {n: Path(cfg.out) / n for n in names}
    return {n: (p / f"rank{rank}" if world > 1 else p) for n, p in paths.items()}


# ---------------------------------------------------------------------------- distributed


def dist_env() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _init_dist(device: str) -> tuple[int, int, str]:
    rank, world = dist_env()
    if world > 1:
        import torch.distributed as dist

        if device in ("auto", "cuda") and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return rank, world, device


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()


# ---------------------------------------------------------------------------- the dump


def dump_activations(cfg: DumpConfig, model: HookedModel | None = None,
                     default_dir: Callable[[str, str], Path] | None = None) -> list[DumpResult]:
    """Write one store per hook (one shard per rank under torchrun); returns what was written. Without
    --out, each store goes to default_dir(model name, hook)."""
    rank, world, device = _init_dist(cfg.device)
    try:
        return _dump(cfg, model, rank, world, device, default_dir)
    finally:
        if world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _dump(cfg: DumpConfig, model: HookedModel | None, rank: int, world: int, device: str,
          default_dir: Callable[[str, str], Path] | None) -> list[DumpResult]:
    model = model or load_model(cfg.model, device=device)
    names = hook_names(model, cfg)
    stop = model.min_stop_layer(names)
    bos = model.bos_token_id
    keep_bos = cfg.keep_bos or bos is None
    rows_per_window = cfg.ctx - (0 if keep_bos else 1)

    source = open_corpus(cfg.corpus, cfg.text_field)
    stream = WindowStream(source, model.tokenizer, cfg.ctx, bos, cfg.seed, cfg.eval_fraction)
    plan = stream.plan(math.ceil(cfg.n_tokens / rows_per_window))
    lo, hi = plan.n_windows * rank // world, plan.n_windows * (rank + 1) // world
    corpus_meta = plan.describe(source, len(stream.eval_docs))

    # d of every hook, from a two-token forward
    probe = torch.tensor([[bos if bos is not None else 0] * 2], device=model.device)
    _, cache = model.run_with_cache(probe, names=names, stop_at_layer=stop)
    dims = {n: int(np.prod(cache[n].shape[2:])) for n in names}

    inputs = {"the model's weights": model.fingerprint, "the corpus": corpus_fingerprint(source)}
    metas = {name: StoreMeta(model=model.name, weights=model.weights, hook=name, layer=model.site(name).layer,
                             d_model=dims[name], ctx=cfg.ctx, keep_bos=keep_bos, n_windows=hi - lo, dtype=cfg.dtype,
                             prepend_bos=bos is not None, corpus=corpus_meta, inputs=inputs,
                             shard={"rank": rank, "world_size": world, "first_window": lo})
             for name in names}
    paths = store_paths(cfg, model.name, names, rank, world, default_dir)
    with ExitStack() as locks:
        for path in paths.values():
            locks.enter_context(StoreLock(path))
        writers, results = _open_writers(paths, metas, say=print if rank == 0 else None)
        t0 = time.perf_counter()
        if writers:
            _run(cfg, model, plan, stream, writers, names, stop, lo, hi, rows_per_window, rank)
        seconds = time.perf_counter() - t0
        for name, w in writers.items():
            results[name] = DumpResult(paths[name], w.finish(), w.rows_this_run, seconds)
    _barrier(world)
    return [results[n] for n in names]


def _open_writers(paths: dict[str, Path], metas: dict[str, StoreMeta], say=None):
    """(writers of the stores to write or resume, results of those already complete). The new stores'
    disk need is checked together before any is allocated (and, for several, stated through `say`)."""
    writers: dict[str, StoreWriter] = {}
    done: dict[str, DumpResult] = {}
    todo = {}
    for name, meta in metas.items():
        path = paths[name]
        if (path / META_FILE).exists():
            old = read_meta(path)
            if old.complete and not old.mismatches(meta):
                open_store(path)  # its files must match meta.json too: a truncated store is an error, not "done"
                done[name] = DumpResult(path, old, 0, 0.0, skipped=True)
                continue
        todo[name] = meta
    new = [m for n, m in todo.items() if not (paths[n] / META_FILE).exists()]
    if new:
        first = paths[next(iter(todo))]
        check_disk(first, new)
        if say and len(new) > 1:
            plan = disk_plan(first, new)
            say(f"{plan['stores']} new stores: {plan['per_token'] / 1e3:.1f} KB per token, {plan['bytes'] / 1e9:.2f} GB "
                f"for {plan['rows']:,} tokens ({plan['free'] / 1e9:.1f} GB free, room for about "
                f"{int(plan['free'] / plan['per_token']):,} tokens)", flush=True)
    for name, meta in todo.items():
        writers[name] = StoreWriter.create_or_resume(paths[name], meta)
    return writers, done


def _batches(windows, size: int):
    batch = []
    for w in windows:
        batch.append(w)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def _run(cfg, model, plan, stream, writers, names, stop, lo, hi, rows_per_window, rank) -> None:
    from tqdm import tqdm

    start = min(w.windows_done for w in writers.values())
    for w in writers.values():
        w.rows_this_run = 0
    bar = tqdm(total=(hi - lo) * rows_per_window, initial=start * rows_per_window, unit="tok", unit_scale=True,
               desc="cache_activations", disable=not cfg.progress or rank != 0, smoothing=0.1, dynamic_ncols=True)
    done = start
    try:
        for i, toks in enumerate(_batches(stream.windows(plan, lo + start, hi), cfg.batch)):
            n = len(toks)
            _, cache = model.run_with_cache(torch.from_numpy(toks).long().to(model.device),
                                            names=names, stop_at_layer=stop)
            for name, w in writers.items():
                skip = w.windows_done - done  # a writer flushed further than the others before a crash
                if skip >= n:
                    continue
                act = cache[name].float().reshape(n, cfg.ctx, -1).cpu().numpy()
                w.write(act[skip:], toks[skip:])
                w.rows_this_run += (n - skip) * rows_per_window
            done += n
            bar.update(n * rows_per_window)
            if (i + 1) % cfg.flush_every == 0:
                for w in writers.values():
                    w.flush()
    except KeyboardInterrupt:
        for w in writers.values():
            w.flush()
        bar.close()
        raise DumpInterrupted(f"interrupted: {min(w.windows_done for w in writers.values())} of {hi - lo} windows "
                              "are saved; re-run the same command to resume") from None
    except BaseException:
        bar.close()
        raise
    bar.close()
    if done != hi - lo:
        raise DumpError(f"the corpus gave {done} of {hi - lo} windows on the second pass; is it changing on disk?")


def run_from_cli(cfg: DumpConfig, default_dir: Callable[[str, str], Path] | None = None) -> list[DumpResult]:
    """dump_activations with Ctrl-C turned into DumpInterrupted also while loading, and the summary printed."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results = dump_activations(cfg, default_dir=default_dir)
    rank, world = dist_env()
    if rank == 0:
        for r in results:
            print(r.summary(), flush=True)
            if world > 1:
                parent = r.path.parent
                store = open_store(parent)
                print(f"{r.meta.hook}: {world} shards under {parent} read as one store of {store.n_rows} rows", flush=True)
    return results


__all__ = ["DumpConfig", "DumpResult", "DumpError", "DumpInterrupted", "StoreError", "dump_activations",
           "run_from_cli", "hook_names"]
