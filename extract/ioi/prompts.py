"""IOI prompt sets (Wang et al. 2022, arXiv 2211.00593): templates, fillers, corruptions.

    ds = make_ioi(model, n=16, seed=0)           # ABBA and BABA, aligned, seeded
    ds.tokens, ds.s2_swap.tokens, ds.abc.tokens  # [n, pos] token ids, same length and positions
    ds.pos["IO"], ds.pos["S1"], ds.pos["S2"], ds.pos["end"]   # [n] positions per prompt

Every name, place and object is filtered to a single token of the model's tokenizer (with
its leading space), and only templates whose token layout matches are put into one set, so
all prompts of a set have the same length and the same S2 and end positions (IO and S1 swap
between ABBA and BABA prompts; `pos` holds them per prompt).

Corruptions (the metric keeps the clean IO and S tokens):
  s2_swap  S2 replaced by the IO name (TransformerLens' demo): the clean logit diff flips sign.
  abc      the three name slots filled with three other distinct names (the paper's ABC
           distribution): no name is repeated, the logit diff falls to about 0.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

# {A} and {B} are the first two names; ABBA fills A=IO, B=S; BABA fills A=S, B=IO. {S} is S2.
# The paper's templates (Wang et al. appendix) without the final IO name, then a few more.
PAPER_TEMPLATES = [
    "Then, {A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {A} and {B} had a lot of fun at the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {A} and {B} were working at the {PLACE}. {S} decided to give a {OBJECT} to",
    "Then, {A} and {B} were thinking about going to the {PLACE}. {S} wanted to give a {OBJECT} to",
    "Then, {A} and {B} had a long argument, and afterwards {S} said to",
    "After {A} and {B} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {A} and {B} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
    "When {A} and {B} got a {OBJECT} at the {PLACE}, {S} decided to give the {OBJECT} to",
    "While {A} and {B} were working at the {PLACE}, {S} gave a {OBJECT} to",
    "While {A} and {B} were commuting to the {PLACE}, {S} gave a {OBJECT} to",
    "After the lunch, {A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Afterwards, {A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {A} and {B} had a long argument. Afterwards {S} said to",
    "The {PLACE} {A} and {B} went to had a {OBJECT}. {S} gave it to",
    "Friends {A} and {B} found a {OBJECT} at the {PLACE}. {S} gave it to",
]
EXTRA_TEMPLATES = [
    "When {A} and {B} went to the {PLACE}, {S} gave a {OBJECT} to",     # TransformerLens demo
    "When {A} and {B} went to the {PLACE}, {S} handed a {OBJECT} to",
    "After {A} and {B} arrived at the {PLACE}, {S} gave a {OBJECT} to",
    "While {A} and {B} were at the {PLACE}, {S} passed a {OBJECT} to",
    "Once {A} and {B} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {A} and {B} walked to the {PLACE}, {S} threw a {OBJECT} to",
    "When {A} and {B} came back from the {PLACE}, {S} gave a {OBJECT} to",
    "Later, {A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
]
TEMPLATES = PAPER_TEMPLATES + EXTRA_TEMPLATES

NAMES = [
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Michael", "David", "Sarah", "Paul",
    "Robert", "William", "Richard", "Thomas", "Mark", "Steven", "Andrew", "Kevin", "Brian", "George",
    "Edward", "Ronald", "Anthony", "Jason", "Matthew", "Gary", "Eric", "Stephen", "Larry", "Justin",
    "Scott", "Frank", "Benjamin", "Samuel", "Gregory", "Alexander", "Patrick", "Jack", "Dennis", "Jerry",
    "Tyler", "Aaron", "Henry", "Adam", "Peter", "Nathan", "Kyle", "Walter", "Harry", "Carl", "Arthur",
    "Lisa", "Nancy", "Karen", "Betty", "Helen", "Sandra", "Donna", "Carol", "Ruth", "Sharon", "Michelle",
    "Laura", "Kimberly", "Deborah", "Jessica", "Anna", "Emma", "Rachel", "Alice", "Kate", "Julia", "Jane",
    "Lucy", "Grace", "Rose", "Sophie", "Claire", "Paula", "Ben", "Max", "Sam", "Alex", "Chris", "Joe",
    "Mike", "Jim", "Bob", "Bill", "Tim", "Nick", "Ryan", "Luke", "Jacob", "Oliver", "Charlie", "Emily",
]
PLACES = ["store", "garden", "restaurant", "school", "hospital", "office", "house", "station", "park",
          "beach", "library", "market", "church", "museum", "airport", "cafe", "hotel", "bank", "zoo", "gym"]
OBJECTS = ["ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack", "book", "ball",
           "letter", "gift", "pen", "cake", "flower", "bag", "key", "phone", "hat", "coin", "card", "cup"]

ROLES = ("IO", "S1", "S2", "end")


def single_token_words(tokenizer, words, prefix=" "):
    """The words that are one token (with the prefix) for this tokenizer, in order, no repeats."""
    out, seen = [], set()
    for w in words:
        ids = tokenizer(prefix + w, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and ids[0] not in seen:
            out.append(w)
            seen.add(ids[0])
    return out


@dataclass
class PromptSet:
    """Aligned prompts: tokens [n, pos] (BOS first when the model has one), per-prompt answer
    tokens and role positions."""
    texts: list[str]
    tokens: torch.Tensor
    io_tok: torch.Tensor
    """[n] the indirect object's token (the correct answer)"""
    s_tok: torch.Tensor
    """[n] the subject's token"""
    pos: dict[str, torch.Tensor]
    """role -> [n] positions: IO, S1, S2, end"""
    order: list[str]
    """'ABBA' or 'BABA' per prompt"""
    templates: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class IOIDataset(PromptSet):
    s2_swap: PromptSet | None = None
    abc: PromptSet | None = None
    names: list[str] = field(default_factory=list)
    seed: int = 0

    def corrupted(self, kind: str) -> PromptSet:
        if kind not in ("s2_swap", "abc"):
            raise ValueError(f"unknown corruption {kind!r}; use s2_swap or abc")
        return getattr(self, kind)

    def labels(self, i: int = 0, model=None) -> list[str]:
        """Token labels for plots: the tokens of prompt i, with role names where they apply."""
        strs = model.to_str_tokens(self.tokens[i]) if model is not None else [str(t) for t in self.tokens[i].tolist()]
        roles = {int(self.pos[r][i]): r for r in ROLES}
        return [f"{s!r}" if p not in roles else f"{s!r} ({roles[p]})" for p, s in enumerate(strs)]


