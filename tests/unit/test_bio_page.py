"""The residue feature browser (interventions/bio/residue_page.py) on a hand-made residue table:
top sequences per latent (also when chunks split sequences), the page in headless Chromium, the PNG."""

from __future__ import annotations

import re

import numpy as np
import pytest
from builders import browser_page

from extract.bio.labels import REGIONS
from interventions.bio.residue_page import residue_strip_png, top_sequences, write_residue_page
from mechinterp.formats.residues import Residues

N_SEQ, CUT = 12, 3  # the last sequence's last CUT residues are not stored (the dump drops a tail)
SPIKE = 7  # latent 1 fires at this position only
PERM = np.random.default_rng(0).permutation(N_SEQ) + 1.0  # latent 1's value per sequence
AA = "ACDEFGHIKLMNPQRSTVWY"


def _residues() -> Residues:
    rng = np.random.default_rng(1)
    lengths = [30 + s % 5 for s in range(N_SEQ)]
    texts = ["".join(rng.choice(list(AA), n)) for n in lengths]
    seq = np.concatenate([np.full(n, s, np.int32) for s, n in enumerate(lengths)])[:-CUT]
    pos = np.concatenate([np.arange(n, dtype=np.int16) for n in lengths])[:-CUT]
    region = np.concatenate([np.r_[-1, np.repeat(np.arange(7), 4), np.full(n - 29, 6)] for n in lengths])[:-CUT]
    imgt = np.where(region >= 0, pos + 1, -1)
    n_rows = len(seq)
    return Residues(seq=seq, pos=pos, token=np.zeros(n_rows, np.int32), region=region.astype(np.int8),
                    imgt=imgt.astype(np.int16), mutated=np.full(n_rows, -1, np.int8),
                    seq_ids=np.array([f"ab<{s}>&x" for s in range(N_SEQ)]), seq_text=np.array(texts),
                    seq_chain=np.array(["H"] * N_SEQ), seq_v_gene=np.array([""] * N_SEQ),
                    seq_j_gene=np.array([""] * N_SEQ), seq_heldout=np.zeros(N_SEQ, bool))


def _acts(res: Residues) -> np.ndarray:
    """[rows, 4]: 0 fires on CDR3 growing with the sequence index, 1 at one position, 2 noise, 3 never."""
    acts = np.zeros((len(res), 4), np.float32)
    acts[:, 0] = (res.region == REGIONS.index("CDR3")) * (res.seq + 1) * (1 + 0.01 * res.pos)
    acts[:, 1] = (res.pos == SPIKE) * PERM[res.seq]
    acts[:, 2] = np.random.default_rng(2).random(len(res)) * 0.1
    return acts


def _chunker(acts: np.ndarray, size: int, reverse: bool = False):
    starts = list(range(0, len(acts), size))[::-1 if reverse else 1]
    return lambda: ((np.arange(s, min(s + size, len(acts))), acts[s:s + size]) for s in starts)


@pytest.fixture(scope="module")
def data():
    res = _residues()
    acts = _acts(res)
    return res, acts, top_sequences(_chunker(acts, 64), res, [0, 1, 3], n=8)


@pytest.mark.parametrize("size,reverse", [(len(_residues()), False), (17, False), (17, True), (5, False)])
def test_top_sequences(size, reverse):
    res = _residues()
    acts = _acts(res)
    top = top_sequences(_chunker(acts, size, reverse), res, [0, 1, 3], n=8)
    assert [e["seq"] for e in top[0]] == list(range(11, 3, -1))       # CDR3 value grows with the index
    assert [e["seq"] for e in top[1]] == list(np.argsort(-PERM, kind="stable")[:8])
    assert [e["seq"] for e in top[3]] == list(range(8))                # all zero: ties by sequence index
    for j, examples in top.items():
        for e in examples:
            rows = np.flatnonzero(res.seq == e["seq"])
            assert e["acts"] == pytest.approx(acts[rows, j].tolist(), rel=5e-3, abs=1e-9)
            assert e["max"] == pytest.approx(float(acts[rows, j].max()), rel=5e-3)
            assert e["letters"] == "".join(res.seq_text[e["seq"]][p] for p in res.pos[rows])
            assert e["region"] == res.region[rows].tolist() and e["imgt"] == res.imgt[rows].tolist()
            assert e["id"] == f"ab<{e['seq']}>&x"
            assert len(e["letters"]) == len(e["acts"]) == len(e["region"])
    last = top[0][0]                                                   # sequence 11 is stored cut short
    assert len(last["acts"]) == len(res.seq_text[11]) - CUT
    assert set(np.flatnonzero(top[0][0]["acts"])) == {i for i, r in enumerate(last["region"]) if r == 5}


