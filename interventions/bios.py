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

PROFESSIONS = ("nurse", "professor")
"""Index = profession label."""
GENDERS = ("female", "male")
"""Index = gender label."""

# Bias in Bios (LabHC/bias_in_bios) label scheme: 28 professions in alphabetical order
# (accountant 0 ... nurse 13 ... professor 21 ... yoga_teacher 27); gender 0 = male, 1 = female.
BIB_PROFESSION_IDS = {"nurse": 13, "professor": 21}
BIB_GENDER_MALE = 0

# ---------------------------------------------------------------------------- names

FEMALE_NAMES = """
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra Margaret
Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Dorothy Rebecca Sharon Laura
Cynthia Amy Kathleen Angela Shirley Brenda Emma Anna Pamela Nicole Samantha Katherine Christine Helen
Debra Rachel Carolyn Janet Maria Catherine Heather Diane Olivia Julie Joyce Victoria Ruth Virginia Lauren
Kelly Christina Joan Evelyn Judith Andrea Hannah Megan Cheryl Jacqueline Martha Madison Teresa Gloria Sara
Janice Ann Kathryn Abigail Sophia Frances Jean Alice Judy Isabella Julia Grace Amber Denise Danielle
Marilyn Beverly Charlotte Natalie Theresa Diana Brittany Doris Kayla Alexis Lori Marie Tiffany Rose
Kristen Sophie Chloe Zoe Lily Ella Ava Mia Harper Aria Layla Nora Hazel Violet Aurora Savannah Audrey
Brooklyn Bella Claire Skylar Lucy Paisley Everly Caroline Naomi Eleanor Stella Maya Leah Ruby Alyssa
Gabriella Madeline Valentina Willow Ivy Autumn Piper Sadie Clara Eliza Vivian Josephine Delilah Genevieve
Rosalind Beatrice Agnes Edith Irene Lillian Mildred Esther Gladys Ethel Florence Harriet Louise Mabel
Priya Aisha Fatima Mei Yuki Ingrid Astrid Greta Freya Elena Sofia Lucia Carmen Isabel Paula Camille
Chantal Colette Monique Yvonne Bridget Siobhan Fiona Eileen Maureen Molly Tessa Vanessa Veronica Wendy
Yolanda Tamara Sonia Renee Rita Rosa Stacy Tracy Vera Bonnie Carla Dana Erica Gina Holly Jill Joanna
Kara Leslie Lydia Marcia Miranda Nina Paige Regina Sheila Tanya Tina Trisha Ursula Gwen Hilda Jasmine
""".split()

MALE_NAMES = """
James Robert John Michael David William Richard Joseph Thomas Charles Christopher Daniel Matthew Anthony
Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan
Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander
Frank Patrick Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Douglas Zachary Peter Kyle
Ethan Walter Noah Jeremy Christian Keith Roger Terry Gerald Harold Sean Austin Carl Arthur Lawrence Dylan
Jesse Jordan Bryan Billy Joe Bruce Gabriel Logan Albert Willie Alan Juan Wayne Elijah Randy Roy Vincent
Ralph Eugene Russell Bobby Mason Philip Louis Liam Lucas Oliver Elias Caleb Owen Isaac Hudson Miles
Leo Theodore Hugo Felix Oscar Jasper Silas Ezra Asher Wyatt Grayson Julian Levi Lincoln Jaxon Carter
Landon Hunter Connor Colton Adrian Dominic Xavier Evan Gavin Chase Cole Blake Tristan Bennett Declan
Everett Rowan Emmett Beckett Harrison Maxwell Wesley Reid Preston Spencer Trevor Garrett Dalton Marcus
Victor Raj Arjun Hiroshi Kenji Lars Sven Anders Nils Matteo Luca Marco Diego Carlos Pablo Rafael Pierre
Jacques Louis Henri Klaus Dieter Stefan Tobias Conor Declan Fergus Angus Duncan Malcolm Graham Nigel
Clive Rupert Desmond Reginald Cedric Herbert Howard Leonard Stanley Vernon Wallace Clifford Gordon Glenn
Floyd Lloyd Milton Morris Norman Otis Perry Ross Rodney Stuart Todd Troy Wade Warren Brett Clark Dean
Derek Drew Grant Jared Kurt Lance Luke Neil Shane Tony Craig Curtis Darren Dustin Jay Jim Kirk Marvin
""".split()

SURNAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall
Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins
Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly
Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes
Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
Bell Coleman Butler Henderson Barnes Fisher Vasquez Simmons Graham Marshall Owens Harrison Gibson Kennedy
Wells Hayes Ford Hamilton Fraser Lindqvist Okafor Tanaka Schmidt Rossi Dubois Novak Kowalski Larsen
""".split()

PLACES = """
Boston Chicago Denver Seattle Portland Austin Atlanta Phoenix Toronto Vancouver Melbourne Sydney Dublin
Manchester Leeds Glasgow Edinburgh Cardiff Auckland Ottawa Montreal Halifax Minneapolis Milwaukee Detroit
Cleveland Pittsburgh Baltimore Richmond Raleigh Nashville Memphis Houston Dallas Tucson Sacramento Oakland
Madison Lincoln Omaha Albany Buffalo Hartford Providence Savannah Charleston Louisville Columbus Spokane
""".split()

# ---------------------------------------------------------------------------- templates
# Slots: {first} {last} {full} {title} {he} {He} {him} {his} {His} {place}.
# Pronoun case: {he}/{He} subject, {him} object, {his}/{His} possessive determiner.

INTRO = [
    "{full} lives in {place}.",
    "{full} grew up in {place}.",
    "{full} is based in {place}.",
    "{full} was born in {place}.",
    "{full} has spent most of {his} life in {place}.",
    "{full} moved to {place} several years ago.",
    "Originally from {place}, {full} now lives nearby with {his} family.",
    "{full} currently calls {place} home.",
    "{full} splits {his} time between {place} and the coast.",
    "{title} {last} has lived in {place} for over a decade.",
    "{full} returned to {place} after years abroad.",
    "A native of {place}, {full} still lives there.",
]

NURSE = [
    # duties
    "{He} monitors patients after surgery and adjusts {his} care plans through the night.",
    "{His} shifts are spent checking vital signs, dressing wounds and giving medication.",
    "{He} works twelve-hour shifts on a busy cardiac ward.",
    "{first} coordinates care with physicians and explains treatment options to worried families.",
    "{He} trains new staff on infection control and safe handling of medicines.",
    "Every morning {he} reviews charts and prepares the ward for the day's admissions.",
    "{He} specialises in caring for newborns in the intensive care unit.",
    "{first} is often the first person patients see when they arrive at the emergency department.",
    "{He} starts IV lines, draws blood and keeps careful records at the bedside.",
    "{His} patients in the oncology unit know {him} for {his} calm bedside manner.",
    "{He} visits elderly patients at home to manage wounds and chronic conditions.",
    "{first} leads the night team on the surgical ward.",
    "{He} helps patients recover after hip and knee replacements.",
    "{He} triages incoming patients and decides who needs to see a doctor first.",
    "{first} administers vaccines at a community health clinic twice a week.",
    "{He} works in a hospice, supporting patients and their families at the end of life.",
    # institutions and career
    "{He} has worked at the regional hospital for nine years.",
    "After years in the emergency room, {he} moved to a paediatric clinic.",
    "{first} joined the staff of a children's hospital straight after qualifying.",
    "{He} was recently promoted to charge nurse of the maternity unit.",
    "{He} is a registered nurse with a license in two states.",
    "{He} has worked on medical wards, in theatres and in a rural health centre.",
    "{first} took a position in the intensive care unit during the pandemic.",
    # education
    "{He} earned a Bachelor of Science in Nursing and later a certificate in critical care.",
    "{He} completed {his} nursing degree and clinical placements at a teaching hospital.",
    "{first} is studying part time to become a nurse practitioner.",
    "{He} holds certifications in advanced cardiac life support and paediatric care.",
    "{He} qualified after three years of clinical training on hospital wards.",
]

PROFESSOR = [
    # duties
    "{He} teaches undergraduate courses in organic chemistry and supervises doctoral students.",
    "{His} research focuses on the economic history of trade in the nineteenth century.",
    "{He} lectures on linear algebra and runs a graduate seminar on number theory.",
    "{first} has published more than sixty papers in peer-reviewed journals.",
    "{He} leads a research group studying the genetics of drought-resistant crops.",
    "{His} lab is funded by the national science foundation.",
    "{He} advises graduate students and sits on several thesis committees.",
    "{first} is writing a book on the philosophy of language.",
    "{He} teaches a popular introductory course on microeconomics.",
    "{His} work on machine learning theory has been cited thousands of times.",
    "{He} serves as an editor for a leading journal in comparative literature.",
    "{first} chairs the faculty committee on curriculum reform.",
    "{He} gives lectures on medieval history to packed halls.",
    "{His} department hosts an annual conference that {he} helped found.",
    "{He} spends {his} sabbatical writing grant proposals and a new textbook.",
    "{first} directs the graduate program in applied mathematics.",
    # institutions and career
    "{He} joined the faculty of the state university after a postdoctoral fellowship.",
    "{He} received tenure last year and now holds an endowed chair.",
    "{first} previously taught at a liberal arts college before moving to a research university.",
    "{He} was a visiting scholar at universities in Europe and Asia.",
    "{He} heads the department of sociology at a large public university.",
    "{first} has held academic appointments at three universities.",
    "{He} was recently elected a fellow of the national academy.",
    # education
    "{He} earned {his} PhD in physics and completed two postdoctoral positions.",
    "{He} received a doctorate in political science with a dissertation on voting behaviour.",
    "{first} studied classics as an undergraduate before earning a doctorate in archaeology.",
    "{He} holds a PhD in computer science and a master's degree in statistics.",
    "{He} wrote {his} dissertation on the ecology of coastal wetlands.",
]

PERSONAL = [
    # hobbies
    "In {his} spare time {he} enjoys hiking in the mountains.",
    "{He} plays the cello in a community orchestra.",
    "{first} runs marathons and has completed races on three continents.",
    "{He} loves cooking for friends and trying recipes from {his} travels.",
    "On weekends {he} can usually be found in {his} garden.",
    "{He} is an avid reader of mystery novels.",
    "{first} volunteers at the local animal shelter.",
    "{He} enjoys photography, especially of birds and landscapes.",
    "{He} has been learning to play the piano for the past few years.",
    "{first} sings in a choir and coaches a youth soccer team.",
    "{He} is a keen cyclist and rides to work every day.",
    "{He} spends {his} summers sailing with old friends.",
    "{first} collects old maps and vintage postcards.",
    "{He} practises yoga and meditation every morning.",
    "{He} enjoys fishing and camping by the lake.",
    "{first} is a devoted fan of the local baseball team.",
    # family
    "{He} lives with {his} two children and a very old dog.",
    "{first} and {his} partner have three grandchildren.",
    "{He} is married and has a teenage daughter.",
    "{His} family has lived in the area for generations.",
    "{He} often visits {his} parents on the weekends.",
    "{first} is the youngest of five siblings.",
    "{He} and {his} spouse recently adopted a rescue cat.",
    # travel and other
    "{He} has travelled widely in South America.",
    "{first} speaks three languages fluently.",
    "{He} is learning Japanese in {his} free time.",
    "{He} writes a small blog about local history.",
    "Friends describe {him} as generous and quick to laugh.",
    "{first} enjoys board games and hosts a weekly game night.",
    "{He} restores old furniture in {his} workshop.",
    "{He} bakes bread every Sunday morning.",
    "{first} is an amateur astronomer with a telescope on {his} balcony.",
]

TEMPLATE_SETS = {"intro": INTRO, "nurse": NURSE, "professor": PROFESSOR, "personal": PERSONAL}
PRONOUNS = {
    "male": {"he": "he", "He": "He", "him": "him", "his": "his", "His": "His", "title": "Mr."},
    "female": {"he": "she", "He": "She", "him": "her", "his": "her", "His": "Her", "title": "Ms."},
}


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

    def subset(self, idx) -> "Bios":
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


class BiosUnavailable(ValueError):
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
        import datasets  # noqa: F401
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
