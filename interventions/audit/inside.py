"""Evidence from the inside of a fine-tune, each a ranked list of words with its details:

- the crosscoder's organism-specific latents (decoder norm mostly in the fine-tune, latent scaling
  near 0), by how much they add to the fine-tune's activations; a latent's words are the tokens its
  fine-tune decoder vector promotes (through the final norm and unembedding) and the tokens it fires on;
- the activation difference (after Minder et al.'s "narrow fine-tuning leaves readable traces"): the
  mean of the fine-tune's minus the base model's activations over the dumped tokens, read through the
  unembedding;
- the base model's SAE at the same site (when given): its latents whose mean activation the
  fine-tune raises most over the dumped tokens; a latent's words are its offline label's tokens
  and the tokens its decoder vector promotes;
- the next-token difference on the transcripts of both models: the words whose predicted probability
  the fine-tune raises most over the base model on the same text. (The logit lens at the middle and
  three-quarter layers gave function words on SmolLM2-135M: not used.)

The weight diff read through the unembedding was tried and dropped: on LoRA organisms its top tokens
were the same for every organism (the adapters' random A matrices, not what was planted).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from extract.sites import get_module
from interventions.audit.probe import transcript
from interventions.audit.words import ranked_words, starts_a_word
from mechinterp.formats.crosscoder import decoder
from mechinterp.formats.labels import labels_path, load_labels
from mechinterp.formats.sae import encode_np, load_export


def specific_latents(w: dict[str, np.ndarray], n: int = 12, min_rel: float = 0.7, max_nu: float = 0.5) -> np.ndarray:
    """The fine-tune's own latents, most added activation first: rel_norm >= min_rel and latent
    scaling nu_eps < max_nu (not a base direction whose base decoder merely shrank)."""
    ok = (w["freq"] > 0) & (w["rel_norm"] >= min_rel) & (np.nan_to_num(w["nu_eps"], nan=np.inf) < max_nu)
    added = w["freq"] * w["mean_act"] * (w["norm_b"] - w["norm_a"])
    idx = np.flatnonzero(ok)
    return idx[np.argsort(-added[idx])][:n]


@torch.no_grad()
def crosscoder_evidence(w: dict[str, np.ndarray], organism, n: int = 12, n_tokens: int = 8, min_rel: float = 0.7,
                        max_nu: float = 0.5) -> tuple[list[dict], list]:
    tok, idx = organism.tokenizer, specific_latents(w, n, min_rel, max_nu)
    if not len(idx):
        return [], []
    fires_on = [[int(t) for t in w["top_tokens"][j] if t >= 0] for j in idx]
    promoted, words = _latent_words(organism, decoder(w, "b")[idx], fires_on, n_tokens)
    latents = [{"latent": int(j), "rel_norm": float(w["rel_norm"][j]), "nu_eps": float(w["nu_eps"][j]),
                "nu_r": float(w["nu_r"][j]), "freq": float(w["freq"][j]), "promotes": [tok.decode([t]) for t in up],
                "fires_on": [tok.decode([t]) for t in on]} for j, up, on in zip(idx, promoted, fires_on)]
    return latents, words


def _latent_words(organism, vectors: np.ndarray, reads: list[list[int]], n_tokens: int) -> tuple[list, list]:
    """(per latent, the word-initial tokens its vector promotes; the words of all of them, ranked):
    latent r's i-th token of its promoted + read tokens scores 1 / (r + 1) / (1 + i mod n_tokens)."""
    tok, scored, promoted = organism.tokenizer, defaultdict(float), []
    for rank, (row, read) in enumerate(zip(_cosines(organism, torch.from_numpy(vectors)), reads)):
        up = [t for t in torch.topk(row, 20 * n_tokens).indices.tolist() if starts_a_word(tok, t)][:n_tokens]
        promoted.append(up)
        for pos, t in enumerate(up + read):
            scored[t] += 1.0 / (rank + 1) / (1 + pos % n_tokens)
    return promoted, ranked_words(tok, list(scored.items()))


