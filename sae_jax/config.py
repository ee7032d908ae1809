"""Typed configs, one source of truth for every default. Validated on construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.errors import SAEError
from sae_jax.architectures import NAMES, get

ARCHS = NAMES  # the registered architectures (sae_jax/architectures/)


@dataclass(frozen=True)
class SAEConfig:
    arch: str = field(default="relu", metadata={"choices": ARCHS})
    """relu (L1 weighted by decoder norms), topk, batchtopk or jumprelu."""
    d_in: int | None = field(default=None, metadata={"no_flag": True})
    """Width of the activations; the trainer reads it from the store."""
    d_sae: int = field(default=4096, metadata=bounds(1))
    """Number of latents (dictionary size)."""
    k: int = field(default=32, metadata=bounds(1))
    """Active latents per token (topk) or per token on average over the batch (batchtopk)."""
    k_max: int | None = field(default=None, metadata=bounds(1))
    """Static upper bound on k (None: k for topk, 4k for batchtopk). A batchtopk token keeps at
    most k_max latents, so decoding stays sparse; sweeps over k share the largest k_max."""
    aux_k: int | None = field(default=None, metadata=bounds(1))
    """Latents in the auxiliary-k loss on dead latents (None: d_in // 2, as Gao et al.)."""
    aux_coeff: float = field(default=1 / 32, metadata=bounds(0))
    """Weight of the auxiliary-k loss (topk family)."""
    dead_tokens: int = field(default=1_000_000, metadata=bounds(1))
    """A latent that has not fired for this many training tokens counts as dead."""
    bandwidth: float = field(default=0.05, metadata=bounds(0, open_low=True))
    """JumpReLU: width of the rectangle kernel of the threshold's pseudo-gradient."""
    threshold_init: float = field(default=0.1, metadata=bounds(0, open_low=True))
    """JumpReLU: initial threshold (on normalised activations)."""
    threshold_ema: float = field(default=0.01, metadata=bounds(0, 1, open_low=True))
    """BatchTopK: rate of the moving average that estimates the inference threshold."""
    dec_init_norm: float = field(default=0.1, metadata=bounds(0, open_low=True))
    """relu: initial norm of the decoder rows (Anthropic, April 2024); other archs use 1."""
    sparse_backward: bool = field(default=True, metadata={"flag": "dense_backward"})
    """topk family: custom VJP that touches only the k active rows (sae_jax.topk)."""
    d_out: int | None = field(default=None, metadata={"no_flag": True})
    """Transcoders: width of the target (the trainer reads it from --acts_out); None: an SAE, whose
    target is its input."""
    skip: bool = False
    """Transcoders: add a linear skip path W_skip from input to target (a skip transcoder)."""
    matryoshka: tuple[int, ...] = field(default=(), metadata=bounds(1, sep=","))
    """topk family: widths of nested prefixes of the dictionary, each trained to reconstruct on
    its own beside the whole (Matryoshka SAEs, Bussmann et al. 2025; e.g. 128,512,2048 for
    d_sae 4096). Empty: a plain topk/batchtopk SAE."""

    def __post_init__(self):
        check_bounds(self)
        if self.arch not in ARCHS:
            raise SAEError(f"unknown --arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.skip and self.d_out is None and self.d_in is not None:
            raise SAEError("--skip is for transcoders: pass --acts_out (the target store) too")
        if self.d_in is not None and self.d_in < 1:
            raise SAEError(f"d_in must be positive, got {self.d_in}")
        if self.topk_family and not 1 <= self.k <= self.d_sae:
            raise SAEError(f"--k {self.k} must be between 1 and --d_sae {self.d_sae}")
        if self.k_max is not None and self.k_max < self.k:
            raise SAEError(f"k_max {self.k_max} is smaller than k {self.k}")
        if self.matryoshka:
            if not self.topk_family:
                raise SAEError(f"--matryoshka is for --arch topk or batchtopk, not {self.arch}")
            ws = list(self.matryoshka)
            if ws != sorted(set(ws)) or ws[0] < 1 or ws[-1] >= self.d_sae:
                raise SAEError(f"--matryoshka {','.join(map(str, ws))}: give increasing widths between 1 and "
                               f"--d_sae {self.d_sae} (exclusive; the whole dictionary is always the last level)")

    @property
    def transcoder(self) -> bool:
        return self.d_out is not None

    @property
    def d_target(self) -> int | None:
        return self.d_out if self.transcoder else self.d_in

    @property
    def d_row(self) -> int:
        """Width of a training row: the input, then (transcoders) the target."""
        return self.d_in + (self.d_out or 0)

    @property
    def topk_family(self) -> bool:
        return get(self.arch).uses_k

    @property
    def kmax(self) -> int:
        if self.k_max is not None:
            return min(self.k_max, self.d_sae)
        return get(self.arch).kmax(self.k, self.d_sae)

    @property
    def n_aux(self) -> int:
        return min(self.aux_k if self.aux_k is not None else max(1, (self.d_in or 2) // 2), self.d_sae)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = field(default=2000, metadata=bounds(1))
    """Optimiser steps."""
    batch: int = field(default=4096, metadata=bounds(1))
    """Tokens per step (split across devices)."""
    lr: float | None = field(default=None, metadata=bounds(0, open_low=True))
    """Peak Adam learning rate (None: 2e-4 / sqrt(d_sae / 16384), sparsify's scaling)."""
    l1: float | None = field(default=None, metadata=bounds(0))
    """Sparsity coefficient: relu's L1, jumprelu's L0 (None: the architecture's default_l1)."""
    warmup_frac: float = field(default=0.05, metadata=bounds(0, 1, open_high=True))
    """Fraction of steps of linear learning-rate warm-up."""
    decay_frac: float = field(default=0.2, metadata=bounds(0, 1))
    """Fraction of steps at the end over which the learning rate decays linearly to 0."""
    l1_warmup_frac: float = field(default=0.05, metadata=bounds(0, 1, open_high=True))
    """Fraction of steps over which the sparsity coefficient ramps up from 0."""
    b1: float = field(default=0.9, metadata=bounds(0, 1, open_high=True))
    """Adam beta1."""
    b2: float = field(default=0.999, metadata=bounds(0, 1, open_high=True))
    """Adam beta2."""
    resample_every: int | None = field(default=None, metadata=bounds(1))
    """relu: resample dead latents every this many steps (None: steps // 4; never in the last 20%)."""
    seed: int = field(default=0, metadata=bounds(0))
    """Seeds the SAE init, the data order and the held-out split."""
    eval_fraction: float = field(default=0.05, metadata=bounds(0, 1, open_high=True))
    """Fraction of the store's windows held out for metrics."""
    eval_tokens: int = field(default=200_000, metadata=bounds(1))
    """Held-out tokens read for metrics (at most)."""
    b_dec_init: str = field(default="median", metadata={"choices": ("median", "mean", "zeros")})
    """median (geometric median), mean, or zeros; estimated on init_tokens training rows."""
    init_tokens: int = field(default=8192, metadata=bounds(1))
    """Training rows used to estimate b_dec (and a skip transcoder's starting W_skip)."""
    skip_init: str = field(default="lstsq", metadata={"choices": ("lstsq", "zeros")})
    """Skip transcoders: W_skip starts at the least-squares map from input to target over init_tokens
    rows (lstsq; the latents learn what it leaves), or at 0."""
    ckpt_every: int = field(default=500, metadata=bounds(1))
    """Save an orbax checkpoint every this many steps (and at the end)."""
    log_every: int = field(default=10, metadata=bounds(1))
    """Record a point of the training curves every this many steps."""
    progress: bool = True
    """Show a tqdm progress bar."""
    sweep_chunk: int | None = field(default=None, metadata=bounds(1))
    """Sweeps: members vmapped together; chunks run one after another in the same jitted
    step (None: all members at once on accelerators, 1 on CPU, where one member's step already
    fills the cores and the vmapped [members, batch, d_sae] temporaries only cost memory
    traffic; measured in scripts/bench_sae.py)."""

    def __post_init__(self):
        check_bounds(self)
        if self.warmup_frac + self.decay_frac > 1:
            raise SAEError("warmup_frac + decay_frac must not exceed 1")
        if self.b_dec_init not in ("median", "mean", "zeros"):
            raise SAEError(f"b_dec_init must be median, mean or zeros, got {self.b_dec_init!r}")
        if not 0 < self.eval_fraction < 1:
            raise SAEError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        if (self.sweep_chunk is not None and self.sweep_chunk < 1) or (self.resample_every is not None
                                                                        and self.resample_every < 1):
            raise SAEError("sweep_chunk and resample_every must be positive when given")
        if self.ckpt_every < 1 or self.log_every < 1 or self.init_tokens < 1 or self.eval_tokens < 1:
            raise SAEError("ckpt_every, log_every, init_tokens and eval_tokens must be positive")

    def lr_for(self, d_sae: int) -> float:
        return self.lr if self.lr is not None else 2e-4 / math.sqrt(d_sae / 16384)

    def l1_for(self, arch: str) -> float:
        return get(arch).default_l1 if self.l1 is None else self.l1

    @property
    def resample_period(self) -> int:
        return self.resample_every if self.resample_every is not None else max(1, self.steps // 4)


def to_dict(cfg) -> dict:
    return asdict(cfg)


def from_dict(cls, d: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})  # JSON lists


@dataclass(frozen=True)
class TrainRun:
    """Where a training run reads and writes, and what it runs on."""
    acts: str | None = None
    """Activation store directory (`mechinterp dump`); None: the single store under
    runs/acts/<default model>/ that a dump with default settings writes."""
    acts_out: str | None = None
    """Transcoders: the target store, another hook of the same dump (e.g. blocks.L.hook_mlp_out
    beside --acts blocks.L.hook_mlp_in); the latents read --acts and predict this."""
    out: str | None = None
    """Output directory: checkpoints/, sae/ (the export), plots, history.json (None: runs/sae; a sweep:
    runs/sweep)."""
    device: str = "auto"
    """JAX platform to shard the step over: auto (every device of the default backend), cpu, gpu (or cuda)."""
