"""Hook sites are right, per family: on tiny random models of every family and on the real
SmolLM2 weights (GPT-2 small shapes are covered by test_models.py::test_gpt2_random)."""

from __future__ import annotations

import pytest
import torch

from extract.sites import get_module

FAMILIES = ["gpt2", "llama", "gemma3", "neox"]
PROMPT = "When Mary and John went to the store, John gave a drink to"


def _model(request, family):
    if family == "smollm2":
        return request.getfixturevalue("smollm2")
    return request.getfixturevalue("tiny_model_factory")(family)


@pytest.fixture(params=FAMILIES + ["smollm2"])
def model(request):
    return _model(request, request.param)


def _close(a, b, tol=1e-5):
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max()))
    return float((a - b).abs().max()) <= tol * scale


def test_resid_post_equals_hf_hidden_states(model):
    toks = model.to_tokens(PROMPT)
    names = [f"blocks.{L}.hook_resid_post" for L in range(model.n_layers)]
    _, cache = model.run_with_cache(toks, names=names)
    with torch.no_grad():
        hidden = model.model(input_ids=toks, output_hidden_states=True).hidden_states
    # hidden_states[n_layers] has the final norm applied; every earlier one is a block output
    for L in range(model.n_layers - 1):
        assert _close(cache[f"blocks.{L}.hook_resid_post"], hidden[L + 1])
    assert _close(model.run_with_cache(toks, names="hook_embed")[1]["hook_embed"],
                  get_module(model.model, model.layout.embed)(toks))


def test_residual_decomposes(model):
    toks = model.to_tokens(PROMPT)
    L = model.n_layers // 2
    _, c = model.run_with_cache(toks, names=lambda n: n.startswith(f"blocks.{L}.hook_"))
    pre, attn, mlp, post = (c[f"blocks.{L}.hook_{s}"] for s in ("resid_pre", "attn_out", "mlp_out", "resid_post"))
    assert _close(pre + attn + mlp, post)
    if not model.layout.parallel:
        assert _close(c[f"blocks.{L}.hook_resid_mid"], pre + attn)
        assert _close(c[f"blocks.{L}.hook_resid_mid"] + mlp, post)


def test_mlp_in_maps_onto_mlp_out(model):
    """A transcoder's pair: the layer's MLP (and, in Gemma 3, its post-MLP norm) maps hook_mlp_in
    (alias ln2.hook_normalized) exactly onto hook_mlp_out."""
    toks = model.to_tokens(PROMPT)
    L = model.n_layers // 2
    names = [f"blocks.{L}.hook_mlp_in", f"blocks.{L}.ln2.hook_normalized", f"blocks.{L}.hook_mlp_out"]
    _, c = model.run_with_cache(toks, names=names)
    mlp_in, normalized, mlp_out = (c[n] for n in names)
    assert torch.equal(mlp_in, normalized) and mlp_in.shape == mlp_out.shape
    layer = get_module(model.model, f"{model.layout.layers}.{L}")
    with torch.no_grad():
        out = get_module(layer, model.layout.mlp)(mlp_in)
        if model.layout.mlp_out != model.layout.mlp:  # Gemma 3: the post-MLP norm is part of what is predicted
            out = get_module(layer, model.layout.mlp_out)(out)
    assert _close(out, mlp_out)
    assert not _close(mlp_in, c[f"blocks.{L}.hook_mlp_out"], tol=1e-2)


def test_hook_z_recombines_to_attn_out(model):
    toks = model.to_tokens(PROMPT)
    L = 1
    _, c = model.run_with_cache(toks, names=[f"blocks.{L}.attn.hook_z", f"blocks.{L}.hook_attn_out"])
    z = c[f"blocks.{L}.attn.hook_z"]
    assert z.shape[-2:] == (model.n_heads, model.d_head)
    layer = get_module(model.model, f"{model.layout.layers}.{L}")
    with torch.no_grad():
        out = get_module(layer, model.layout.o_proj)(z.flatten(-2))
        if model.layout.attn_out != model.layout.attn:  # Gemma 3: the post-attention norm follows
            out = get_module(layer, model.layout.attn_out)(out)
    assert _close(out, c[f"blocks.{L}.hook_attn_out"])


def test_stop_at_layer_matches_full_run(model):
    toks = model.to_tokens(PROMPT)
    L = model.n_layers // 2
    name = f"blocks.{L}.hook_resid_pre"
    full_logits, full = model.run_with_cache(toks, names=[name])
    logits, early = model.run_with_cache(toks, names=[name], stop_at_layer=L + 1 if L + 1 < model.n_layers else L)
    assert logits is None and full_logits is not None
    assert torch.equal(early[name], full[name])
    with pytest.raises(ValueError, match="beyond stop_at_layer"):
        model.run_with_cache(toks, names=[f"blocks.{L}.hook_mlp_out"], stop_at_layer=L)


