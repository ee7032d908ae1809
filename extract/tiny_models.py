"""Randomly initialised small models of each family (GPT-2, Llama, Gemma 3, GPT-NeoX), with the
GPT-2 BPE's vocabulary: what the unit tests and the peer benchmarks run on in place of real weights."""

from __future__ import annotations


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