def test_residue_page_in_headless_chromium(data, tmp_path):
    res, _, top = data
    notes = {0: "region:CDR3 F1 0.81", 1: "<b>position</b> & 8", 3: "dead"}
    page_path = write_residue_page(tmp_path, top, notes, title="toy <SAE>")
    assert page_path == tmp_path / "residues.html"
    text = page_path.read_text()
    assert "<b>position</b>" not in text and "ab<0>" not in text      # escaped, JSON-embedded
    with browser_page(page_path, 640, 800) as page:  # narrow: rows wrap
        page.wait_for_selector("body[data-ready='1']")
        assert page.title() == "toy <SAE>"
        assert page.locator("#list li").count() == 3
        assert page.inner_text("#list li >> nth=1").strip() == "#1 <b>position</b> & 8"
        assert page.get_attribute("#view", "data-latent") == "0"
        assert page.locator("#legend > div").count() == len(REGIONS)
        exs = page.locator("#view .ex")
        assert exs.count() == 8
        for i, e in enumerate(top[0]):
            ex = exs.nth(i)
            assert ex.locator(".aa").count() == len(e["acts"]) == ex.locator(".rg").count()
            assert "".join(ex.locator(".aa").all_inner_texts()) == e["letters"]
            assert e["id"] in ex.locator(".hd").inner_text()
        first = exs.nth(0)
        colors = first.locator(".aa").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
        hot = int(np.argmax(top[0][0]["acts"]))
        assert colors[hot] == "rgb(255, 140, 0)" and colors[1] == "rgb(255, 255, 255)"
        tracks = first.locator(".rg").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
        assert tracks[0] == "rgba(0, 0, 0, 0)"                    # outside the domain: blank
        assert len({c for c, r in zip(tracks, top[0][0]["region"]) if r == 5}) == 1
        assert len(set(tracks[1:])) == len(set(top[0][0]["region"][1:]))
        # letter over its region cell in every column, also where the row wraps
        boxes = first.locator(".col").evaluate_all(
            "els => els.map(e => [e.children[0].getBoundingClientRect(), e.children[1].getBoundingClientRect()])"
            ".map(([a, r]) => [a.left, r.left, a.bottom, r.top])")
        assert len({round(bottom) for _, _, bottom, _ in boxes}) > 1  # it wrapped
        assert all(abs(a - r) < 0.5 and 0 <= top_ - bottom < 3 for a, r, bottom, top_ in boxes)
        title = first.locator(".col").nth(hot).get_attribute("title")
        assert re.search(r"IMGT \d+", title) and "CDR3" in title and "activation" in title
        page.click("#list li >> nth=1")
        assert page.get_attribute("#view", "data-latent") == "1"
        assert page.locator("#list li.on").get_attribute("data-latent") == "1"
        assert f"ab<{top[1][0]['seq']}>&x" in page.inner_text("#view .ex >> nth=0 >> .hd")
        page.keyboard.press("ArrowDown")
        assert page.get_attribute("#view", "data-latent") == "3"


def test_residue_strip_png(data, tmp_path):
    _, _, top = data
    path = residue_strip_png(top, {0: "region:CDR3 F1 0.81", 1: "one position"}, tmp_path / "strips.png",
                             latents=[0, 1], per_latent=3)
    assert path.exists() and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