def _fill(template: str, order: str, io: str, s: str, place: str, obj: str) -> str:
    a, b = (io, s) if order == "ABBA" else (s, io)
    return template.format(A=a, B=b, S=s, PLACE=place, OBJECT=obj)


def _encode(model, text: str) -> list[int]:
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    return ([model.bos_token_id] if model.bos_token_id is not None else []) + ids


def _roles(ids: list[int], io_id: int, s_id: int) -> dict[str, int] | None:
    io = [i for i, t in enumerate(ids) if t == io_id]
    s = [i for i, t in enumerate(ids) if t == s_id]
    if len(io) != 1 or len(s) != 2:
        return None
    return {"IO": io[0], "S1": s[0], "S2": s[1], "end": len(ids) - 1}


def template_signature(model, template: str, names: list[str], places: list[str], objects: list[str]):
    """(length, S2, end, sorted first-two-name positions) of a template, or None when a filler
    does not land on whole tokens (e.g. the BPE merges it with its neighbour)."""
    sigs = set()
    for order in ("ABBA", "BABA"):
        for io, s, pl, ob in ((names[0], names[1], places[0], objects[0]), (names[2], names[3], places[1], objects[1])):
            ids = _encode(model, _fill(template, order, io, s, pl, ob))
            r = _roles(ids, model.to_single_token(" " + io), model.to_single_token(" " + s))
            if r is None:
                return None
            sigs.add((len(ids), r["S2"], r["end"], tuple(sorted((r["IO"], r["S1"])))))
    return sigs.pop() if len(sigs) == 1 else None


def aligned_templates(model, templates=None) -> dict[tuple, list[str]]:
    """Templates grouped by token layout for this model's tokenizer (signature -> templates)."""
    names = single_token_words(model.tokenizer, NAMES)
    places = single_token_words(model.tokenizer, PLACES)
    objects = single_token_words(model.tokenizer, OBJECTS)
    groups: dict[tuple, list[str]] = {}
    for t in templates or TEMPLATES:
        sig = template_signature(model, t, names, places, objects)
        if sig is not None:
            groups.setdefault(sig, []).append(t)
    return groups


