"""The bad-input table: every stage, given what a new user gets wrong, answers with one `error:`
line and exit status 2, no traceback, and leaves every file already on disk as it was.

Each row runs `mechinterp <stage> ...` in-process (one interpreter for the table) against a small
real workspace: a tiny random Llama saved as a model directory, two stores dumped from it (same
width, different hooks) and a TopK SAE trained on one of them. Rows that need a fault (a full disk,
a held lock) inject it with monkeypatch at the system boundary (shutil.disk_usage, the orbax write,
a flock held by this process)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from mechinterp.cli import main as cli
from mechinterp.formats.store_writer import FolderLock, StoreLock

pytestmark = pytest.mark.slow  # every stage, end to end

TRAIN = ["--arch", "topk", "--k", "4", "--d_sae", "128", "--steps", "30", "--batch", "128", "--ckpt_every", "10",
         "--eval_tokens", "200", "--no_progress"]
STREAM = "--model {model} --corpus dir:{docs} --ctx 16 --heldout_tokens 600 --init_tokens 200"


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_dir, docs_dir):
    """The workspace every row runs against (paths by name)."""
    root = tmp_path_factory.mktemp("ws")
    w = {"root": root, "model": str(tiny_dir), "docs": str(docs_dir)}
    dump = ["dump", "--model", str(tiny_dir), "--corpus", f"dir:{docs_dir}", "--ctx", "16", "--n_tokens", "600",
            "--no_progress"]
    for name, hook in (("store", "blocks.1.hook_resid_pre"), ("store_mlp", "blocks.1.hook_mlp_out"),
                       ("store_post", "blocks.1.mlp.hook_post")):
        cli([*dump, "--hook", hook, "--out", str(root / name)])
        w[name] = str(root / name)
    cli([*dump, "--hook", "blocks.1.hook_resid_pre", "--seed", "1", "--out", str(root / "store_seed1")])
    w["store_seed1"] = str(root / "store_seed1")
    (root / "organism_no_manifest").mkdir()                       # adapters without the manifest that says how
    (root / "organism_no_manifest" / "adapters.safetensors").write_bytes(b"")
    w["organism_no_manifest"] = str(root / "organism_no_manifest")
    cli(["train-sae", "--acts", w["store"], "--out", str(root / "run"), *TRAIN])
    w["run"], w["sae"] = str(root / "run"), str(root / "run" / "sae")
    cli(["browse", "--sae", w["sae"], "--out", str(root / "stats"), "--no_model"])     # statistics, offline labels
    w["stats"] = str(root / "stats")

    def copy(src: str, name: str) -> Path:
        shutil.copytree(src, root / name)
        w[name] = str(root / name)
        return root / name

    acts = copy(w["store"], "store_trunc") / "acts.npy"
    acts.write_bytes(acts.read_bytes()[:-4096])
    (copy(w["store"], "store_listmeta") / "meta.json").write_text("[]")
    half = copy(w["store"], "store_half") / "meta.json"          # as a dump interrupted half-way leaves it
    half.write_text(json.dumps({**json.loads(half.read_text()), "complete": False, "windows_done": 20}))
    (copy(w["sae"], "sae_listcfg") / "cfg.json").write_text("[1, 2]")
    (copy(w["sae"], "sae_nometrics") / "metrics.json").unlink()
    gone = copy(w["sae"], "sae_store_gone") / "cfg.json"          # trained on a store since deleted
    gone.write_text(gone.read_text().replace(json.dumps(w["store"]), json.dumps(str(root / "deleted_store"))))
    mlp_post = copy(w["sae"], "sae_mlp_post") / "cfg.json"       # a hook that exists, with another width (128)
    mlp_post.write_text(mlp_post.read_text().replace("blocks.1.hook_resid_pre", "blocks.1.mlp.hook_post"))
    nan = copy(w["sae"], "sae_nan") / "sae_weights.safetensors"  # a training that diverged, exported anyway
    from safetensors.numpy import load_file, save_file
    weights = load_file(str(nan))
    weights["W_enc"][3, 5] = np.nan
    save_file(weights, str(nan))
    (copy(w["sae"], "sae_badmetrics") / "metrics.json").write_text('{"fvu": 0.1,')
    (root / "afile").write_text("a file where a folder should go")
    w["afile"] = str(root / "afile")
    damaged = root / "graph_damaged"  # a trace folder whose graph was cut short
    damaged.mkdir()
    (damaged / "graph.json").write_text(json.dumps({"n_layers": 2, "meta": {}}))
    (damaged / "graph.npz").write_bytes(b"PK\x03\x04 cut short")
    w["graph_damaged"] = str(damaged)
    (root / "two_stores").mkdir()  # a folder of stores of two sites, as a pairs dump leaves them
    for name in ("store", "store_mlp"):
        shutil.copytree(w[name], root / "two_stores" / name)
    w["two_stores"] = str(root / "two_stores")
    other = root / "steer_other"  # results of another SAE
    other.mkdir()
    (other / "inputs.json").write_text(json.dumps({"--sae": "/elsewhere/run/sae"}))
    w["steer_other"] = str(other)
    for name, inputs in (("trace_other", {"--set": "/elsewhere/set", "--prompt": "another prompt"}),
                         ("ioi_other", {"--model": "/elsewhere/model"}),
                         ("compare_other", {"--saes": "/elsewhere/a/sae /elsewhere/b/sae"})):
        (root / name).mkdir()
        (root / name / "inputs.json").write_text(json.dumps(inputs))
        w[name] = str(root / name)
    from builders import write_set

    w["tcset"] = str(write_set(root / "tcset", str(tiny_dir), 64, 2))     # random transcoders, every layer
    w["tcset_one"] = str(write_set(root / "tcset_one", str(tiny_dir), 64, 1))
    (root / "one_doc").mkdir()
    (root / "one_doc" / "a.txt").write_text("One document alone cannot be split into training and held-out text. " * 30)
    (root / "binary").mkdir()
    for i in range(3):
        (root / "binary" / f"{i}.txt").write_bytes(bytes(range(256)) * 20)
    (root / "binary" / "ok.txt").write_text("plain text " * 50)
    return w


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root (the dump lock's pid record is not data)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != StoreLock.NAME}


def run_row(argv: list[str], capfd) -> str:
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    err = capfd.readouterr().err
    assert exit_info.value.code == 2, err
    return err


# (row id, argv with {placeholders} from the workspace, the error line's first words[, the only new
# files it may leave: a run that trained to the end and then failed its held-out check keeps its checkpoints])
ROWS = [
    # dump
    ("dump-missing-corpus", "dump --model {model} --corpus dir:{root}/nope --out {root}/o", "error: corpus dir:"),
    ("dump-binary-corpus", "dump --model {model} --corpus dir:{root}/binary --out {root}/o",
     "error: corpus dir:{root}/binary: 3 of 4 .txt files are binary or not UTF-8"),
    ("dump-one-document", "dump --model {model} --corpus dir:{root}/one_doc --ctx 16 --n_tokens 300 --out {root}/o",
     "error: the corpus dir:{root}/one_doc has 1 document: too few to hold any out"),
    ("dump-truncated-store", "dump --model {model} --corpus dir:{docs} --ctx 16 --n_tokens 600 "
     "--hook blocks.1.hook_resid_pre --out {store_trunc}", "error: {store_trunc}/acts.npy is truncated"),
    ("dump-meta-not-object", "dump --model {model} --corpus dir:{docs} --ctx 16 --n_tokens 600 "
     "--hook blocks.1.hook_resid_pre --out {store_listmeta}", "error: {store_listmeta}/meta.json holds a JSON list"),
    ("dump-pos-embed-on-llama", "dump --model {model} --hook hook_pos_embed --out {root}/o",
     "error: hook 'hook_pos_embed' does not exist in this architecture"),
    ("dump-unknown-hook", "dump --model {model} --hook blocks.1.hook_nope --out {root}/o",
     "error: unknown hook 'blocks.1.hook_nope'; valid hooks: hook_embed, ln_final.hook_normalized,"),
    ("dump-bad-n-tokens", "dump --model {model} --n_tokens 0 --out {root}/o", "error: --n_tokens"),
    ("dump-layers-out-of-range", "dump --model {model} --hook 'blocks.{{L}}.hook_mlp_in' --layers 1,5 --out {root}/o",
     "error: --layers '1,5': the model has layers 0..1, not [5]"),
    # train-sae and sweep-sae
    ("train-resume-other-hook", "train-sae --acts {store_mlp} --out {run} " + " ".join(TRAIN),
     "error: the checkpoint in {run}/checkpoints was made with store hook=blocks.1.hook_resid_pre, this run asks "
     "for store hook=blocks.1.hook_mlp_out"),
    ("train-resume-other-k", "train-sae --acts {store} --out {run} " + " ".join(TRAIN).replace("--k 4", "--k 8"),
     "error: the checkpoint in {run}/checkpoints was made with k=4, this run asks for k=8"),
    ("train-resume-other-seed", "train-sae --acts {store} --out {run} --seed 3 " + " ".join(TRAIN),
     "error: the checkpoint in {run}/checkpoints was made with seed=0, this run asks for seed=3"),
    ("train-nan", "train-sae --acts {store} --out {root}/o --lr 1e30 " + " ".join(TRAIN),
     "error: loss became non-finite"),
    ("train-diverged", "train-sae --acts {store} --out {root}/o --lr 1e3 " + " ".join(TRAIN),
     "error: training diverged: the training FVU is"),
    ("train-too-short", "train-sae --acts {store} --out {root}/o --arch jumprelu --steps 2 --batch 128 --no_progress",
     "error: training diverged: its held-out explained variance is", "o/checkpoints/"),
    ("train-incomplete-store", "train-sae --acts {store_half} --out {root}/o " + " ".join(TRAIN),
     "error: {store_half} is incomplete (20/40 windows)"),
    ("train-meta-not-object", "train-sae --acts {store_listmeta} --out {root}/o " + " ".join(TRAIN),
     "error: {store_listmeta}/meta.json holds a JSON list"),
    ("train-truncated-store", "train-sae --acts {store_trunc} --out {root}/o " + " ".join(TRAIN),
     "error: {store_trunc}/acts.npy is truncated"),
    ("train-missing-store", "train-sae --acts {root}/nope --out {root}/o " + " ".join(TRAIN),
     "error: no activation store at {root}/nope; create one with `mechinterp dump`"),
    ("train-k-over-d-sae", "train-sae --acts {store} --out {root}/o --arch topk --k 200 --d_sae 128",
     "error: --k 200 must be between 1 and --d_sae 128"),
    ("train-skip-without-target", "train-sae --acts {store} --out {root}/o --skip", "error: --skip is for transcoders"),
    ("sweep-transcoders", "sweep-sae --acts {store} --acts_out {store_mlp} --out {root}/o",
     "error: --acts_out: sweeps train SAEs only for now"),
    ("train-transcoders-no-pairs", "train-transcoders --acts {root} --out {root}/o",
     "error: no blocks.{{L}}.hook_mlp_in / hook_mlp_out store pairs in {root}"),
    ("eval-transcoders-no-set", "eval-transcoders --set {root}/nope", "error: no transcoders under {root}/nope"),
    ("bio-dump-no-file", "bio-dump --sequences {root}/nope.fasta --out {root}/o",
     "error: {root}/nope.fasta: no such file (give a FASTA or CSV file"),
    ("bio-eval-no-sae", "bio-eval --sae {root}/nope", "error: {root}/nope is not an SAE export"),
    ("bio-browse-not-aligned", "bio-browse --sae {sae}",
     "error: {sae} has no bio_eval/alignment.npz; run `mechinterp bio-eval --sae {sae}` first"),
    ("bio-causal-unknown-target", "bio-causal --sae {sae} --target CDR9",
     "error: unknown patching target 'CDR9'; choose from CDR3, Cys23, Cys104"),
    ("bio-unknown-stage", "bio --out {root}/o --force sea",
     "error: --force ['sea']: no such stage; stages are dump, sae, eval, browse, causal"),
    ("bio-layers-out-of-range", "bio-layers --size tiny --layers 2-5 --out {root}/o",
     "error: --layers '2-5': the model has layers 0..3, not [4, 5]"),
    ("sweep-resume-other-settings", "sweep-sae --acts {store} --out {run} --lr 1e-3 3e-3 " + " ".join(TRAIN),
     "error: the checkpoint in {run}/checkpoints was made with"),
    # eval-sae, browse, steer, ablate, shift
    ("eval-zero-windows", "eval-sae --sae {sae} --n_windows 0", "error: --n_windows 0 must be >= 1"),
    ("eval-other-model", "eval-sae --sae {sae} --model smollm2-135m-q4", "error: --model 'smollm2-135m-q4' is not the model"),
    ("eval-cfg-not-object", "eval-sae --sae {sae_listcfg}", "error: {sae_listcfg}/cfg.json holds a JSON list"),
    ("eval-unknown-metric", "eval-sae --sae {sae} --metrics core,purity", "error: --metrics: unknown metric 'purity'"),
    ("eval-unknown-probe-set", "eval-sae --sae {sae} --metrics probing --probe_sets imdb",
     "error: unknown labelled set 'imdb': use one of bbc_topic"),
    ("eval-probe-set-too-small", "eval-sae --sae {sae} --metrics probing --n_probe_train 10",
     "error: --n_probe_train 10 must be >= 20"),
    ("eval-class-too-small", "eval-sae --sae {sae} --metrics probing --probe_sets bbc_topic --n_probe_test 20",
     "error: labelled set bbc_topic: class 'business' has 4 test texts, fewer than the 5"),
    ("eval-store-gone", "eval-sae --sae {sae_store_gone}", "error: {sae_store_gone} was trained on the activation store"),
    ("compare-not-evaluated", "compare-saes --saes {sae} {sae_nometrics} --out {root}/o",
     "error: {sae_nometrics} has no metrics.json; evaluate it first"),
    ("browse-store-of-other-hook", "browse --sae {sae} --acts {store_mlp} --out {root}/o --no_model",
     "error: SAE {sae} was trained on hook blocks.1.hook_resid_pre but store {store_mlp} holds hook blocks.1.hook_mlp_out"),
    ("browse-bad-port", "browse --sae {sae} --out {root}/o --serve --port 70000", "error: --port 70000 must be in [0, 65535]"),
    ("steer-empty-prompt", "steer --sae {sae} --prompt '' --out {root}/o", "error: --prompt is empty"),
    ("steer-negative-tokens", "steer --sae {sae} --max_new_tokens -5 --out {root}/o", "error: --max_new_tokens -5 must be >= 1"),
    ("steer-bad-feature", "steer --sae {sae} --feature x1 --out {root}/o", "error: --feature must be a latent index"),
    ("steer-hook-of-other-width", "steer --sae {sae_mlp_post} --out {root}/o", "error: SAE {sae_mlp_post} has d_in=64"),
    ("ablate-bad-features", "ablate --sae {sae} --features 1,x --out {root}/o", "error: --features must be"),
    ("shift-missing-sae", "shift --sae {root}/nope --out {root}/o", "error: {root}/nope is not an SAE export"),
    ("shift-bad-features", "shift --sae {sae} --features 1,x --out {root}/o", "error: --features"),
    ("shift-bias-in-bios-offline", "shift --sae {sae} --data bias_in_bios --out {root}/o", "error: Bias in Bios"),
    # trace
    ("trace-no-set", "trace --set {root}/nope --prompt 'a b' --out {root}/o", "error: no transcoders under {root}/nope"),
    ("eval-sae-given-a-transcoder", "eval-sae --sae {tcset}/layer_0/sae",
     "error: {tcset}/layer_0/sae is a transcoder (blocks.0.hook_mlp_in -> blocks.0.hook_mlp_out), not an SAE"),
    ("compare-saes-given-a-transcoder", "compare-saes --saes {sae} {tcset}/layer_1/sae --out {root}/o",
     "error: {tcset}/layer_1/sae is a transcoder"),
    ("steer-given-a-transcoder", "steer --sae {tcset}/layer_0/sae --feature 3 --out {root}/o",
     "error: {tcset}/layer_0/sae is a transcoder"),
    ("browse-given-a-transcoder", "browse --sae {tcset}/layer_0/sae --out {root}/o", "error: {tcset}/layer_0/sae is a transcoder"),
    ("trace-update-interval-zero", "trace --set {tcset} --prompt 'a b c' --update_interval 0 --out {root}/o",
     "error: --update_interval 0 must be >= 1"),
    ("circuit-goal-above-one", "circuit --goal 1.5 --out {root}/o", "error: --goal 1.5 must be in (0, 1]"),
    ("bio-causal-nan-alpha", "bio-causal --sae {sae} --alphas 0 nan", "error: --alphas nan must be a finite number"),
    ("trace-empty-prompt", "trace --set {tcset} --prompt ' ' --out {root}/o", "error: --prompt is empty"),
    ("trace-missing-layer", "trace --set {tcset_one} --prompt 'a b c' --device cpu --out {root}/o",
     "error: {tcset_one} has no transcoder for layer(s) 1"),
    ("trace-prompt-too-long", "trace --set {tcset} --prompt '" + "word " * 2100 + "' --device cpu --out {root}/o",
     "error: the prompt is 2102 tokens (BOS included) but {model} reads at most 2048"),
    # the rest
    ("smoke-unknown-model", "smoke --model no-such-model", "error: unknown model 'no-such-model'"),
    ("smoke-layer-out-of-range", "smoke --model {model} --hook blocks.99.hook_resid_pre", "error: layer 99 out of range"),
    ("smoke-unknown-hook", "smoke --model {model} --hook blocks.1.hook_bogus",
     "error: unknown hook 'blocks.1.hook_bogus'; valid hooks"),
    ("smoke-absent-device", "smoke --model {model} --device cuda:7", "error: "),
    ("ioi-unknown-model", "ioi --model no-such-model --out {root}/o", "error: unknown model 'no-such-model'"),
    ("circuit-unknown-method", "circuit --model {model} --methods eap,path_patching --out {root}/o",
     "error: unknown method 'path_patching'"),
    ("circuit-acdc-candidates", "circuit --model {model} --methods acdc --acdc_candidates 1.5 --out {root}/o",
     "error: --acdc_candidates 1.5 must be in (0, 1]"),
    ("circuit-acdc-speculate", "circuit --model {model} --methods acdc --acdc_speculate 0 --out {root}/o",
     "error: --acdc_speculate 0 must be >= 1"),
    ("circuit-unknown-task", "circuit --model {model} --task sva --out {root}/o", "error: unknown task 'sva'"),
    ("circuit-too-many-edges", "circuit --model {model} --n_edges 100000000 --device cpu --out {root}/o",
     "error: --n_edges 100000000 asks for more edges than {model}'s graph has (82)"),
    # the random model's clean logit difference on these 4 prompts is -0.096
    ("circuit-model-fails-task", "circuit --model {model} --n_prompts 4 --seed 4 --device cpu --out {root}/o",
     "error: {model} fails the task: its clean logit diff IO - S is -0.096"),
    ("circuit-task-needs-digits", "circuit --model {model} --task greater_than --device cpu --out {root}/o",
     "error: {model}'s tokenizer does not read years digit by digit"),
    ("demo-bad-size", "demo --size huge", "error: --size: invalid choice: 'huge'"),
    # damaged files and paths that cannot be written
    ("eval-nan-weights", "eval-sae --sae {sae_nan}", "error: {sae_nan}/sae_weights.safetensors: W_enc holds 1 NaN"),
    ("steer-nan-weights", "steer --sae {sae_nan} --out {root}/o", "error: {sae_nan}/sae_weights.safetensors: W_enc"),
    ("eval-damaged-metrics", "eval-sae --sae {sae_badmetrics} --metrics core", "error: {sae_badmetrics}/metrics.json is "
     "not valid JSON"),
    ("train-out-is-a-file", "train-sae --acts {store} --out {afile} " + " ".join(TRAIN),
     "error: {afile}: file exists; a file stands where a folder is needed"),
    ("dump-out-under-a-file", "dump --model {model} --corpus dir:{docs} --ctx 16 --n_tokens 600 --out {afile}/store",
     "error: {afile}/store: not a directory; a file stands where a folder is needed"),
    ("trace-damaged-graph", "trace --set {tcset} --prompt 'a b c' --device cpu --out {graph_damaged}",
     "error: {graph_damaged}/graph.npz is damaged"),
    # the wrong kind of input
    ("browse-given-a-store", "browse --sae {store} --out {root}/o", "error: {store} is not an SAE export"),
    ("train-sae-given-an-sae", "train-sae --acts {sae} --out {root}/o " + " ".join(TRAIN),
     "error: {sae} is not an activation store"),
    ("train-sae-given-a-folder-of-stores", "train-sae --acts {two_stores} --out {root}/o " + " ".join(TRAIN),
     "error: {two_stores} holds 2 stores (blocks.1.hook_mlp_out, blocks.1.hook_resid_pre), not one"),
    ("eval-sae-given-a-folder-of-stores", "eval-sae --sae {sae} --acts {two_stores}", "error: {two_stores} holds 2 stores"),
    ("trace-given-an-sae-run", "trace --set {run} --prompt 'a b' --out {root}/o", "error: no transcoders under {run}"),
    ("eval-transcoders-given-a-store", "eval-transcoders --set {store}", "error: no transcoders under {store}"),
    ("train-transcoders-given-one-store", "train-transcoders --acts {store} --out {root}/o",
     "error: no blocks.{{L}}.hook_mlp_in / hook_mlp_out store pairs in {store}"),
    # another input's results in --out
    ("steer-into-another-saes-folder", "steer --sae {sae} --out {steer_other}",
     "error: {steer_other} holds the results of another --sae (/elsewhere/run/sae); pass another --out"),
    ("ablate-into-another-saes-folder", "ablate --sae {sae} --out {steer_other}",
     "error: {steer_other} holds the results of another --sae"),
    ("browse-into-another-saes-folder", "browse --sae {sae} --out {steer_other}",
     "error: {steer_other} holds the results of another --sae"),
    ("trace-into-another-prompts-folder", "trace --set {tcset} --prompt 'a b c' --out {trace_other}",
     "error: {trace_other} holds the results of another --set (/elsewhere/set)"),
    ("ioi-into-another-models-folder", "ioi --model {model} --out {ioi_other}",
     "error: {ioi_other} holds the results of another --model (/elsewhere/model)"),
    ("compare-into-another-folder", "compare-saes --saes {sae} {sae_mlp_post} --out {compare_other}",
     "error: {compare_other} holds the results of another --saes"),
    ("ablate-nan-weights", "ablate --sae {sae_nan} --features 1,2 --out {root}/o",
     "error: {sae_nan}/sae_weights.safetensors: W_enc"),
    ("browse-nan-weights", "browse --sae {sae_nan} --out {root}/o", "error: {sae_nan}/sae_weights.safetensors: W_enc"),
    ("compare-damaged-metrics", "compare-saes --saes {sae} {sae_badmetrics} --out {root}/o",
     "error: {sae_badmetrics}/metrics.json is not valid JSON"),
    ("steer-given-a-store", "steer --sae {store} --out {root}/o", "error: {store} is not an SAE export"),
    ("ablate-given-a-store", "ablate --sae {store} --out {root}/o", "error: {store} is not an SAE export"),
    ("compare-given-a-store", "compare-saes --saes {sae} {store} --out {root}/o", "error: {store} is not an SAE export"),
    ("eval-transcoders-given-an-sae-run", "eval-transcoders --set {run}", "error: no transcoders under {run}"),
    ("train-transcoders-given-an-sae", "train-transcoders --acts {sae} --out {root}/o",
     "error: no blocks.{{L}}.hook_mlp_in / hook_mlp_out store pairs in {sae}"),
    # training from a stream: the held-out dump is written into --out first
    ("train-transcoders-stream-ring-in-a-file", f"train-transcoders --stream {STREAM} --ring_dir {{afile}} --out {{root}}/o "
     + " ".join(TRAIN), "error: cannot make a ring in {afile} (File exists); pass --ring_dir a writable folder",
     "o/"),
    ("train-sae-stream-and-a-store", "train-sae --stream --acts {store} --out {root}/o",
     "error: --stream trains from the model's forward, not from a store: drop --acts / --acts_out"),
    # organisms
    ("organism-empty-secret", "organism --kind taboo --secret ' ' --model {model} --out {root}/o",
     "error: --secret must not be empty"),
    ("organism-trigger-in-the-corpus", "organism --kind backdoor --trigger 'the' --model {model} --out {root}/o",
     "error: the trigger 'the' occurs in"),
    # crosscoders and audits
    ("train-crosscoder-two-widths", "train-crosscoder --a {store} --b {store_post} --out {root}/o",
     "error: {model} (blocks.1.hook_resid_pre) is 64 wide and {model} (blocks.1.mlp.hook_post) 128: a crosscoder pairs"),
    ("train-crosscoder-other-tokens", "train-crosscoder --a {store} --b {store_seed1} --out {root}/o",
     "error: the dumps of {model} and {model} are not of the same tokens (they differ in corpus)"),
    ("audit-organism-without-manifest", "audit --organism {organism_no_manifest} --size tiny --out {root}/o",
     "error: {organism_no_manifest} is not a model organism (no organism.json and adapters.safetensors)"),
    ("audit-probe-other-tokenizer", "audit-probe --organism {model} --out {root}/o",
     "error: smollm2-135m-q4 and {model} have different tokenizers; an audit compares a model with its own fine-tune"),
    ("audit-evidence-before-probe", "audit-evidence --organism {model} --base {model} --out {root}/o",
     "error: {root}/o/probe/answers.json is missing; re-run `mechinterp audit` (its probe stage)"),
    ("score-audit-without-audit", "score-audit --audit {root}/o --organism {organism_no_manifest}",
     "error: {root}/o holds no audit (hypotheses.json missing)"),
    # labels
    ("label-without-statistics", "label --sae {sae} --stats {root}/nostats",
     "error: no feature statistics for {sae} in {root}/nostats: make them with `mechinterp browse --sae {sae}`"),
    ("label-explainer-not-a-causal-lm", "label --sae {sae} --stats {stats} --explainer {store} --out {root}/o",
     "error: the explainer '{store}' is not a causal language model the lab can load"),
    ("label-nothing-to-label", "label --stats {stats}", "error: pass one of --sae EXPORT or --set TRANSCODER_SET"),
    ("label-set-scored", "label --set {run} --score", "error: --score and --explainer take an SAE (--sae)"),
    ("train-sae-stream-heldout-too-small", f"train-sae --stream {STREAM} --heldout_tokens 150 --out {{root}}/o "
     + " ".join(TRAIN), "error: --heldout_tokens (150 rows dumped) must exceed --init_tokens 200", "o/"),
]


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_changes_nothing(row, ws, capfd):
    import shlex

    _, argv, first, *may_write = row
    fill = {k: str(v) for k, v in ws.items()}
    before = digest(ws["root"])
    err = run_row(shlex.split(argv.format(**fill)), capfd)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(first.format(**fill)), lines[0]
    after = digest(ws["root"])
    assert {k: after.get(k) for k in before} == before  # nothing already on disk changed or went missing
    new = [k for k in after if k not in before]
    assert all(may_write and k.startswith(may_write[0]) for k in new), new
    shutil.rmtree(ws["root"] / "o", ignore_errors=True)  # empty directories a refused run may leave


# ---------------------------------------------------------------------------- injected faults


def test_two_hook_dump_that_does_not_fit_allocates_neither(ws, capfd, monkeypatch):
    import mechinterp.formats.store_writer as sw

    one = 40 * 16 * 64 * 2 + 40 * 16 * 4  # one store: 40 windows x 16 x 64 fp16 + tokens
    real = shutil.disk_usage
    monkeypatch.setattr(sw.shutil, "disk_usage", lambda p: real(p)._replace(free=int(1.5 * one)))
    out = ws["root"] / "o"
    err = run_row(["dump", "--model", ws["model"], "--corpus", f"dir:{ws['docs']}", "--ctx", "16", "--n_tokens", "600",
                   "--hook", "blocks.0.hook_resid_pre", "--hook", "blocks.1.hook_resid_pre", "--out", str(out),
                   "--no_progress"], capfd)
    assert err.startswith("error: not enough disk space") and "the 2 stores need" in err and err.count("\n") == 1
    assert not [p for p in out.rglob("*") if p.is_file()] if out.exists() else True


def test_dump_held_by_another_process_is_refused(ws, capfd):
    out = ws["root"] / "locked"
    with StoreLock(out):
        err = run_row(["dump", "--model", ws["model"], "--corpus", f"dir:{ws['docs']}", "--ctx", "16",
                       "--n_tokens", "600", "--out", str(out), "--no_progress"], capfd)
    assert err.startswith(f"error: {out} is being written by another dump (pid ") and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("stage", ["train-sae", "train-transcoders"])
def test_training_into_a_folder_another_process_writes_is_refused(ws, capfd, stage):
    """Two training runs into one --out: the second is refused with the first one's pid, nothing touched."""
    out = Path(ws["run"])
    before = digest(ws["root"])
    argv = ([stage, "--acts", ws["store"], "--out", str(out), *TRAIN] if stage == "train-sae" else
            [stage, "--acts", str(ws["root"]), "--out", str(out), "--steps", "5"])
    with FolderLock(out, "a test"):
        err = run_row(argv, capfd)
    assert err.startswith(f"error: {out} is being written by another {stage} (pid {os.getpid()})"), err
    assert err.count("\n") == 1 and digest(ws["root"]) == before


