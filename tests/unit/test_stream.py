"""Training from a live stream: a torch producer process writes each batch of every layer's (mlp_in,
mlp_out) rows into a shared-memory ring, the JAX process trains every layer's transcoder from it.
The rows are a dump's rows; an interrupted run resumes to the weights of an uninterrupted one; a
producer that fails or dies, a consumer that goes away, a corpus that runs out, a ring that cannot
be made and a resume with other settings each end in one clear line."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from extract.dump import DumpConfig, dump_activations
from mechinterp.formats.errors import SAEError
from mechinterp.formats.ring import PLAN, Ring, RingError
from mechinterp.formats.sae import load_export
from mechinterp.formats.store import open_store
from sae_jax.config import TrainConfig
from sae_jax.stream_fit import ProducerProcess, StreamConfig
from sae_jax.transcoders import TranscoderRun, train_transcoders

pytestmark = pytest.mark.slow  # starts fresh interpreters (the held-out dump, the producer)

SCFG = dict(arch="topk", d_sae=64, k=4)
LAYERS = ("blocks.{L}.hook_mlp_in", "blocks.{L}.hook_mlp_out")


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """120 BBC articles cut to 1,500 characters (about 40k tokens)."""
    from extract.corpus import open_corpus

    root, bbc = tmp_path_factory.mktemp("docs"), open_corpus("bbc")
    for i in range(120):
        (root / f"{i:03d}.txt").write_text(bbc[i * 15][:1500])
    return root


def _stream(tiny_dir, docs_dir, **kw):
    return StreamConfig(**{**dict(model=str(tiny_dir), corpus=f"dir:{docs_dir}", ctx=16, heldout_tokens=1500,
                                  forward_windows=4), **kw})


def _tcfg(**kw):
    return TrainConfig(**{**dict(steps=40, batch=128, lr=1e-2, progress=False, ckpt_every=12, eval_tokens=2000,
                                 init_tokens=600, log_every=4), **kw})


def _train(out, tiny_dir, docs_dir, tcfg=None, stop_at=None, scfg=SCFG, said=None, **stream):
    run = TranscoderRun(acts=str(out / "heldout"), out=str(out))
    return train_transcoders(run, dict(scfg), tcfg or _tcfg(), stream=_stream(tiny_dir, docs_dir, **stream),
                             stop_at=stop_at, say=(lambda msg, **_: said.append(msg)) if said is not None else print)


def _weights(out, layer):
    return load_export(out / f"layer_{layer}" / "sae")[0]


@pytest.fixture(scope="module")
def streamed(tiny_dir, docs, tmp_path_factory):
    out = tmp_path_factory.mktemp("streamed")
    return out, _train(out, tiny_dir, docs)


def test_every_layer_trains_from_the_stream_and_is_exported(streamed):
    out, summary = streamed
    assert summary["trained_from"] == "stream" and [r["layer"] for r in summary["layers"]] == [0, 1]
    assert summary["train_tokens"] == 40 * 128 and summary["set_complete"]
    assert all(r["fvu"] < 0.95 and r["l0"] <= 4 for r in summary["layers"]), summary["layers"]
    assert (out / "circuit_tracer").is_dir() and (out / "fvu_by_layer.png").stat().st_size > 0
    # the held-out curve: at the start and at every checkpoint, falling, with a power law through its tail
    tokens = [t for t, _ in summary["curve"][0]]
    assert tokens == [0, 12 * 128, 24 * 128, 36 * 128, 40 * 128] and (out / "fvu_curve.png").stat().st_size > 0
    assert all(c[-1][1] < c[0][1] for c in summary["curve"].values()), summary["curve"]
    assert summary["power_law"]["b"] > 0 and summary["stream_tokens_per_s"] > 0
    assert not list(out.glob("**/ring-*"))  # the ring lives in shared memory and is removed at the end


def test_the_streamed_rows_are_the_rows_a_dump_of_the_same_windows_holds(tiny_dir, docs, streamed, tmp_path):
    """The producer's batches, unshuffled, equal a float32 dump of the windows after the held-out dump's."""
    from extract.stream import Producer

    out, _ = streamed
    held = open_store(out / "heldout" / "blocks.1.hook_mlp_in")
    skip = held.meta.corpus["train_windows"][1]
    full = tmp_path / "full"
    dump_activations(DumpConfig(model=str(tiny_dir), hooks=LAYERS, layers="1", ctx=16, n_tokens=15 * (skip + 40),
                                corpus=f"dir:{docs}", dtype="float32", out=str(full), progress=False))
    d_in, d_out = open_store(full / "blocks.1.hook_mlp_in"), open_store(full / "blocks.1.hook_mlp_out")
    windows = np.arange(skip, d_in.meta.corpus["train_windows"][1])
    expect = np.concatenate([d_in.read_windows(windows, skip_bos=True), d_out.read_windows(windows, skip_bos=True)], 1)

    stream = _stream(tiny_dir, docs, shuffle_batches=2)
    ring = Ring.create(tmp_path / "ring", 1, 64, 128, 2, stream.producer([[LAYERS[0].format(L=1), LAYERS[1].format(L=1)]],
                                                                        skip, 6, _tcfg()))
    first, buf = next(iter(Producer(ring, 2).buffers(6)))  # a producer started at batch 2: its buffer [2, 4)
    assert first == 2 and buf.shape == (1, 128, 128)
    unshuffled = np.empty_like(buf[0])
    unshuffled[np.random.default_rng([0, 2]).permutation(128)] = buf[0]
    np.testing.assert_allclose(unshuffled, expect[2 * 64:4 * 64], rtol=1e-5, atol=1e-5)
    ring.remove()


def test_an_interrupted_stream_resumes_to_the_uninterrupted_weights(tiny_dir, docs, streamed, tmp_path):
    out, _ = streamed
    docs_dir = docs
    assert _train(tmp_path, tiny_dir, docs_dir, stop_at=29) == {"stopped_at": 29}  # a crash after checkpoint 24
    with pytest.raises(SAEError, match=r"was made with k=4, this run asks for k=8"):
        _train(tmp_path, tiny_dir, docs_dir, scfg=dict(SCFG, k=8))
    resumed = _train(tmp_path, tiny_dir, docs_dir)
    assert json.loads((tmp_path / "layer_0" / "sae" / "cfg.json").read_text())["mechinterp"]["resumed_from"] == 24
    for layer in (0, 1):
        a, b = _weights(out, layer), _weights(tmp_path, layer)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"layer {layer} {name}")
    assert json.loads(json.dumps(resumed["curve"])) == json.loads((out / "transcoders.json").read_text())["curve"]
    assert resumed["layers"] == _train(out, tiny_dir, docs_dir)["layers"]  # re-running a finished set re-exports it


def test_a_corpus_that_runs_out_trains_on_what_there_is(tiny_dir, docs_dir, tmp_path):
    said: list[str] = []
    summary = _train(tmp_path, tiny_dir, docs_dir, tcfg=_tcfg(steps=5000, ckpt_every=1000, batch=64, init_tokens=300),
                     said=said, heldout_tokens=600)
    steps = summary["train_tokens"] // 64
    assert 10 < steps < 5000 and any(f"fewer than --steps 5000: training {steps} steps" in s for s in said), said


def test_a_producer_that_fails_or_dies_is_one_clear_error(tiny_dir, docs_dir, tmp_path):
    stream = _stream(tiny_dir, docs_dir, model=str(tmp_path / "no-such-model"))
    ring = Ring.create(tmp_path, 1, 64, 128, 2, stream.producer([list(LAYERS)], 0, 4, _tcfg()))
    with pytest.raises(SAEError, match=r"^the stream's producer failed: .*no-such-model.*; what was trained is saved"):
        ProducerProcess(ring, 0).receive(PLAN)
    ring.remove()

    good = _stream(tiny_dir, docs_dir).producer([[h.format(L=0) for h in LAYERS]], 0, 4, _tcfg())
    ring = Ring.create(tmp_path, 1, 64, 128, 2, good)
    producer = ProducerProcess(ring, 0)
    producer.proc.kill()
    with pytest.raises(SAEError, match=r"producer died \(exit -9\) without a word"):
        producer.receive(PLAN)
    ring.remove()


def test_a_consumer_that_goes_away_stops_the_producer(tiny_dir, docs_dir, tmp_path):
    good = _stream(tiny_dir, docs_dir).producer([[h.format(L=0) for h in LAYERS]], 0, 40, _tcfg())
    ring = Ring.create(tmp_path, 1, 64, 128, 2, good)
    producer = ProducerProcess(ring, 0)
    assert producer.receive(PLAN)[2] == 40
    t0 = time.monotonic()
    producer.bell.close()  # as if this process died: the producer sees its pipes close
    assert producer.proc.wait(timeout=30) == 0 and time.monotonic() - t0 < 30
    ring.remove()


def test_a_ring_that_cannot_be_made_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RingError, match=r"cannot make a ring in .*/file/sub \(Not a directory\); pass --ring_dir a "
                                        "writable folder"):
        Ring.create(tmp_path / "file" / "sub", 1, 64, 128, 2, {})
    with pytest.raises(RingError, match=r"a ring of 2 slots needs [\d.]+ GB and .* GB free; pass fewer --ring_slots"):
        Ring.create(tmp_path, 1000, 10**6, 1024, 2, {})


def test_train_sae_streams_one_site(tiny_dir, docs, tmp_path):
    from mechinterp.cli import main as cli

    out = tmp_path / "sae"
    cli(["train-sae", "--stream", "--model", str(tiny_dir), "--corpus", f"dir:{docs}", "--hook", "blocks.1.hook_resid_pre",
         "--ctx", "16", "--heldout_tokens", "1500", "--init_tokens", "600", "--forward_windows", "4", "--arch", "topk",
         "--k", "4", "--d_sae", "64", "--steps", "40", "--batch", "128", "--lr", "1e-2", "--eval_tokens", "2000",
         "--out", str(out), "--no_progress"])
    cfg = json.loads((out / "sae" / "cfg.json").read_text())
    assert cfg["hook_name"] == "blocks.1.hook_resid_pre" and cfg["d_in"] == 64
    record = json.loads((out / "stream.json").read_text())
    assert record["hook"] == "blocks.1.hook_resid_pre" and record["curve"][-1][0] == 40 * 128
    assert record["curve"][-1][1] < record["curve"][0][1] < 2 and record["stream_tokens_per_s"] > 0
    assert json.loads((out / "sae" / "metrics.json").read_text())["fvu"] < 0.9