def make_ioi(model, n: int = 16, seed: int = 0, templates: list[str] | str | None = None,
             order: str = "mixed", names: str = "all") -> IOIDataset:
    """n aligned IOI prompts plus their S2-swap and ABC corruptions.

    templates: None (the largest group of aligned templates among TEMPLATES), one template
    string, or a list (the largest aligned group among them is used).
    order: 'mixed' (alternating ABBA, BABA), 'ABBA' or 'BABA'.
    names: 'all', or 'even' / 'odd' (every other name of NAMES: two disjoint halves, so a
    circuit found on one can be checked on names it never saw).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if order not in ("mixed", "ABBA", "BABA"):
        raise ValueError(f"order must be mixed, ABBA or BABA, got {order!r}")
    if names not in ("all", "even", "odd"):
        raise ValueError(f"names must be all, even or odd, got {names!r}")
    tok = model.tokenizer
    names = single_token_words(tok, NAMES if names == "all" else NAMES[names == "odd"::2])
    places = single_token_words(tok, PLACES)
    objects = single_token_words(tok, OBJECTS)
    if len(names) < 6 or not places or not objects:
        raise ValueError(f"too few single-token fillers for {model.name}: {len(names)} names, "
                         f"{len(places)} places, {len(objects)} objects")
    cand = [templates] if isinstance(templates, str) else templates
    groups = aligned_templates(model, cand)
    if not groups:
        raise ValueError("no template tokenises with its names on whole tokens for this model")
    # the largest group; ties go to the group holding the earliest template
    order_of = {t: i for i, t in enumerate(cand or TEMPLATES)}
    group = max(groups.values(), key=lambda g: (len(g), -order_of[g[0]]))
    rng = random.Random(seed)
    texts, orders, io_ids, s_ids, used = [], [], [], [], []
    s2_texts, abc_texts = [], []
    for i in range(n):
        o = ("ABBA" if i % 2 == 0 else "BABA") if order == "mixed" else order
        t = group[rng.randrange(len(group))]
        io, s, a1, a2, a3 = rng.sample(names, 5)
        pl, ob = rng.choice(places), rng.choice(objects)
        texts.append(_fill(t, o, io, s, pl, ob))
        # S2-swap: the second mention of S becomes IO
        a, b = (io, s) if o == "ABBA" else (s, io)
        s2_texts.append(t.format(A=a, B=b, S=io, PLACE=pl, OBJECT=ob))
        # ABC: three other names in the three slots
        abc_texts.append(t.format(A=a1, B=a2, S=a3, PLACE=pl, OBJECT=ob))
        orders.append(o)
        io_ids.append(model.to_single_token(" " + io))
        s_ids.append(model.to_single_token(" " + s))
        used.append(t)
    io_tok, s_tok = torch.tensor(io_ids), torch.tensor(s_ids)

    def build(ts: list[str], check_roles: bool) -> PromptSet:
        tokens = model.to_tokens(ts, prepend_bos=True).cpu()
        pos = {r: [] for r in ROLES}
        for i in range(len(ts)):
            r = _roles(tokens[i].tolist(), io_ids[i], s_ids[i]) if check_roles else None
            if check_roles and r is None:
                raise AssertionError(f"prompt does not have one IO and two S tokens: {ts[i]!r}")
            for k in ROLES:
                pos[k].append(r[k] if r else clean_pos[k][i])
        return PromptSet(ts, tokens, io_tok, s_tok, {k: torch.tensor(v) for k, v in pos.items()}, orders, used)

    clean = build(texts, True)
    clean_pos = {k: v.tolist() for k, v in clean.pos.items()}
    ds = IOIDataset(**clean.__dict__, s2_swap=build(s2_texts, False), abc=build(abc_texts, False),
                    names=names, seed=seed)
    for c in (ds.s2_swap, ds.abc):
        if c.tokens.shape != ds.tokens.shape:
            raise AssertionError("a corruption does not align with the clean prompts")
    return ds


def demo_prompts():
    """TransformerLens' IOI demo: 8 prompts (4 sentences, both name orders), and the answer pairs.
    Corrupted = the neighbouring prompt (S2 swapped)."""
    pairs = [(" Mary", " John"), (" John", " Mary"), (" Tom", " James"), (" James", " Tom"),
             (" Dan", " Sid"), (" Sid", " Dan"), (" Martin", " Amy"), (" Amy", " Martin")]
    texts = ["When John and Mary went to the shops, {} gave the bag to",
             "When Tom and James went to the park, {} gave the ball to",
             "When Dan and Sid went to the shops, {} gave an apple to",
             "After Martin and Amy went to the park, {} gave a drink to"]
    prompts = []
    for i, t in enumerate(texts):
        prompts += [t.format(pairs[2 * i][1].strip()), t.format(pairs[2 * i + 1][1].strip())]
    return prompts, pairs
