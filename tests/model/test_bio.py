"""Antibody sequences, their per-residue labels, and residue dumps (extract/bio/)."""

from __future__ import annotations

import numpy as np
import pytest

from extract.bio.labels import CONSERVED, REGIONS, Annotator
from extract.bio.sequences import SequenceError, read_sequences

HEAVY = ("EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKGRFTISRDNSKNTLYLQMNSLRAEDTAVYYCAK"
         "DRGYSSGWYFDYWGQGTLVTVSS")


def test_real_sets_ship_offline():
    heavy = read_sequences("abnativ:vh")
    assert len(heavy) == 50_000 and len({a.sequence for a in heavy}) == 50_000
    assert all(90 <= len(a.sequence) <= 160 for a in heavy)


def test_fasta_and_csv(tmp_path):
    (tmp_path / "a.fasta").write_text(f">one some words\n{HEAVY[:60]}\n{HEAVY[60:]}\n\n>two\nevqlv\n")
    seqs = read_sequences(str(tmp_path / "a.fasta"))
    assert [(a.id, a.sequence) for a in seqs] == [("one", HEAVY), ("two", "EVQLV")]
    (tmp_path / "oas.csv").write_text(f"sequence_id,v_call,sequence_alignment_aa\nx1,IGHV3-23,{HEAVY}\n")
    assert read_sequences(str(tmp_path / "oas.csv"))[0].sequence == HEAVY


@pytest.mark.parametrize("text, message", [
    (">a\nEVQLXES\n", "sequence 'a' .*'X' at position 5 is not one of the 20 amino acids"),
    ("EVQL\n", "line 1: FASTA must start with a '>' header"),
    ("", "holds no sequences"),
    (">a\n\n>b\nEVQ\n", "sequence 'a' .* is empty"),
])
def test_bad_sequence_files(tmp_path, text, message):
    path = tmp_path / "bad.fasta"
    path.write_text(text)
    with pytest.raises(SequenceError, match=message):
        read_sequences(str(path))


def test_labels_of_a_germline_heavy_chain():
    a = Annotator()(HEAVY)
    assert (a.chain, a.v_gene, a.v_family, a.j_gene.split("*")[0]) == ("H", "IGHV3-23*04", "IGHV3", "IGHJ4")
    # regions come in order, each a contiguous run; CDR3 is the junction CAK...DY minus its anchors
    runs = [int(r) for i, r in enumerate(a.region) if i == 0 or r != a.region[i - 1]]
    assert runs == list(range(len(REGIONS)))
    cdr3 = "".join(c for c, r in zip(HEAVY, a.region) if REGIONS[r] == "CDR3")
    assert cdr3 == "AKDRGYSSGWYFDY"
    for pos, letters in CONSERVED.values():
        assert HEAVY[a.imgt.index(pos)] in letters
    # a germline sequence: nothing mutated outside CDR3, where there is no germline to compare with
    assert set(a.mutated[a.region != REGIONS.index("CDR3")].tolist()) == {0}
    assert set(a.mutated[a.region == REGIONS.index("CDR3")].tolist()) == {-1}
    mutant = HEAVY[:9] + "D" + HEAVY[10:]  # IMGT 11: G -> D
    assert Annotator()(mutant).mutated.tolist() == [0] * 9 + [1] + a.mutated.tolist()[10:]
    assert Annotator()("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ") is None


