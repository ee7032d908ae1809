"""Shared fixtures. The real default model is loaded once per session (its GGUF conversion
is cached under $MECHINTERP_CACHE after the first run); unit tests use tiny random models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smollm2():
    from extract.models import load_model

    return load_model("smollm2-135m-q4", device="cpu")


@pytest.fixture(scope="session")
def gpt2_tok():
    from extract.models import gpt2_tokenizer

    return gpt2_tokenizer()


def tiny_hf_model(family: str, **overrides):
    """A randomly initialised small model of one family (vocab of the GPT-2 BPE)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    common = dict(vocab_size=50257, num_hidden_layers=3, num_attention_heads=4, hidden_size=64)
    if family == "gpt2":
        cfg = tf.GPT2Config(n_embd=64, n_layer=3, n_head=4, vocab_size=50257, **overrides)
        return tf.GPT2LMHeadModel(cfg)
    if family == "llama":
        cfg = tf.LlamaConfig(**common, intermediate_size=128, num_key_value_heads=2, **overrides)
        return tf.LlamaForCausalLM(cfg)
    if family == "gemma3":
        cfg = tf.Gemma3TextConfig(**common, intermediate_size=128, num_key_value_heads=2, head_dim=16,
                                  sliding_window=8, **overrides)
        return tf.Gemma3ForCausalLM(cfg)
    if family == "neox":
        cfg = tf.GPTNeoXConfig(**common, intermediate_size=128, **overrides)
        return tf.GPTNeoXForCausalLM(cfg)
    raise ValueError(family)


@pytest.fixture(scope="session")
def tiny_model_factory(gpt2_tok):
    from extract.hooked import HookedModel

    def make(family: str, **overrides) -> HookedModel:
        model = tiny_hf_model(family, **overrides)
        return HookedModel(model, gpt2_tok, name=f"tiny-{family}", bos_token_id=gpt2_tok.eos_token_id)
    return make


def run_script(*args: str, env: dict | None = None, timeout: int = 600):
    """Run one of scripts/ with the test interpreter; returns the CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
