"""Antibody language models loaded offline from the PyPI packages that ship their weights.

- AntiBERTy (antiberty==0.1.3, MIT): BERT masked LM, 8 layers, width 512, trained on 558M
  natural antibody sequences. Loaded as BertForMaskedLM (the pooler and the species / chain /
  graft heads of the checkpoint are dropped).
- Sapiens (sapiens==1.0.4, MIT): fairseq RoBERTa checkpoints, 4 layers, width 128, one for heavy
  (vh) and one for light (vl) chains; their tensors map key for key onto RobertaForMaskedLM,
  converted once and cached as safetensors.

Both get a residue-level tokenizer (one amino acid = one token; `[MASK]`/`<mask>` kept whole):
transformers 5's BertTokenizer(vocab_file=...) silently maps every residue to [UNK].
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from extract.packages import package_dir

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def residue_tokenizer(symbols: list[str], unk: str, pad: str, cls: str, sep: str, mask: str):
    """A fast tokenizer over single residues; special tokens written out ('[MASK]') stay whole."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {s: i for i, s in enumerate(symbols)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    specials = "|".join(_regex_escape(s) for s in (unk, pad, cls, sep, mask))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(f"{specials}|."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, pad_token=pad, cls_token=cls,
                                   sep_token=sep, mask_token=mask, bos_token=cls, eos_token=sep)


def _regex_escape(text: str) -> str:  # for the Oniguruma regexes of `tokenizers`
    return "".join("\\" + c if c in r"[](){}.*+?^$|\\" else c for c in text)


def load_antiberty(spec, dtype: torch.dtype):
    """The registry's loader for source 'antiberty' (extract.models.LOADERS)."""
    from transformers import BertForMaskedLM
    from transformers.utils import logging as hf_logging

    root = package_dir("antiberty") / "trained_models"
    symbols = [ln.strip() for ln in (root / "vocab.txt").read_text().splitlines() if ln.strip()]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the checkpoint's unused pooler and species/chain heads
    try:
        model = BertForMaskedLM.from_pretrained(root / "AntiBERTy_md_smooth", dtype=dtype)
    finally:
        hf_logging.set_verbosity(verbosity)
    tok = residue_tokenizer(symbols, unk="[UNK]", pad="[PAD]", cls="[CLS]", sep="[SEP]", mask="[MASK]")
    return model, tok, "pypi:antiberty==0.1.3"


SAPIENS_SYMBOLS_HEAD = ["<s>", "<pad>", "</s>", "<unk>"]


def _sapiens_symbols(root: Path) -> list[str]:
    residues = [ln.split()[0] for ln in (root / "dict.txt").read_text().splitlines() if ln.strip()]
    return SAPIENS_SYMBOLS_HEAD + residues + ["<mask>"]  # fairseq's dictionary order


def _convert_sapiens(checkpoint: Path, out: Path) -> None:
    """fairseq RoBERTa -> RobertaForMaskedLM safetensors (+ config.json), written atomically."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]  # holds an argparse.Namespace
    enc = "decoder.sentence_encoder."
    d_model = state[enc + "embed_tokens.weight"].shape[1]
    n_layers = 1 + max(int(k[len(enc + "layers."):].split(".")[0]) for k in state if k.startswith(enc + "layers."))
    cfg = RobertaConfig(vocab_size=state[enc + "embed_tokens.weight"].shape[0], hidden_size=d_model,
                        num_hidden_layers=n_layers, num_attention_heads=8,
                        intermediate_size=state[enc + "layers.0.fc1.weight"].shape[0], hidden_act="gelu",
                        max_position_embeddings=state[enc + "embed_positions.weight"].shape[0], type_vocab_size=1,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    new = {"roberta.embeddings.word_embeddings.weight": state[enc + "embed_tokens.weight"],
           "roberta.embeddings.position_embeddings.weight": state[enc + "embed_positions.weight"],
           "roberta.embeddings.token_type_embeddings.weight": torch.zeros(1, d_model),
           "lm_head.decoder.weight": state["decoder.lm_head.weight"],
           "lm_head.bias": state["decoder.lm_head.bias"], "lm_head.decoder.bias": state["decoder.lm_head.bias"]}
    pairs = [("emb_layer_norm", "roberta.embeddings.LayerNorm")]
    pairs += [(f"decoder.lm_head.{a}", f"lm_head.{b}") for a, b in (("dense", "dense"), ("layer_norm", "layer_norm"))]
    for i in range(n_layers):
        src, dst = f"layers.{i}.", f"roberta.encoder.layer.{i}."
        pairs += [(src + a, dst + b) for a, b in (
            ("self_attn.q_proj", "attention.self.query"), ("self_attn.k_proj", "attention.self.key"),
            ("self_attn.v_proj", "attention.self.value"), ("self_attn.out_proj", "attention.output.dense"),
            ("self_attn_layer_norm", "attention.output.LayerNorm"), ("fc1", "intermediate.dense"),
            ("fc2", "output.dense"), ("final_layer_norm", "output.LayerNorm"))]
    for a, b in pairs:
        a = a if a.startswith("decoder.") else enc + a
        for w in ("weight", "bias"):
            new[f"{b}.{w}"] = state[f"{a}.{w}"]
    model = RobertaForMaskedLM(cfg)
    missing, unexpected = model.load_state_dict(new, strict=False)
    if missing or unexpected:
        raise ValueError(f"{checkpoint}: unexpected layout (missing {missing[:3]}, unexpected {unexpected[:3]})")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    (tmp / "source.json").write_text(json.dumps({"checkpoint": str(checkpoint)}))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def load_sapiens(spec, dtype: torch.dtype):
    """The registry's loader for source 'sapiens' (spec.repo: the chain, vh or vl)."""
    chain = spec.repo
    from transformers import RobertaForMaskedLM

    from mechinterp.formats.defaults import cache_root

    root = package_dir("sapiens") / "models" / "v1"
    out = cache_root() / "models" / f"sapiens-{chain}"
    if not (out / "source.json").exists():
        _convert_sapiens(root / f"checkpoint_{chain}.pt", out)
    model = RobertaForMaskedLM.from_pretrained(out, dtype=dtype)
    tok = residue_tokenizer(_sapiens_symbols(root), unk="<unk>", pad="<pad>", cls="<s>", sep="</s>", mask="<mask>")
    return model, tok, f"pypi:sapiens==1.0.4:{chain}"
