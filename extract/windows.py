"""Documents -> token windows: the held-out document split, packing into BOS-separated windows of
fixed length, and the seeded, resumable stream of windows a dump reads (extract/dump.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from extract.corpus import CorpusError, Source

# ---------------------------------------------------------------------------- split and pack


def split_documents(n_docs: int, seed: int = 0, eval_fraction: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(train doc indices, eval doc indices), both in shuffled order. At least one eval document
    when eval_fraction > 0 and there are two documents or more."""
    if not 0.0 <= eval_fraction < 1.0:
        raise CorpusError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    perm = np.random.default_rng(seed).permutation(n_docs)
    n_eval = int(round(eval_fraction * n_docs))
    if eval_fraction > 0 and n_eval == 0 and n_docs > 1:
        n_eval = 1
    return perm[n_eval:], perm[:n_eval]


def pack_windows(token_lists: Iterator[list[int]], ctx: int, bos: int | None) -> Iterator[np.ndarray]:
    """Pack documents' token ids into windows of ctx tokens: [BOS, doc, BOS, doc...]."""
    buf: list[int] = []
    for ids in token_lists:
        if not ids:
            continue
        if bos is not None:
            buf.append(bos)  # the window's first token, or the separator before a new document
        buf.extend(ids)
        while len(buf) >= ctx:
            yield np.asarray(buf[:ctx], dtype=np.int32)
            rest = buf[ctx:]
            buf = ([bos] + rest) if (bos is not None and rest) else rest
    # the tail shorter than a window is dropped


def tokenize_docs(source: Source, order: np.ndarray, tokenizer, batch_docs: int = 32) -> Iterator[list[int]]:
    """Token ids of the documents in `order`, tokenised a few at a time."""
    for i in range(0, len(order), batch_docs):
        texts = [source[int(j)] for j in order[i:i + batch_docs]]
        yield from tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


@dataclass
class WindowPlan:
    """Which windows a dump writes: n_train from training documents, then n_eval from held-out ones."""
    spec: str
    seed: int
    eval_fraction: float
    ctx: int
    n_train: int
    n_eval: int

    @property
    def n_windows(self) -> int:
        return self.n_train + self.n_eval

    def describe(self, source: Source, n_eval_docs: int) -> dict:
        """The meta.corpus record."""
        return {"spec": self.spec, "seed": self.seed, "eval_fraction": self.eval_fraction,
                "n_docs": len(source), "n_eval_docs": n_eval_docs, "packing": "bos-separated",
                "train_windows": [0, self.n_train], "eval_windows": [self.n_train, self.n_windows]}


class WindowStream:
    """The windows of a dump, numbered 0..n_windows-1 (train first, then eval), generated lazily."""

    def __init__(self, source: Source, tokenizer, ctx: int, bos: int | None, seed: int = 0,
                 eval_fraction: float = 0.05):
        if len(source) == 0:
            raise CorpusError(f"corpus {source.spec} has no documents")
        self.source, self.tokenizer, self.ctx, self.bos = source, tokenizer, ctx, bos
        self.seed, self.eval_fraction = seed, eval_fraction
        self.train_docs, self.eval_docs = split_documents(len(source), seed, eval_fraction)

    def _windows(self, docs: np.ndarray) -> Iterator[np.ndarray]:
        return pack_windows(tokenize_docs(self.source, docs, self.tokenizer), self.ctx, self.bos)

    def train(self) -> Iterator[np.ndarray]:
        return self._windows(self.train_docs)

    def eval(self) -> Iterator[np.ndarray]:
        return self._windows(self.eval_docs)

    def plan(self, n_windows: int) -> WindowPlan:
        """Split n_windows into train and eval windows and check that the corpus holds them
        (a counting pass: tokenises up to what is needed, keeps nothing)."""
        n_eval = int(round(self.eval_fraction * n_windows))
        if self.eval_fraction > 0 and n_eval == 0 and n_windows > 1:
            n_eval = 1
        n_train = n_windows - n_eval
        if n_eval and not len(self.eval_docs):
            raise CorpusError(f"the corpus {self.source.spec} has {len(self.source)} document: too few to hold any "
                              "out for evaluation; give it more documents (one per .txt file or .jsonl line), or "
                              "pass --eval_fraction 0")
        for kind, want, gen in (("training", n_train, self.train), ("held-out", n_eval, self.eval)):
            have = _count(gen(), want)
            if have < want:
                total_tokens = _count_tokens(self.source, self.train_docs if kind == "training" else self.eval_docs,
                                             self.tokenizer)
                raise CorpusError(
                    f"the corpus {self.source.spec} is too small for this request: its {kind} documents "
                    f"({len(self.train_docs if kind == 'training' else self.eval_docs)} of {len(self.source)}) hold "
                    f"{total_tokens} tokens = {have} windows of {self.ctx}, and {want} are needed; "
                    f"pass a smaller --n_tokens (at most about {self._max_tokens_hint(have, kind)}) or a larger corpus")
        return WindowPlan(self.source.spec, self.seed, self.eval_fraction, self.ctx, n_train, n_eval)

    def _max_tokens_hint(self, have: int, kind: str) -> int:
        rpw = self.ctx - (1 if self.bos is not None else 0)
        if kind == "training":
            frac = self.eval_fraction
            return int(have / (1 - frac) * rpw) if frac < 1 else 0
        return int(have / max(self.eval_fraction, 1e-9) * rpw)

    def windows(self, plan: WindowPlan, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Windows start..stop-1 of the plan, in order."""
        stop = plan.n_windows if stop is None else stop
        for first, count, gen in ((0, plan.n_train, self.train), (plan.n_train, plan.n_eval, self.eval)):
            lo, hi = max(start, first), min(stop, first + count)
            if lo >= hi:
                continue
            for k, w in enumerate(gen()):
                i = first + k
                if i >= hi:
                    break
                if i >= lo:
                    yield w


def _count(it: Iterator, limit: int) -> int:
    n = 0
    for _ in it:
        n += 1
        if n >= limit:
            break
    return n


def _count_tokens(source: Source, docs: np.ndarray, tokenizer) -> int:
    return sum(len(ids) for ids in tokenize_docs(source, docs, tokenizer))
