"""Biographies for SHIFT: profession x gender, with gender as the spurious cue.

Bias in Bios (De-Arteaga et al. 2019; HF `LabHC/bias_in_bios`) is not reachable offline, so
`make_bios` writes biographies of comparable difficulty from hand-written templates:

    bio = intro (name, place)  +  profession sentences (duties, institutions, education,
          career, research/ward life)  +  personal sentences (hobbies, family, travel)

shuffled after the intro. The gender signal is the first name (hundreds per gender), the
pronouns (he/his/him, she/her) and the title (Mr./Ms.); the profession signal is only what
the profession sentences say (no sentence names the profession outright in most templates,
as in Bias in Bios' `hard_text`, whose first sentence with the title is cut).

Splits (`make_splits`):
    ambiguous   male professors and female nurses only (profession == gender): the training set
    balanced    all four groups in equal numbers, from held-out templates and held-out names (test)
    balanced_train  all four groups from the training templates and names (the oracle probe)
    gender_only personal sentences only (no profession), both genders, training names: the
                "name/pronoun-only" set on which latents are tested for gender

Labels: profession 1 = professor, 0 = nurse; gender 1 = male, 0 = female, so that in the
ambiguous set profession == gender. Everything is a pure function of the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from extract.biography_templates import FEMALE_NAMES, MALE_NAMES, PLACES, PRONOUNS, SURNAMES, TEMPLATE_SETS
from mechinterp.formats.errors import LabError

PROFESSIONS = ("nurse", "professor")
"""Index = profession label."""
GENDERS = ("female", "male")
"""Index = gender label."""

# Bias in Bios (LabHC/bias_in_bios) label scheme: 28 professions in alphabetical order
# (accountant 0 ... nurse 13 ... professor 21 ... yoga_teacher 27); gender 0 = male, 1 = female.
BIB_PROFESSION_IDS = {"nurse": 13, "professor": 21}
BIB_GENDER_MALE = 0


# ---------------------------------------------------------------------------- data set


@dataclass
class Bios:
    """Biographies with labels; `texts[i]` has profession `prof[i]` and gender `gender[i]`."""
    texts: list[str]
    prof: list[int]
    """1 = professor, 0 = nurse."""
    gender: list[int]
    """1 = male, 0 = female."""
    name: str = ""
    meta: dict = field(default_factory=dict)
    first_names: list[str] = field(default_factory=list)
    """The first name used in each synthetic bio (empty for real data)."""

    def __len__(self) -> int:
        return len(self.texts)

    def groups(self) -> list[tuple[int, int]]:
        return list(zip(self.prof, self.gender))

    def subset(self, idx) -> Bios:
        idx = list(idx)
        return Bios([self.texts[i] for i in idx], [self.prof[i] for i in idx], [self.gender[i] for i in idx],
                    self.name, dict(self.meta), [self.first_names[i] for i in idx] if self.first_names else [])


@dataclass
class BiosConfig:
    seed: int = 0
    n_ambiguous: int = 384
    """Training set size (half male professors, half female nurses)."""
    n_balanced: int = 384
    """Test set size (a quarter per group)."""
    n_gender_only: int = 128
    """Personal-sentence-only bios (half per gender) for the gender test of latents."""
    n_prof_sentences: tuple[int, int] = (1, 2)
    """Profession sentences per bio (inclusive range)."""
    n_personal_sentences: tuple[int, int] = (2, 3)
    """Personal sentences per bio (inclusive range)."""
    heldout_fraction: float = 0.3
    """Fraction of each template set and name list kept for the balanced test set only."""

    def __post_init__(self):
        for k in ("n_ambiguous", "n_balanced", "n_gender_only"):
            if getattr(self, k) < 4 or getattr(self, k) % 4:
                raise ValueError(f"{k} must be a positive multiple of 4, got {getattr(self, k)}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")


def _split(items: list, frac: float, rng: random.Random) -> tuple[list, list]:
    items = list(dict.fromkeys(items))  # dedupe, keep order
    order = items[:]
    rng.shuffle(order)
    n_test = max(1, round(len(order) * frac))
    return order[n_test:], order[:n_test]


@dataclass
class Pools:
    """Templates and names for one side of the train/test split."""
    templates: dict[str, list[str]]
    names: dict[str, list[str]]


def make_pools(seed: int = 0, heldout_fraction: float = 0.3) -> tuple[Pools, Pools]:
    """(train pools, test pools): disjoint templates (per set) and first names (per gender)."""
    rng = random.Random(f"pools-{seed}")
    train_t, test_t, train_n, test_n = {}, {}, {}, {}
    for key, templates in TEMPLATE_SETS.items():
        train_t[key], test_t[key] = _split(templates, heldout_fraction, rng)
    male, female = set(MALE_NAMES), set(FEMALE_NAMES)
    for g, names in (("male", [n for n in MALE_NAMES if n not in female]),
                     ("female", [n for n in FEMALE_NAMES if n not in male])):
        train_n[g], test_n[g] = _split(names, heldout_fraction, rng)
    return Pools(train_t, train_n), Pools(test_t, test_n)


def _fill(template: str, slots: dict) -> str:
    return template.format(**slots)


def make_bio(rng: random.Random, pools: Pools, profession: str | None, gender: str,
             n_prof: tuple[int, int] = (1, 2), n_personal: tuple[int, int] = (2, 3)) -> tuple[str, str]:
    """(biography, first name); profession None writes personal sentences only."""
    first = rng.choice(pools.names[gender])
    last = rng.choice(SURNAMES)
    slots = dict(PRONOUNS[gender], first=first, last=last, full=f"{first} {last}", place=rng.choice(PLACES))
    body = []
    if profession is not None:
        body += rng.sample(pools.templates[profession], rng.randint(*n_prof))
    body += rng.sample(pools.templates["personal"], rng.randint(*n_personal))
    rng.shuffle(body)
    sentences = [rng.choice(pools.templates["intro"]), *body]
    return " ".join(_fill(s, slots) for s in sentences), first


def make_set(name: str, groups: list[tuple[int, int]], pools: Pools, rng: random.Random, cfg: BiosConfig,
             with_profession: bool = True) -> Bios:
    texts, prof, gender, names = [], [], [], []
    for p, g in groups:
        text, first = make_bio(rng, pools, PROFESSIONS[p] if with_profession else None, GENDERS[g],
                               cfg.n_prof_sentences, cfg.n_personal_sentences)
        texts.append(text)
        names.append(first)
        prof.append(p)
        gender.append(g)
    return Bios(texts, prof, gender, name, {"seed": cfg.seed}, names)


def make_splits(cfg: BiosConfig | None = None) -> dict[str, Bios]:
    """{'ambiguous', 'balanced', 'balanced_train', 'gender_only'} (see the module docstring)."""
    cfg = cfg or BiosConfig()
    train, test = make_pools(cfg.seed, cfg.heldout_fraction)
    rng = random.Random(f"bios-{cfg.seed}")

    def groups(n: int, combos: list[tuple[int, int]]) -> list[tuple[int, int]]:
        out = [combos[i % len(combos)] for i in range(n)]
        rng.shuffle(out)
        return out

    four = [(0, 0), (0, 1), (1, 0), (1, 1)]
    splits = {
        "ambiguous": make_set("ambiguous", groups(cfg.n_ambiguous, [(1, 1), (0, 0)]), train, rng, cfg),
        "balanced": make_set("balanced", groups(cfg.n_balanced, four), test, rng, cfg),
        "balanced_train": make_set("balanced_train", groups(cfg.n_ambiguous, four), train, rng, cfg),
        "gender_only": make_set("gender_only", groups(cfg.n_gender_only, [(0, 0), (0, 1)]), train, rng, cfg,
                                with_profession=False),
    }
    for s in splits.values():
        s.meta.update(source="synthetic", heldout_fraction=cfg.heldout_fraction)
    return splits


# ---------------------------------------------------------------------------- Bias in Bios (network)


class BiosUnavailable(LabError):
    """The real Bias in Bios cannot be loaded here (no `datasets` package or no network)."""


def load_bias_in_bios(n_ambiguous: int = 2048, n_balanced: int = 1024, n_gender_only: int = 256, seed: int = 0,
                      name: str = "LabHC/bias_in_bios") -> dict[str, Bios]:
    """The same four splits from the real Bias in Bios (nurse vs professor, `hard_text`):
    ambiguous and balanced_train from the train split, balanced from the test split; the
    gender-only set is the balanced set's bios of one profession (nurse) split by gender, so
    that only gender varies. Needs `pip install datasets` and access to the Hugging Face hub."""
    import os
    import socket

    try:
        import datasets  # noqa: F401 (imported only to see that it is installed)
    except ImportError:
        raise BiosUnavailable("Bias in Bios needs the `datasets` package (pip install datasets) and a network; "
                              "use the synthetic biographies (the default) offline") from None
    if not os.environ.get("HF_DATASETS_OFFLINE"):
        try:
            socket.create_connection(("huggingface.co", 443), timeout=3).close()
        except OSError:
            raise BiosUnavailable("Bias in Bios (LabHC/bias_in_bios) needs the Hugging Face hub, which is not "
                                  "reachable from here; use the synthetic biographies (the default)") from None
    from datasets import load_dataset

    rng = random.Random(f"bib-{seed}")
    ids = {v: k for k, v in BIB_PROFESSION_IDS.items()}

    def rows(split: str) -> dict[tuple[int, int], list[str]]:
        ds = load_dataset(name, split=split)
        by_group: dict[tuple[int, int], list[str]] = {}
        for r in ds:
            if r["profession"] in ids:
                p = PROFESSIONS.index(ids[r["profession"]])
                g = 1 if r["gender"] == BIB_GENDER_MALE else 0
                by_group.setdefault((p, g), []).append(r["hard_text"])
        for v in by_group.values():
            rng.shuffle(v)
        return by_group

    def take(by_group, name_, per_group: dict[tuple[int, int], int]) -> Bios:
        texts, prof, gender = [], [], []
        for (p, g), n in per_group.items():
            got = by_group.get((p, g), [])[:n]
            by_group[(p, g)] = by_group.get((p, g), [])[n:]
            texts += got
            prof += [p] * len(got)
            gender += [g] * len(got)
        order = list(range(len(texts)))
        rng.shuffle(order)
        return Bios([texts[i] for i in order], [prof[i] for i in order], [gender[i] for i in order], name_,
                    {"source": name, "seed": seed})

    train, test = rows("train"), rows("test")
    four = [(0, 0), (0, 1), (1, 0), (1, 1)]
    return {
        "ambiguous": take(train, "ambiguous", {(1, 1): n_ambiguous // 2, (0, 0): n_ambiguous // 2}),
        "balanced_train": take(train, "balanced_train", {k: n_ambiguous // 4 for k in four}),
        "balanced": take(test, "balanced", {k: n_balanced // 4 for k in four}),
        "gender_only": take(test, "gender_only", {(0, 0): n_gender_only // 2, (0, 1): n_gender_only // 2}),
    }


def load_splits(source: str = "synthetic", seed: int = 0, **kwargs) -> dict[str, Bios]:
    """'synthetic' (offline, the default) or 'bias_in_bios' (HF LabHC/bias_in_bios, needs a network)."""
    if source == "synthetic":
        return make_splits(BiosConfig(seed=seed, **kwargs))
    if source in ("bias_in_bios", "bib", "LabHC/bias_in_bios"):
        return load_bias_in_bios(seed=seed, **kwargs)
    raise ValueError(f"unknown biographies source {source!r}; use synthetic or bias_in_bios")


def write_jsonl(bios: Bios, path) -> None:
    """One {"text": ...} per line: a corpus for extract/corpus.py (dir:PATH)."""
    import json
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for t in bios.texts:
            f.write(json.dumps({"text": t}) + "\n")


def corpus_bios(n: int = 3000, seed: int = 0, heldout_fraction: float = 0.3) -> Bios:
    """n biographies of all four groups from the training templates and names only (never the
    held-out test ones): text for dumping activations to train an SAE on."""
    cfg = BiosConfig(seed=seed, heldout_fraction=heldout_fraction)
    train, _ = make_pools(seed, heldout_fraction)
    rng = random.Random(f"corpus-{seed}")
    four = [(0, 0), (0, 1), (1, 0), (1, 1)]
    return make_set("corpus", [four[i % 4] for i in range(n)], train, rng, cfg)
