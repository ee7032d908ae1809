"""Tasks for circuit discovery: aligned clean / corrupted prompts and a metric that reads the end logits.

ioi: Wang et al.'s indirect-object identification, logit(IO) - logit(S), corrupted by the ABC
  distribution (three other names; the IOI paper's and EAP-IG's choice). Discovery uses the
  paper's templates and every other name; held-out prompts the extra templates and the other names.
greater_than: Hanna et al. (2023), "The {noun} lasted from the year {XX}{YY} to the year {XX}",
  corrupted by YY = 01. Tokenizers that split numbers into digits (SmolLM2, Gemma) read the
  decade next: the metric is p(decade digit > Y) - p(decade digit < Y), Y the tens digit of YY
  (Hanna's probability difference at the decade's resolution). Held-out prompts use other nouns
  and centuries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from extract import patching as P
from extract.ioi.metrics import logit_diff
from extract.ioi.prompts import EXTRA_TEMPLATES, PAPER_TEMPLATES, make_ioi, single_token_words

TASKS = ("ioi", "greater_than")


@dataclass
class Task:
    clean: torch.Tensor
    corrupt: torch.Tensor
    seed: int
    metric_name: str

    def __len__(self) -> int:
        return self.clean.shape[0]

    def metric(self, logits: torch.Tensor, part: slice) -> torch.Tensor:
        """[rows] from end logits of k stacked copies of the prompts `part`."""
        raise NotImplementedError

    def grad_metric(self):
        return self.metric

    def patch_metric(self):
        return lambda logits: self.metric(logits, slice(0, len(self)))

    def check(self, model) -> float:
        clean = float(self.patch_metric()(P.forward_end(model, self.clean)).mean())
        if clean <= 0:
            raise ValueError(f"{model.name} fails the task: its clean {self.metric_name} is {clean:+.3f} (<= 0); "
                             "there is no behaviour to explain")
        return clean

    def reference(self, model, n: int = 64) -> torch.Tensor:
        """Corrupted prompts of another seed, for mean ablation (same layout)."""
        raise NotImplementedError


@dataclass
class IOITask(Task):
    io_tok: torch.Tensor = None
    s_tok: torch.Tensor = None
    templates: list[str] = field(default_factory=list)
    names: str = "all"
    pos: dict[str, torch.Tensor] = field(default_factory=dict)
    """role -> [n] positions (IO, S1, S2, end)"""

    def metric(self, logits, part):
        return logit_diff(logits, self.io_tok[part], self.s_tok[part])

    def reference(self, model, n: int = 64) -> torch.Tensor:
        return make_ioi(model, n, seed=self.seed + 1, templates=self.templates, names=self.names).abc.tokens


NOUNS = ["war", "expedition", "drought", "siege", "strike", "famine", "reign", "occupation", "voyage", "campaign",
         "trial", "exile", "festival", "rebellion", "crisis", "dynasty", "epidemic", "revolution", "tour", "tenure"]
CENTURIES = [11, 12, 13, 14, 15, 16, 17, 18]


@dataclass
class GreaterThanTask(Task):
    tens: torch.Tensor = None
    """[n] the start year's tens digit"""
    digits: torch.Tensor = None
    """[10] token ids of '0'..'9'"""
    nouns: list[str] = field(default_factory=list)
    centuries: list[int] = field(default_factory=list)

    def metric(self, logits, part):
        last = logits[:, -1] if logits.dim() == 3 else logits
        p = torch.softmax(last.float(), -1)[:, self.digits.to(last.device)]  # [rows, 10]
        t = self.tens[part].to(last.device).repeat(last.shape[0] // (part.stop - part.start))
        d = torch.arange(10, device=last.device)
        return (p * (d[None] > t[:, None])).sum(-1) - (p * (d[None] < t[:, None])).sum(-1)

    def reference(self, model, n: int = 64) -> torch.Tensor:
        return _greater_than(model, n, self.seed + 1, self.nouns, self.centuries).corrupt


def _greater_than(model, n: int, seed: int, nouns: list[str], centuries: list[int]) -> GreaterThanTask:
    tok = model.tokenizer
    digits = [tok(str(d), add_special_tokens=False)["input_ids"] for d in range(10)]
    if any(len(d) != 1 for d in digits) or len(tok(" 1732", add_special_tokens=False)["input_ids"]) < 4:
        raise ValueError(f"{model.name}'s tokenizer does not read years digit by digit; greater_than here needs it")
    nouns = single_token_words(tok, nouns)
    rng = random.Random(seed)
    clean, corrupt, tens = [], [], []
    for _ in range(n):
        noun, xx, yy = rng.choice(nouns), rng.choice(centuries), rng.randrange(12, 98)
        clean.append(f"The {noun} lasted from the year {xx}{yy:02d} to the year {xx}")
        corrupt.append(f"The {noun} lasted from the year {xx}01 to the year {xx}")
        tens.append(yy // 10)
    return GreaterThanTask(model.to_tokens(clean).cpu(), model.to_tokens(corrupt).cpu(), seed,
                           "p(later decade) - p(earlier decade)", tens=torch.tensor(tens),
                           digits=torch.tensor([d[0] for d in digits]), nouns=nouns, centuries=centuries)


def load_task(name: str, model, n: int, seed: int, heldout: bool = False) -> Task:
    if name == "ioi":
        templates, names = (EXTRA_TEMPLATES, "odd") if heldout else (PAPER_TEMPLATES, "even")
        ds = make_ioi(model, n, seed=seed, templates=templates, names=names)
        return IOITask(ds.tokens, ds.abc.tokens, seed, "logit diff IO - S", io_tok=ds.io_tok, s_tok=ds.s_tok,
                       templates=templates, names=names, pos=ds.pos)
    if name == "greater_than":
        half = slice(1, None, 2) if heldout else slice(0, None, 2)
        return _greater_than(model, n, seed, NOUNS[half], CENTURIES[half])
    raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
