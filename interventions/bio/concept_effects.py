"""Do the latents aligned with a concept act on it? Two interventions through an SAE at its site,
measured on held-out sequences:

  ablation   the concept's latents are removed from the activations (x - f_S(x) W_dec[S]: the SAE's
             error term stays, so only those latents' contribution goes); the rise in the true
             residue's cross-entropy at residues that have the concept, at residues that do not, and
             for the same number of random live latents. Measured two ways: at masked residues
             (predicted from their context) and at every residue read back unmasked (what the model
             keeps of the residue itself).
  steering   a region latent's decoder direction, times alpha times its mean firing value, is added
             at masked residues outside the region; the predicted residue distribution there moves
             towards the region's composition when the shift score (the predicted distribution's mean
             log-ratio of the region's composition to the background composition) rises; the shift
             fraction is how far it moves from the unsteered score to the composition's own.
"""

from __future__ import annotations

import numpy as np
import torch

from interventions.bio.masked_loss import masked_batches
from mechinterp.formats.residues import Residues


@torch.no_grad()
def _runs(model, seqs: list[str], hook: str, edit, labels_of, mask_fraction: float, seed: int, masked: bool = True,
          batch: int = 32):
    """(per measured residue: true token, log-probs [vocab], concept labels) with `edit(x, measured,
    residue)` applied at `hook` (None: clean). Measured: the masked residues, or (masked=False) every
    residue of the unmasked sequences."""
    out = []
    for b, (tokens, attention, to_mask, residue) in enumerate(masked_batches(model, seqs, mask_fraction, seed, batch)):
        at = to_mask if masked else residue
        inputs = tokens.masked_fill(to_mask, model.tokenizer.mask_token_id) if masked else tokens
        hooks = [] if edit is None else [(hook, lambda x, hook, m=at, r=residue: edit(x, m, r))]
        logits = model.run_with_hooks(inputs, hooks=hooks, attention_mask=attention)
        rows, cols = torch.nonzero(at, as_tuple=True)
        out.append((tokens[at], torch.log_softmax(logits[at].float(), -1), labels_of(b * batch + rows, cols - 1)))
    return [torch.cat(x) if isinstance(x[0], torch.Tensor) else np.concatenate(x) for x in zip(*out)]


def labeller(res: Residues, seq_index: np.ndarray, concept_labels):
    """(sequence-in-batch, position) -> the concept labels of that residue's row in the dump."""
    row_of = {(int(s), int(p)): r for r, (s, p) in enumerate(zip(res.seq, res.pos))}

    def labels_of(seq_rows: torch.Tensor, pos: torch.Tensor) -> np.ndarray:
        rows = np.array([row_of.get((int(seq_index[s]), int(p)), -1) for s, p in zip(seq_rows, pos)])
        out = concept_labels(np.maximum(rows, 0))
        out[rows < 0] = False
        return out
    return labels_of


def held_out_sequences(res: Residues, n: int) -> tuple[list[str], np.ndarray]:
    """Up to n held-out sequences whose every residue is in the dump (labels for each)."""
    stored = np.bincount(res.seq, minlength=len(res.seq_text))
    idx = [s for s in np.flatnonzero(res.seq_heldout) if stored[s] == len(res.seq_text[s])][:n]
    return [str(res.seq_text[s]) for s in idx], np.array(idx)


MODES = {"masked": True, "unmasked": False}


def against_random(rise: float, draws: np.ndarray) -> dict:
    """A concept's rise against the rises of n random draws of as many latents: s = the draws' sample
    s.d.; z_vs_random = (rise - mean) / s; random_rise_interval95 = mean +- t s sqrt(1 + 1/n), where 95%
    of random draws fall (Student's t, n - 1 degrees of freedom); ratio_vs_random = rise / mean, only
    where the mean's own 95% interval (mean +- t s / sqrt(n)) leaves out 0: a ratio to a mean that
    cannot be told from 0 is noise, so it is null and ratio_vs_random_null says why."""
    from scipy.stats import t as student

    n, mean = len(draws), float(np.mean(draws))
    out = dict(n_random=n, z_vs_random=None, random_rise_interval95=None, outside_random_interval95=None,
               ratio_vs_random=None, ratio_vs_random_null=None)
    if n < 2:
        out["ratio_vs_random_null"] = "one random draw has no spread to judge it by; pass --n_random 2 or more"
        return out
    s, q = float(np.std(draws, ddof=1)), float(student.ppf(0.975, n - 1))
    if s > 0:
        out["z_vs_random"] = (rise - mean) / s
    half, of_mean = q * s * float(np.sqrt(1 + 1 / n)), q * s / float(np.sqrt(n))
    out["random_rise_interval95"] = [mean - half, mean + half]
    out["outside_random_interval95"] = bool(abs(rise - mean) > half)
    if abs(mean) > of_mean:
        out["ratio_vs_random"] = rise / mean
    else:
        out["ratio_vs_random_null"] = (f"the random draws' mean rise {mean:+.2g} is within {of_mean:.2g} of 0 (its 95% "
                                       f"interval over {n} draws): a ratio to it would be noise; read z_vs_random")
    return out


