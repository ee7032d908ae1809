"""What content fingerprints cost each stage at the demo size (goal: <= 2% of the stage's time).

    python scripts/bench/bench_fingerprints.py          # writes runs/bench/fingerprints.json

Each stage's fingerprint work is timed on inputs of the demo's sizes: the embedded model's weights
(every stage that loads the model), the default corpus (dump), a 30-layer transcoder set of the
demo's shapes written to a temporary folder (trace), an SAE export and a store's tokens of the
demo's sizes (each eval metric). The dump is also run at the demo size in the same process, so its
share is a ratio of two times measured side by side; the other stages' shares divide by their
demo-size times as measured by `make demo` (EXPECTED_S in mechinterp/cli/stages/demo.py).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from _bench import bench_model, cpu_model, time_call, write_results


def main() -> None:
    from safetensors.numpy import save_file

    from extract.corpus import DEFAULT_CORPUS, corpus_fingerprint, open_corpus
    from extract.dump import DumpConfig, dump_activations
    from mechinterp.cli.stages.demo import EXPECTED_S, SIZES
    from mechinterp.formats.fingerprint import combine, fingerprint
    from mechinterp.formats.sae import CFG, WEIGHTS

    model = bench_model("smollm2-135m-q4")
    d, n_layers = model.d_model, model.n_layers
    model_s = time_call(lambda: model.fingerprint, repeats=5, best=True)
    source = open_corpus(DEFAULT_CORPUS)
    corpus_s = time_call(lambda: corpus_fingerprint(source), repeats=3, best=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d_tc = SIZES["demo"]["transcoders"]["d_sae"]
        for L in range(n_layers):
            out = tmp / "set" / f"layer_{L}" / "sae"
            out.mkdir(parents=True)
            save_file({"W_enc": np.random.randn(d, d_tc).astype(np.float32),
                       "W_dec": np.random.randn(d_tc, d).astype(np.float32)}, str(out / WEIGHTS))
            (out / CFG).write_text("{}")
        set_s = time_call(lambda: combine({str(L): fingerprint(tmp / "set" / f"layer_{L}" / "sae", only=(WEIGHTS, CFG))
                                           for L in range(n_layers)}), repeats=3, best=True)
        d_sae = SIZES["demo"]["sae"]["d_sae"]
        (tmp / "sae").mkdir()
        save_file({"W_enc": np.random.randn(d, d_sae).astype(np.float32),
                   "W_dec": np.random.randn(d_sae, d).astype(np.float32)}, str(tmp / "sae" / WEIGHTS))
        (tmp / "sae" / CFG).write_text("{}")
        n_tok = SIZES["demo"]["dump"]["n_tokens"]
        np.save(tmp / "tokens.npy", np.zeros((n_tok // 128 + 1, 128), np.int32))
        eval_s = time_call(lambda: (fingerprint(tmp / "sae", only=(WEIGHTS, CFG)), fingerprint(tmp / "tokens.npy")),
                           repeats=3, best=True)
        t0 = time.perf_counter()
        dump_activations(DumpConfig(hooks=("blocks.15.hook_resid_pre",), n_tokens=n_tok, out=str(tmp / "store"),
                                    progress=False), model=model)
        dump_s = time.perf_counter() - t0

    def row(stage, work, seconds, stage_s, measured):
        rows.append(dict(stage=stage, fingerprints=work, fingerprint_s=round(seconds, 3), stage_s=round(stage_s, 1),
                         share=f"{seconds / stage_s:.2%}", stage_time=measured))
    row("dump", "weights + corpus", model_s + corpus_s, dump_s, "this run")
    row("trace", "weights + 30-layer set", model_s + set_s, EXPECTED_S["trace"], "make demo")
    row("eval-sae (per metric)", "weights + SAE + store tokens", model_s + eval_s, EXPECTED_S["eval"] / 2, "make demo")
    row("circuit", "weights", model_s, EXPECTED_S["circuit"], "make demo")
    write_results("fingerprints", rows, dict(cpu=cpu_model(), model_fingerprint_s=model_s, corpus_fingerprint_s=corpus_s,
                                             set_fingerprint_s=set_s))


if __name__ == "__main__":
    main()
