"""Feature absorption on the first-letter task (Chanin et al. 2024; SAEBench's absorption eval).

Words are single vocabulary tokens (a space and letters only). Each is read in an in-context
prompt, "\\n{ex} has the first letter: {EX}\\n...\\n{word} has the first letter:", at the word's
token, at the SAE's site. Then:

1. a linear probe (26 one-vs-rest logistic outputs) learns the first letter from the raw
   activations of training words; it is the ground truth of where "starts with L" is linearly present;
2. the SAE's main latents for each letter: an L1-regularised probe on the latents ranks them, and
   k-sparse probes (k = 1..max_k, sklearn) on the top-ranked latents are scored by F1 on test words;
   k grows while F1 rises by at least `f1_jump` (feature splitting), and those k latents are the letter's;
3. on each test word the probe gets right (probe true positive), absorption is when the main latents
   fail to carry the probe's projection and other latents aligned with the probe do:
     absorption_fraction  SAEBench's: the share of the projection carried by up to 3 other latents with
                          cos(probe, W_dec) >= 0.1, when they carry >= 40% of it
     full absorption      no main latent fires, the top-projecting latent has cos >= 0.025 and
                          carries >= 40% of the projection
   per letter: their mean over the probe's true positives; letters whose probe F1 is under
   `min_probe_f1` are left out (the probe is not a ground truth there).

Caveat (SAEBench recommends models of >= 2B parameters): a small model's first-letter probe is
weaker, fewer letters qualify, and a missing letter latent may just mean the model does not
represent the letter at that site. `letters_evaluated` and the probe's F1 per letter say how much
the number rests on.
"""

from __future__ import annotations

import random
import re
import string

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from interventions.sae import TorchSAE
from interventions.shift.probe import site_batches

LETTERS = string.ascii_lowercase
FRACTION_COS, FULL_COS, PROJECTION_SHARE, MAX_ABSORBERS = 0.1, 0.025, 0.4, 3
_WORD = re.compile(r"^ [A-Za-z]{2,}$")


def word_tokens(model, n_words: int, seed: int = 0) -> list[tuple[int, str]]:
    """Up to n_words (token id, word) pairs of vocabulary tokens that are a space and >= 2 letters."""
    tok = model.tokenizer
    words = [(i, w) for i in range(len(tok)) if _WORD.match(w := tok.decode([i]))]
    random.Random(f"words-{seed}").shuffle(words)
    return sorted(words[:n_words], key=lambda p: p[1])


def prompt_ids(model, word_id: int, examples: list[str]) -> tuple[list[int], int]:
    """(token ids, position of the word) for the in-context prompt. Pieces are tokenised apart so the
    word stays the one token it is in the vocabulary."""
    enc = lambda s: model.tokenizer(s, add_special_tokens=False)["input_ids"]
    bos = [model.bos_token_id] if model.bos_token_id is not None else []
    shots = "".join(f"\n{ex} has the first letter: {ex.strip()[0].upper()}" for ex in examples)
    head = bos + enc(shots + "\n")
    return head + [word_id] + enc(" has the first letter:"), len(head)


_WORD_ACTS: dict[tuple, np.ndarray] = {}
"""Word activations already read in this process (several SAEs of one site run the model once)."""


def word_activations(model, hook: str, words: list[tuple[int, str]], n_shots: int = 10, seed: int = 0,
                     batch: int = 32) -> np.ndarray:
    """Activations [n_words, d] at each word's token in its prompt (shots drawn from the same words)."""
    key = (model.name, hook, tuple(words), n_shots, seed)
    if key not in _WORD_ACTS:
        _WORD_ACTS[key] = _read_words(model, hook, words, n_shots, seed, batch)
    return _WORD_ACTS[key]


def _read_words(model, hook, words, n_shots, seed, batch) -> np.ndarray:
    rng = random.Random(f"shots-{seed}")
    texts = [w for _, w in words]
    ids, pos = [], []
    for wid, w in words:
        shots = rng.sample([t for t in texts if t != w], min(n_shots, len(texts) - 1))
        row, p = prompt_ids(model, wid, shots)
        ids.append(row)
        pos.append(p)
    out = np.zeros((len(ids), model.d_model), np.float32)
    for idx, acts, _ in site_batches(model, ids, hook, batch, desc=f"reading {len(ids)} word prompts"):
        out[idx] = acts[torch.arange(len(idx)), [pos[i] for i in idx]].numpy()
    return out