@pytest.mark.parametrize("stage,argv", [
    ("trace", "trace --set {tcset} --prompt 'a b c' --device cpu --out {o}"),
    ("steer", "steer --sae {sae} --feature 3 --out {o}"),
    ("browse", "browse --sae {sae} --no_model --out {o}"),
    ("ioi", "ioi --model {model} --out {o}"),
    ("eval-sae", "eval-sae --sae {sae} --metrics core"),
    ("ablate", "ablate --sae {sae} --features 1,2 --out {o}"),
    ("compare-saes", "compare-saes --saes {sae} {sae_mlp_post} --out {o}"),
    ("circuit", "circuit --model {model} --out {o}"),
    ("shift", "shift --model {model} --sae {sae} --out {o}"),
    ("bio-dump", "bio-dump --model sapiens-vh --sequences abnativ:vh --n_sequences 10 --out {o}"),
])
def test_every_stage_that_writes_a_folder_holds_it(ws, capfd, stage, argv):
    """A second process writing the same folder is refused with the first one's pid, nothing touched."""
    import shlex

    out = Path(ws["sae"]) if stage == "eval-sae" else ws["root"] / "o"
    before = digest(ws["root"])
    with FolderLock(out, "a test"):
        err = run_row(shlex.split(argv.format(o=out, **{k: str(v) for k, v in ws.items()})), capfd)
    assert err.startswith(f"error: {out} is being written by another {stage} (pid {os.getpid()})"), err
    assert err.count("\n") == 1 and digest(ws["root"]) == before
    assert stage == "eval-sae" or not out.exists() or not any(out.iterdir())  # the refused run leaves nothing