SITES = ["hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
         "attn.hook_z", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern", "mlp.hook_post"]


def test_patching_self_is_noop_and_zero_changes_logits(model):
    toks = model.to_tokens(PROMPT)
    with torch.no_grad():
        clean = model(toks)
    L = 1
    for suffix in SITES:
        if suffix == "hook_resid_mid" and model.layout.parallel:
            continue
        name = f"blocks.{L}.{suffix}"
        with torch.no_grad():
            same = model.run_with_hooks(toks, hooks=[(name, lambda a, hook: a.clone())])
            zeroed = model.run_with_hooks(toks, hooks=[(name, lambda a, hook: torch.zeros_like(a))])
        # the pattern hook runs that layer's attention eagerly instead of through SDPA
        tol = 1e-4 if suffix == "attn.hook_pattern" else 1e-6
        assert _close(same, clean, tol), name
        assert float((zeroed - clean).abs().max()) > 1e-3, name


def test_pattern_and_qkv_shapes(model):
    toks = model.to_tokens(PROMPT)
    n = toks.shape[1]
    _, c = model.run_with_cache(toks, names=["blocks.0.attn.hook_pattern", "blocks.0.attn.hook_q",
                                             "blocks.0.attn.hook_k", "blocks.0.attn.hook_v"])
    pattern = c["blocks.0.attn.hook_pattern"]
    assert pattern.shape == (1, model.n_heads, n, n)
    assert torch.allclose(pattern.sum(-1), torch.ones(1, model.n_heads, n), atol=1e-5)
    assert float(pattern.triu(1).abs().max()) == 0.0  # causal
    assert c["blocks.0.attn.hook_q"].shape == (1, n, model.n_heads, model.d_head)
    assert c["blocks.0.attn.hook_k"].shape == (1, n, model.n_kv_heads, model.d_head)


def test_single_head_patch_removes_exactly_its_contribution(smollm2):
    """hook_z is patchable per head: zeroing head h removes z_h @ W_O[h] from attn_out."""
    m = smollm2
    toks = m.to_tokens(PROMPT)
    L, h = 3, 4
    z_name, out_name = f"blocks.{L}.attn.hook_z", f"blocks.{L}.hook_attn_out"
    _, c = m.run_with_cache(toks, names=[z_name, out_name])

    def zero_head(z, hook):
        z = z.clone()
        z[:, :, h] = 0
        return z
    _, c2 = m.run_with_cache(toks, names=[out_name], hooks=[(z_name, zero_head)])
    W_O = m.model.model.layers[L].self_attn.o_proj.weight  # [d_model, n_heads * d_head]
    contribution = c[z_name][:, :, h] @ W_O[:, h * m.d_head:(h + 1) * m.d_head].T
    assert _close(c[out_name] - c2[out_name], contribution, 1e-4)


def test_hooks_removed_when_forward_raises(smollm2):
    m = smollm2
    toks = m.to_tokens(PROMPT)
    with torch.no_grad():
        before = m(toks)

    def hook_state():  # transformers keeps hooks of its own (output capture): compare, don't expect none
        return {n: (len(mod._forward_hooks), len(mod._forward_pre_hooks), hasattr(mod, "_mechinterp_attn_hooks"))
                for n, mod in m.model.named_modules()}
    state = hook_state()

    def boom(a, hook):
        raise RuntimeError("hook failed")
    names = ["blocks.2.hook_resid_pre", "blocks.2.hook_resid_mid", "blocks.2.attn.hook_z",
             "blocks.2.attn.hook_pattern", "blocks.2.hook_mlp_out"]
    for name in names:
        with pytest.raises(RuntimeError, match="hook failed"):
            m.run_with_hooks(toks, hooks=[(name, boom)], stop_at_layer=5)
    assert hook_state() == state
    with torch.no_grad():
        assert torch.equal(m(toks), before)


def test_several_hooks_on_one_site_compose(smollm2):
    m = smollm2
    toks = m.to_tokens(PROMPT)
    name = "blocks.4.hook_resid_post"
    _, c = m.run_with_cache(toks, names=[name])
    _, c2 = m.run_with_cache(toks, names=[name], hooks=[(name, lambda a, hook: a * 2), (name, lambda a, hook: a + 1)])
    assert _close(c2[name], c[name] * 2 + 1)


def test_bad_hook_names(smollm2):
    with pytest.raises(KeyError, match="valid hooks: .*hook_resid_pre"):
        smollm2.site("blocks.3.hook_resid_middle")
    with pytest.raises(KeyError, match="layer 30 out of range.*30 layers"):
        smollm2.site("blocks.30.hook_resid_pre")
    with pytest.raises(KeyError, match="does not exist"):
        smollm2.site("hook_pos_embed")  # Llama has rotary, not learned, positions
    with pytest.raises(ValueError, match="stop_at_layer=31 out of range"):
        smollm2.run_with_cache(smollm2.to_tokens("hi"), names=[], stop_at_layer=31)


def test_neox_sequential_residual_has_resid_mid(tiny_model_factory):
    m = tiny_model_factory("neox", use_parallel_residual=False)
    assert not m.layout.parallel
    test_residual_decomposes(m)
    with pytest.raises(KeyError, match="parallel"):
        tiny_model_factory("neox").site("blocks.0.hook_resid_mid")