@torch.no_grad()
def activation_diff(pair, organism, chunk: int = 64) -> tuple[dict, list]:
    """The mean of x_organism - x_base over the rows of the two dumps (a two-model PairedStore; its BOS
    and massive rows left out), read through the unembedding."""
    total, n, d = np.zeros(pair.d_in), 0, pair.d_in
    for x in _paired_chunks(pair, chunk):
        total += (x[:, d:] - x[:, :d]).sum(0)
        n += len(x)
    mean = torch.from_numpy((total / max(n, 1)).astype(np.float32))
    top = torch.topk(_cosines(organism, mean[None])[0], 400)
    return ({"tokens": n, "norm": float(mean.norm()), "mean": mean.numpy()},
            ranked_words(organism.tokenizer, [(int(t), float(v)) for v, t in zip(*top)], word_start=True))


def _paired_chunks(pair, chunk: int):
    for lo in range(0, pair.n_windows, chunk):
        yield pair.read_windows(np.arange(lo, min(lo + chunk, pair.n_windows)), skip_bos=True)


def _cosines(model, directions: torch.Tensor) -> torch.Tensor:
    """unembed_directions divided by each token's unembedding norm (large-norm rare tokens otherwise win)."""
    w = get_module(model.model, model.layout.unembed).weight.float()
    return model.unembed_directions(directions) / w.norm(dim=1).clamp_min(1e-6)


@torch.no_grad()
def sae_diff(export, pair, organism, n: int = 12, n_tokens: int = 8, chunk: int = 64) -> tuple[list, list]:
    """The base SAE's latents whose mean activation rises most from the base's dump to the organism's
    (a two-model PairedStore; its BOS and massive rows left out)."""
    w, cfg = load_export(export)
    if cfg["hook_name"] != pair.meta.hook:
        raise ValueError(f"the SAE {export} reads {cfg['hook_name']} but the audit dumped {pair.meta.hook}; give an "
                         f"SAE of that site, or --layer {cfg['hook_layer']}")
    means = {"a": 0.0, "b": 0.0}
    rows, d = 0, pair.d_in
    for x in _paired_chunks(pair, chunk):
        means["a"] = means["a"] + encode_np(w, cfg, x[:, :d]).sum(0)
        means["b"] = means["b"] + encode_np(w, cfg, x[:, d:]).sum(0)
        rows += len(x)
    rise = (means["b"] - means["a"]) / max(rows, 1)
    top = np.argsort(-rise)[:n]
    labels = {lab["i"]: lab for lab in load_labels(export)["labels"]} if labels_path(export).exists() else {}
    reads = [[int(t) for t in labels.get(int(j), {}).get("rule", {}).get("tokens", [])][:n_tokens] for j in top]
    promoted, words = _latent_words(organism, w["W_dec"][top], reads, n_tokens)
    latents = [{"latent": int(j), "rise": float(rise[j]), "base_mean": float(means["a"][j] / max(rows, 1)),
                "label": labels.get(int(j), {}).get("label", ""),
                "promotes": [organism.tokenizer.decode([t]) for t in up]} for j, up in zip(top, promoted)]
    return latents, words


@torch.no_grad()
def next_token_diff(base, organism, prompts: list[str], replies: dict[str, list[str]], floor: float = 0.5) -> tuple[dict, list]:
    """On the same transcripts (both models' replies), the words whose summed next-token probability
    the fine-tune raises most over the base: log((sum p_organism + floor) / (sum p_base + floor))."""
    tok = organism.tokenizer
    mass = {"organism": 0.0, "base": 0.0}
    n = 0
    for who in replies:
        for p, r in zip(prompts, replies[who]):
            start = len(tok.encode(transcript(tok, p, ""), add_special_tokens=False))
            ids = torch.tensor([tok.encode(transcript(tok, p, r), add_special_tokens=False)])
            if ids.shape[1] <= start:
                continue
            for name, model in (("organism", organism), ("base", base)):
                mass[name] = mass[name] + torch.softmax(model(ids)[0, start - 1:-1].float(), -1).sum(0)
            n += ids.shape[1] - start
    if not n:
        return {"tokens": 0}, []
    ratio = torch.log(mass["organism"] + floor) - torch.log(mass["base"] + floor)
    top = torch.topk(ratio, 400)
    return {"tokens": n}, ranked_words(tok, [(int(t), float(v)) for v, t in zip(*top)], word_start=True)