def train_letter_probe(x: np.ndarray, y: np.ndarray, epochs: int = 50, lr: float = 1e-2, weight_decay: float = 1e-4,
                       l1: float = 0.0, batch: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(W [26, d], b [26]): one-vs-rest logistic outputs, BCE weighted by each letter's negatives /
    positives, Adam with the learning rate decayed exponentially to 1e-5 (SAEBench's train_multi_probe);
    l1 adds l1 x mean over letters of |w|_1 (its k-sparse ranking probe). SAEBench's batch is 4096 over
    a whole vocabulary (~24k training words on SmolLM2's: ~300 steps); on our 2,400 words a batch of 512
    gives about as many steps (with 4096, 50 full-batch steps underfit: probe F1 0.64 against 0.77)."""
    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x).float()
    yt = torch.nn.functional.one_hot(torch.from_numpy(y).long(), len(LETTERS)).float()
    pos = yt.sum(0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=(len(yt) - pos) / pos.clamp_min(1))
    lin = torch.nn.Linear(x.shape[1], len(LETTERS))
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.Adam(lin.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=float(np.exp(np.log(1e-5 / lr) / epochs)))
    with torch.enable_grad():
        for _ in range(epochs):
            for s in range(0, len(xt), batch):
                idx = torch.randperm(len(xt), generator=g)[s:s + batch] if batch < len(xt) else slice(None)
                loss = loss_fn(lin(xt[idx]), yt[idx]) + l1 * lin.weight.abs().sum(-1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
    return lin.weight.detach().numpy(), lin.bias.detach().numpy()


def main_latents(z_train, y_train, z_test, y_test, max_k: int = 10, f1_jump: float = 0.03, l1: float = 0.01,
                 seed: int = 0) -> dict[int, dict]:
    """Per letter index: {'latents': the split features, 'f1': their k-sparse probe's test F1, 'f1_by_k'}."""
    w, _ = train_letter_probe(z_train, y_train, l1=l1, seed=seed)
    out = {}
    for c in np.unique(y_train):
        ranked = np.argsort(-w[c], kind="stable")[:max_k]
        best, chosen, f1s = -1.0, [], []
        for k in range(1, max_k + 1):
            feats = ranked[:k]
            clf = LogisticRegression(max_iter=500, class_weight="balanced").fit(z_train[:, feats], y_train == c)
            f1 = float(f1_score(y_test == c, clf.decision_function(z_test[:, feats]) > 0, zero_division=0.0))
            f1s.append(f1)
            if f1 > best + f1_jump and len(chosen) == k - 1:
                best, chosen = f1, feats.tolist()
        out[int(c)] = {"latents": chosen, "f1": best, "f1_by_k": f1s}
    return out


def absorption_of_word(x: np.ndarray, f: np.ndarray, probe_dir: np.ndarray, cos: np.ndarray,
                       main: list[int]) -> tuple[float, bool]:
    """(absorption fraction, full absorption) of one word: x [d] its activation, f [d_sae] its
    latents, probe_dir the unit probe direction, cos [d_sae] cos(probe, W_dec rows), main its letter's latents."""
    proj = f * cos
    act_proj = float(x @ probe_dir)
    main_proj = float(proj[main].sum())
    others = np.ones(len(f), bool)
    others[main] = False
    cand = proj[others & (cos >= FRACTION_COS) & (proj > 0)]
    absorbed = float(np.sort(cand)[::-1][:MAX_ABSORBERS].sum())
    if main_proj >= act_proj or absorbed / act_proj < PROJECTION_SHARE:
        fraction = 0.0
    elif main_proj <= 0:
        fraction = 1.0
    else:
        a = min(absorbed, act_proj - main_proj)
        fraction = float(np.clip(a / (a + main_proj), 0.0, 1.0))
    top = int(np.argmax(proj))
    full = (bool(np.all(f[main] < 1e-8)) and cos[top] >= FULL_COS and act_proj >= 0
            and proj[top] / act_proj >= PROJECTION_SHARE)
    return fraction, bool(full)


def absorption(model, sae: TorchSAE, hook: str, n_words: int = 3000, max_k: int = 10, f1_jump: float = 0.03,
               min_probe_f1: float = 0.6, min_letters: int = 10, seed: int = 0, progress=None) -> dict:
    words = word_tokens(model, n_words, seed)
    y = np.array([LETTERS.index(w.strip()[0].lower()) for _, w in words])
    if progress:
        progress(f"absorption: {len(words)} words, prompts at {hook}")
    order = np.random.default_rng(seed).permutation(len(words))
    tr, te = np.sort(order[:int(0.8 * len(order))]), np.sort(order[int(0.8 * len(order)):])
    x = np.zeros((len(words), model.d_model), np.float32)
    for split in (tr, te):  # shots come from the word's own split, as in SAEBench
        x[split] = word_activations(model, hook, [words[i] for i in split], seed=seed)
    w, b = train_letter_probe(x[tr], y[tr], seed=seed)
    scores = x[te] @ w.T + b
    with torch.no_grad():
        z = sae.encode(torch.from_numpy(x).to(sae.W_enc.device)).cpu().numpy()
    mains = main_latents(z[tr], y[tr], z[te], y[te], max_k, f1_jump, seed=seed)
    dec = sae.W_dec.cpu().numpy()
    dec = dec / np.maximum(np.linalg.norm(dec, axis=1, keepdims=True), 1e-12)
    letters = {}
    for c in sorted(mains):
        probe_f1 = float(f1_score(y[te] == c, scores[:, c] > 0, zero_division=0.0))
        tp = np.flatnonzero((y[te] == c) & (scores[:, c] > 0))
        direction = w[c] / np.linalg.norm(w[c])
        cos = dec @ direction
        res = [absorption_of_word(x[te][i], z[te][i], direction, cos, mains[c]["latents"]) for i in tp]
        letters[LETTERS[c]] = {
            "probe_f1": probe_f1, "probe_true_positives": int(len(tp)), "main_latents": mains[c]["latents"],
            "main_f1": mains[c]["f1"], "split_features": max(0, len(mains[c]["latents"]) - 1),
            "absorption_fraction": float(np.mean([r[0] for r in res])) if res else 0.0,
            "full_absorption_rate": float(np.mean([r[1] for r in res])) if res else 0.0,
        }
    kept = {k: v for k, v in letters.items() if v["probe_f1"] > min_probe_f1 and v["probe_true_positives"] > 0}
    out = {"words": len(words), "test_words": int(len(te)), "letters_evaluated": len(kept),
           "probe_f1_mean": float(np.mean([v["probe_f1"] for v in letters.values()])), "letters": letters}
    if len(kept) < min_letters:
        out["not_evaluated"] = (f"only {len(kept)} letters have a first-letter probe with F1 > {min_probe_f1} "
                                f"at {hook} (needs {min_letters}); the model may not represent first letters here")
        return out
    for key in ("absorption_fraction", "full_absorption_rate", "split_features"):
        vals = [v[key] for v in kept.values()]
        out[f"mean_{key}"] = float(np.mean(vals))
        out[f"std_{key}"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return out