def ablation(model, sae, hook: str, seqs, labels_of, concept_latents: dict[str, list[int]], concept_index: dict,
             live: np.ndarray, n_random: int = 5, mask_fraction: float = 0.15, seed: int = 0) -> dict:
    """Per concept and mode (masked, unmasked): mean rise in the true residue's CE at residues with /
    without the concept, for its latents and for n_random draws of as many random live latents, read
    against the draws' spread (against_random)."""
    from tqdm import tqdm

    W_dec = sae.W_dec.float()

    def remove(latents):
        idx = torch.as_tensor(latents)

        def edit(x, measured, residue):
            f = sae.encode(x.float())[..., idx]
            return torch.where(residue[..., None], x - (f @ W_dec[idx]).to(x.dtype), x)
        return edit

    def ce(tokens, logp):
        return -logp.gather(1, tokens[:, None])[:, 0]
    rng = np.random.default_rng(seed)
    draws = {name: [rng.choice(np.setdiff1d(live, ls), len(ls), replace=False).tolist() for _ in range(n_random)]
             for name, ls in concept_latents.items()}
    out: dict[str, dict] = {}
    for mode, masked in MODES.items():
        tokens, logp, labels = _runs(model, seqs, hook, None, labels_of, mask_fraction, seed, masked)
        clean = ce(tokens, logp)
        for name, latents in tqdm(concept_latents.items(), desc=f"ablation, {mode}", unit="concept", leave=False):
            has = torch.from_numpy(labels[:, concept_index[name]])
            if not has.any() or has.all():
                continue

            def effect(ls):
                t, lp, _ = _runs(model, seqs, hook, remove(ls), labels_of, mask_fraction, seed, masked)
                rise = ce(t, lp) - clean
                return float(rise[has].mean()), float(rise[~has].mean())
            on, off = effect(latents)
            random = np.array([effect(ls) for ls in draws[name]])
            r_mean, r_std = random[:, 0].mean(), random[:, 0].std()
            out.setdefault(name, {"latents": list(map(int, latents))})[mode] = dict(
                measured_with_concept=int(has.sum()), concept_rise=on, elsewhere_rise=off, random_rise=float(r_mean),
                random_rise_spread=float(r_std), random_rise_elsewhere=float(random[:, 1].mean()),
                selectivity=on / max(abs(off), 1e-6), **against_random(on, random[:, 0]))
    return out


def composition(res: Residues, region: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(the region's residue frequencies, the background's), over the dump's training rows."""
    train = ~res.seq_heldout[res.seq]
    count = lambda keep: np.bincount(res.token[train & keep], minlength=vocab_size).astype(float) + 1e-3
    inside, outside = count(res.region == region), count(res.region != region)
    return inside / inside.sum(), outside / outside.sum()


def steering(model, sae, hook: str, seqs, labels_of, region_index: int, latent: int, random_latent: int,
             scale: dict[int, float], comp: tuple[np.ndarray, np.ndarray], alphas=(0, 4, 8, 16, 32, 64),
             mask_fraction: float = 0.15, seed: int = 0) -> dict:
    """Shift score at masked residues outside the region, per alpha, for the region latent and a random one."""
    from tqdm import tqdm

    log_ratio = torch.from_numpy(np.log(comp[0] / comp[1])).float()

    def add(latent, alpha):
        direction = sae.W_dec[latent].float() * alpha * scale[latent]

        def edit(x, masked, residue):
            return x + (masked[..., None] * direction).to(x.dtype)
        return edit
    out = {}
    for name, latent_id in (("region_latent", latent), ("random_latent", random_latent)):
        scores = []
        for alpha in tqdm(alphas, desc=f"steering, {name.replace('_', ' ')}", unit="alpha", leave=False):
            _, logp, labels = _runs(model, seqs, hook, add(latent_id, alpha), labels_of, mask_fraction, seed)
            outside = torch.from_numpy(~labels[:, region_index])
            scores.append(float((logp[outside].exp() @ log_ratio).mean()))
        out[name] = dict(latent=int(latent_id), shift_score=scores)
    out["alphas"] = list(alphas)
    out["region_score"] = region = float(comp[0] @ np.log(comp[0] / comp[1]))  # a prediction equal to the composition
    for name in ("region_latent", "random_latent"):
        base = out[name]["shift_score"][0]
        out[name]["shift_fraction"] = [(v - base) / (region - base) for v in out[name]["shift_score"]]
    return out