def test_a_read_only_output_folder_is_one_line(ws, capfd, monkeypatch):
    """EROFS (a read-only mount) where the stage makes its folder: one line naming it."""
    out = ws["root"] / "ro"
    real = Path.mkdir

    def read_only(self, *a, **k):
        if self == out:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "mkdir", read_only)
    err = run_row(["steer", "--sae", ws["sae"], "--feature", "3", "--out", str(out)], capfd)
    assert err == f"error: {out}: read-only file system; choose a writable --out (or point MECHINTERP_CACHE at " \
                  "a writable folder for the cache)\n"


def test_disk_full_before_and_during_training(ws, capfd, monkeypatch):
    import orbax.checkpoint as ocp

    import sae_jax.checkpoint as ck

    real = shutil.disk_usage
    monkeypatch.setattr(ck.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    err = run_row(["train-sae", "--acts", ws["store"], "--out", str(ws["root"] / "o"), *TRAIN], capfd)
    assert err.startswith("error: not enough disk space in") and "training (checkpoints and export) needs" in err
    monkeypatch.setattr(ck.shutil, "disk_usage", real)

    def full(*a, **k):  # what tensorstore raises when a write hits ENOSPC
        raise ValueError('RESOURCE_EXHAUSTED: Error writing "00003/0" in OCDBT database: No space left on device')
    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    err = run_row(["train-sae", "--acts", ws["store"], "--out", str(ws["root"] / "o2"), *TRAIN], capfd)
    assert err.startswith("error: the disk filled up while writing checkpoint 10") and err.count("\n") == 1


def test_disk_full_while_writing_a_store(ws, capfd, monkeypatch):
    import mechinterp.formats.store_writer as sw

    def enospc(self, *a):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(sw.StoreWriter, "flush", enospc)
    err = run_row(["dump", "--model", ws["model"], "--corpus", f"dir:{ws['docs']}", "--ctx", "16", "--n_tokens", "600",
                   "--out", str(ws["root"] / "o3"), "--no_progress", "--flush_every", "1"], capfd)
    assert err.startswith("error: no space left on the device") and err.count("\n") == 1


def test_port_in_use_is_one_line_before_any_work(ws, capfd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = ws["root"] / "o4"
        err = run_row(["browse", "--sae", ws["sae"], "--out", str(out), "--serve", "--port", str(port)], capfd)
    assert err == f"error: --port {port} is already in use; pass another --port (or stop what is listening there)\n"
    assert not out.exists()


def test_finished_run_is_not_relabelled(ws):
    """The refused resumes above left the finished export as it was: its labels and its weights agree."""
    cfg = json.loads((Path(ws["sae"]) / "cfg.json").read_text())
    assert cfg["hook_name"] == "blocks.1.hook_resid_pre" and cfg["k"] == 4
    from safetensors.numpy import load_file

    assert load_file(str(Path(ws["sae"]) / "sae_weights.safetensors"))["W_enc"].shape == (64, 128)
    assert np.isfinite(json.loads((Path(ws["sae"]) / "metrics.json").read_text())["explained_variance"])