def test_residue_dump_rows_are_each_sequence_alone(residue_dump):
    """Padded batches store exactly what one unpadded forward of each sequence gives, residues only,
    in the order and with the labels residues.npz records."""
    import torch

    from extract.models import load_model
    from mechinterp.formats.residues import load_residues
    from mechinterp.formats.store import open_store

    out, cfg, summary = residue_dump
    res = load_residues(out)
    model = load_model("sapiens-vh", device="cpu")
    full = {a.id: a.sequence for a in read_sequences("abnativ:vh")}
    assert summary["rows"] == len(res) and len(res) % cfg.ctx == 0 and summary["n_sequences"] + summary["rejected"] == 40
    for hook in summary["hooks"][:2]:
        store = open_store(out / hook)
        assert store.n_rows == len(res)
        rows = np.concatenate([store.window_rows(w) for w in range(store.n_windows)]).astype(np.float32)
        tokens = np.concatenate([store.window_tokens(w) for w in range(store.n_windows)])
        assert np.array_equal(tokens, res.token)
        for k in (0, int(res.seq[len(res) // 2]), int(res.seq[-1])):  # the last one is cut short
            at = np.flatnonzero(res.seq == k)
            text = full[str(res.seq_ids[k])]
            assert "".join(model.tokenizer.convert_ids_to_tokens(res.token[at].tolist())) == text[:len(at)]
            with torch.no_grad():
                _, c = model.run_with_cache(model.to_tokens(text), names=[hook])
            ref = c[hook][0, 1:len(at) + 1].numpy()
            assert np.abs(rows[at] - ref).max() <= 2e-3 * max(1.0, np.abs(ref).max())
            assert np.array_equal(res.pos[at], np.arange(len(at)))
    # held-out sequences fill the last windows, which the store's split returns as eval
    train, held = store.split()
    assert len(held) and set(res.seq[held[0] * cfg.ctx:]) <= set(np.flatnonzero(res.seq_heldout))
    assert not set(res.seq[: train[-1] * cfg.ctx]) & set(np.flatnonzero(res.seq_heldout))
    assert set(np.unique(res.region)) <= set(range(-1, len(REGIONS))) and (res.region >= 0).mean() > 0.95


def test_bio_dump_command_refuses_bad_input(tmp_path, capsys):
    from mechinterp.cli.stages.bio_dump import main

    (tmp_path / "bad.fasta").write_text(">ab1\nEVQLVESGGGLVQPGB\n")
    for argv, line in (
        (["--sequences", str(tmp_path / "bad.fasta")],
         f"error: sequence 'ab1' ({tmp_path / 'bad.fasta'}): 'B' at position 16 is not one of the 20 amino acids "
         "(ACDEFGHIKLMNPQRSTVWY); fix or drop that sequence"),
        (["--model", "sapiens-vh", "--sequences", "abnativ:vq"],
         "error: unknown abnativ set 'vq'; use abnativ, abnativ:vh or abnativ:vl")):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--out", str(tmp_path / "out")])
        assert exit_.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [line]
    assert not (tmp_path / "out").exists()


def test_alignment_counts_f1_exactly():
    """Held-out F1 at the threshold chosen on training rows, against hand-computed values; a domain-level
    concept's recall counts instances found (InterPLM), a residue-level one's residues."""
    from interventions.bio import alignment

    rng = np.random.default_rng(0)
    n = 2000
    labels = np.zeros((n, 3), bool)
    labels[rng.choice(n, 300, replace=False), 0] = True
    labels[rng.choice(n, 400, replace=False), 1] = True
    labels[np.arange(n) % 20 < 5, 2] = True  # domain-level: 100 instances of 5 rows
    units = np.zeros((n, 4), np.float32)
    units[labels[:, 0], 0] = rng.uniform(0.5, 2.0, labels[:, 0].sum())  # fires exactly on concept 0
    units[:, 1] = rng.uniform(0, 1, n)  # fires everywhere
    units[labels[:, 1], 2] = 1.0
    units[np.arange(n) % 20 == 2, 3] = 1.0  # once per instance of concept 2
    units[[1502, 1602], 3] = 0.0  # ... except in 2 of the 25 held-out instances
    heldout = np.arange(1500, n)
    missed = np.flatnonzero(labels[heldout, 1])[::5] + 1500  # held out: unit 2 misses a fifth of concept 1
    units[missed, 2] = 0.0
    concepts = alignment.Concepts(["c0", "c1", "c2"], lambda rows: labels[rows],
                                  lambda rows: np.stack([np.full(len(rows), -1)] * 2 + [rows // 20], 1),
                                  (False, False, True))
    # in two chunks that split no instance: the counts add up
    r = alignment.align(lambda: iter([(np.arange(1000), units[:1000]), (np.arange(1000, n), units[1000:])]),
                        concepts, heldout)
    assert r["f1"][0, 0] == pytest.approx(1.0)
    held_pos = labels[heldout, 1].sum()
    recall = 1 - len(missed) / held_pos
    assert r["f1"][2, 1] == pytest.approx(2 * recall / (1 + recall)) == pytest.approx(r["f1_residue"][2, 1])
    assert r["f1"][1, 0] < 0.4 and r["f1"][1, 1] < 0.5  # fires everywhere: precision = base rate
    assert alignment.trivial_f1(labels[heldout, 1].sum(), len(heldout)) == pytest.approx(r["f1"][1, 1], abs=0.02)
    # unit 3: precision 1, 23 of 25 held-out instances found, 23 of 125 residues
    assert r["recall"][3, 2] == pytest.approx(23 / 25) and r["f1"][3, 2] == pytest.approx(2 * 0.92 / 1.92)
    assert r["f1_residue"][3, 2] == pytest.approx(2 * (23 / 125) / (1 + 23 / 125))
    # with 100 silent units appended the activations are sparse and counted entry by entry: the same numbers
    wide = np.concatenate([units, np.zeros((n, 100), np.float32)], 1)
    r_sparse = alignment.align(lambda: iter([(np.arange(n), wide)]), concepts, heldout)
    for key in ("f1", "f1_residue", "precision", "recall", "threshold"):
        assert np.allclose(r_sparse[key][:4], r[key]), key
    assert not r_sparse["f1"][4:].any()
    summary = alignment.summary(["c0", "c1", "c2"], {"units": r}, len(heldout), 0.5)
    assert summary["c0"]["units"]["aligned"] == 1 and summary["c1"]["units"]["best_unit"] == 2
    assert summary["c2"]["units"]["best_unit"] == 3 and summary["c2"]["units"]["aligned_residue"] == 0


def test_bio_eval_with_an_exact_sae(exact_sae):
    """An SAE whose latents are the residual dimensions with either sign reconstructs exactly: its
    masked-residue loss recovered is 1 and its alignment is the residual dimensions' own."""
    sae, r = exact_sae
    loss = r["masked_residue_loss"]
    assert loss["recovered_vs_zero"] == pytest.approx(1.0, abs=1e-4) and loss["loss_zero"] > loss["loss_clean"] + 0.5
    assert set(r["units"]) == {"sae_latents", "residual_dims", "mlp_neurons"} and r["units"]["mlp_neurons"] == 256
    assert (sae / "bio_eval" / "alignment.npz").exists()
    for concept in r["concepts"].values():
        for key in ("aligned", "aligned_residue"):
            assert concept["sae_latents"][key] == concept["residual_dims"][key]
        assert concept["sae_latents"]["best_f1"] == pytest.approx(concept["residual_dims"]["best_f1"], abs=1e-6)
        # InterPLM's recall (instances found) is never below the per-residue recall
        assert concept["sae_latents"]["best_f1"] >= concept["sae_latents"]["best_f1_residue"] - 1e-9
    assert (sae / "bio_eval" / "alignment.png").stat().st_size > 10_000


def test_bio_eval_refuses_an_sae_whose_store_is_gone(residue_dump, tmp_path):
    from interventions.bio.evaluate import BioEvalConfig, evaluate
    from mechinterp.formats.sae import export_sae
    from mechinterp.formats.store import open_store

    out, _, _ = residue_dump
    store = open_store(out / "blocks.1.hook_normalized_resid_post")
    d = store.d_model
    weights = dict(W_enc=np.eye(d, dtype=np.float32), b_enc=np.zeros(d, np.float32), W_dec=np.eye(d, dtype=np.float32),
                   b_dec=np.zeros(d, np.float32))
    sae = export_sae(tmp_path / "sae", weights, "relu", 0, 1.0, store.meta, str(tmp_path / "gone"), {}, {})
    with pytest.raises(ValueError, match="the store it was trained on .*gone.* is gone; re-run mechinterp bio-dump"):
        evaluate(BioEvalConfig(sae=str(sae)))


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_bio_dump_killed_midway_resumes_to_the_same_bytes(residue_dump, tmp_path):
    """kill -9 after the first windows are written, re-run: every store and the labels equal the
    uninterrupted dump byte for byte."""
    import signal
    import subprocess
    import sys
    import time

    from builders import SLOWED
    from conftest import REPO

    from mechinterp.formats.store import read_meta

    ref, cfg, summary = residue_dump
    out = tmp_path / "acts"
    argv = ["bio-dump", "--model", cfg.model, "--sequences", cfg.sequences, "--n_sequences", str(cfg.n_sequences),
            "--layers", cfg.layers, "--ctx", str(cfg.ctx), "--batch", str(cfg.batch), "--device", "cpu", "--no_progress",
            *[x for h in cfg.hooks for x in ("--hook", h)], "--out", str(out)]
    slow = SLOWED.format(module="mechinterp.formats.store_writer", cls="StoreWriter", method="write",
                         body="time.sleep(1.0); return real(self, *a, **k)")
    proc = subprocess.Popen([sys.executable, "-c", slow, *argv], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    hook = out / summary["hooks"][0]
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if read_meta(hook).windows_done > 0:
                break
        except Exception:  # not written yet
            pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    done = read_meta(hook).windows_done
    assert 0 < done < read_meta(hook).n_windows
    r = subprocess.run([sys.executable, "-m", "mechinterp", *argv], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for h in summary["hooks"]:
        for name in ("acts.npy", "tokens.npy"):
            assert (out / h / name).read_bytes() == (ref / h / name).read_bytes(), (h, name)
    with np.load(out / "residues.npz") as a, np.load(ref / "residues.npz") as b:
        assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_bio_dump_refuses_stores_of_other_sequences(tmp_path, capfd):
    """The same sequence file reordered draws other sequences: the stores (and their labels) made
    from the old order are refused, not relabelled."""
    from extract.bio.sequences import read_sequences
    from mechinterp.cli import main as cli

    seqs = read_sequences("abnativ:vh")[:24]
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text("".join(f">{s.id}\n{s.sequence}\n" for s in seqs))
    out = tmp_path / "acts"
    argv = ["bio-dump", "--model", "sapiens-vh", "--sequences", str(fasta), "--n_sequences", "12", "--layer", "1",
            "--ctx", "32", "--device", "cpu", "--no_progress", "--out", str(out)]
    cli(argv)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    fasta.write_text("".join(f">{s.id}\n{s.sequence}\n" for s in reversed(seqs)))
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        cli(argv)
    err = capfd.readouterr().err
    assert e.value.code == 2 and "holds a different store (the sequences changed since it was written)" in err, err
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
