"""Masked-LM encoders (BERT, RoBERTa): post-norm hook sites on tiny random models of both, and the
real antibody models (AntiBERTy, Sapiens) loaded offline from their PyPI packages."""

from __future__ import annotations

import pytest
import torch

from extract.bio.models import AMINO_ACIDS, residue_tokenizer
from extract.hooked import HookedModel
from extract.sites import get_module

HEAVY = ("EVQLVESGGGLVQPGGSLRLSCAASGFTFSSYAMSWVRQAPGKGLEWVSAISGSGGSTYYADSVKGRFTISRDNSKNTLYLQMNSLRAEDTAVYYCAK"
         "DRGYSSGWYFDYWGQGTLVTVSS")
LIGHT = "DIQMTQSPSSLSASVGDRVTITCRASQSISSYLNWYQQKPGKAPKLLIYAASSLQSGVPSRFSGSGSGTDFTLTISSLQPEDFATYYCQQSYSTPLTFGQGTKVEIK"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="module", params=["bert", "roberta"])
def encoder(request) -> HookedModel:
    import transformers as tf

    torch.manual_seed(0)
    common = dict(vocab_size=25, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
                  max_position_embeddings=160, initializer_range=0.3)  # attention far from uniform
    if request.param == "bert":
        model = tf.BertForMaskedLM(tf.BertConfig(**common))
    else:
        model = tf.RobertaForMaskedLM(tf.RobertaConfig(**common, pad_token_id=0))
    tok = residue_tokenizer(SPECIALS + list(AMINO_ACIDS), unk="[UNK]", pad="[PAD]", cls="[CLS]", sep="[SEP]",
                            mask="[MASK]")
    return HookedModel(model, tok, name=f"tiny-{request.param}", bos_token_id=tok.cls_token_id)


def _close(a, b, tol=1e-5):
    return float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


def test_tokens_are_residues_between_cls_and_sep(encoder):
    toks = encoder.to_tokens("EVQ[MASK]L")
    assert encoder.to_str_tokens(toks) == ["[CLS]", "E", "V", "Q", "[MASK]", "L", "[SEP]"]
    assert encoder.to_str_tokens(encoder.to_tokens("EVx"))[3] == "[UNK]"


def test_post_norm_sites_compose(encoder):
    """TransformerLens' encoder sites: resid_mid = resid_pre + attn_out, resid_post = ln1(resid_mid) +
    mlp_out, ln2(resid_post) = the block's output = the next block's resid_pre = HF's hidden state."""
    toks = encoder.to_tokens(HEAVY[:40])
    _, c = encoder.run_with_cache(toks)
    with torch.no_grad():
        hidden = encoder.model(input_ids=toks, output_hidden_states=True).hidden_states
    for L in range(encoder.n_layers):
        s = lambda name: c[f"blocks.{L}.{name}"]
        layer = get_module(encoder.model, f"{encoder.layout.layers}.{L}")
        assert _close(s("hook_resid_pre"), hidden[L])
        assert _close(s("hook_resid_pre") + s("hook_attn_out"), s("hook_resid_mid"))
        with torch.no_grad():
            assert _close(get_module(layer, encoder.layout.ln1)(s("hook_resid_mid")), s("ln1.hook_normalized"))
            mlp = get_module(layer, encoder.layout.mlp_down)(get_module(layer, encoder.layout.mlp)(s("hook_mlp_in")))
        assert torch.equal(s("hook_mlp_in"), s("ln1.hook_normalized"))
        assert _close(mlp, s("hook_mlp_out"))
        assert _close(s("ln1.hook_normalized") + s("hook_mlp_out"), s("hook_resid_post"))
        assert torch.equal(s("hook_normalized_resid_post"), s("ln2.hook_normalized"))
        assert _close(s("hook_normalized_resid_post"), hidden[L + 1])


SITES = ["hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_normalized_resid_post", "hook_attn_out",
         "hook_mlp_out", "ln1.hook_normalized", "attn.hook_z", "attn.hook_q", "attn.hook_k", "attn.hook_v",
         "attn.hook_pattern", "mlp.hook_post"]


def test_patching_self_is_noop_and_zero_changes_logits(encoder):
    toks = encoder.to_tokens(HEAVY[:30])
    with torch.no_grad():
        clean = encoder(toks)
        for suffix in SITES:
            name = f"blocks.1.{suffix}"
            same = encoder.run_with_hooks(toks, hooks=[(name, lambda a, hook: a.clone())])
            zeroed = encoder.run_with_hooks(toks, hooks=[(name, lambda a, hook: torch.zeros_like(a))])
            assert _close(same, clean, 1e-4 if suffix == "attn.hook_pattern" else 1e-6), name
            assert float((zeroed - clean).abs().max()) > 1e-3, name


def test_attention_is_bidirectional(encoder):
    toks = encoder.to_tokens(HEAVY[:30])
    _, c = encoder.run_with_cache(toks, names=["blocks.0.attn.hook_pattern"])
    pattern = c["blocks.0.attn.hook_pattern"]
    n = toks.shape[1]
    assert pattern.shape == (1, encoder.n_heads, n, n)
    assert torch.allclose(pattern.sum(-1), torch.ones(1, encoder.n_heads, n), atol=1e-5)
    upper = torch.triu_indices(n, n, 1)
    assert float(pattern[..., upper[0], upper[1]].min()) > 0.0  # every query sees later positions too


def test_no_linear_logit_readout(encoder):
    with pytest.raises(ValueError, match="no linear logit readout"):
        encoder.unembed_directions(torch.zeros(1, encoder.d_model))


@pytest.mark.parametrize("name, chain", [("antiberty", HEAVY), ("sapiens-vh", HEAVY), ("sapiens-vl", LIGHT)])
def test_real_antibody_models_fill_masked_residues(name, chain):
    from extract.models import load_model

    model = load_model(name, device="cpu")
    assert model.masked_lm and model.layout.post_norm
    toks = model.to_tokens(chain)
    positions = list(range(1, len(chain) + 1, 4))  # every 4th residue, each masked in its own row
    batch = toks.repeat(len(positions), 1)
    batch[range(len(positions)), positions] = model.tokenizer.mask_token_id
    with torch.no_grad():
        guesses = model(batch)[range(len(positions)), positions].argmax(-1)
    recovered = (guesses == toks[0, positions]).float().mean()
    assert recovered >= 0.9, f"{name}: {float(recovered):.2f} of masked residues recovered"


def test_smoke_on_a_masked_model(capsys):
    from mechinterp.cli.stages.smoke import main

    main(["--model", "antiberty", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "top masked positions (position 22): 'C' 0.9" in out
