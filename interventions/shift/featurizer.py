"""Pooled probe-site activations of each data set under an ablation (latents or raw dimensions)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from extract.biographies import Bios
from interventions.sae import TorchSAE
from interventions.shift.latents import latent_stats
from interventions.shift.probe import pool, site_activations
from interventions.splice import FeatureEdit, splice_hook

# ---------------------------------------------------------------------------- ablations


@dataclass
class Edit:
    """An ablation: latents of the SAE and/or dimensions of the raw activation, zero or mean."""
    latents: list[int] = field(default_factory=list)
    neurons: list[int] = field(default_factory=list)
    mode: str = "zero"


class Featurizer:
    """Pooled probe-site activations of each data set, under an Edit."""

    def __init__(self, model, sae: TorchSAE, probe_hook: str, sets: dict[str, Bios], batch: int = 32):
        self.model, self.sae, self.probe_hook, self.sets, self.batch = model, sae, probe_hook, sets, batch
        self.same_site = sae.hook_name == probe_hook
        self.probe_acts = {k: site_activations(model, b.texts, probe_hook, batch) for k, b in sets.items()}
        self.sae_acts = self.probe_acts if self.same_site else \
            {k: site_activations(model, b.texts, sae.hook_name, batch) for k, b in sets.items()}
        self.stats = {k: latent_stats(sae, a) for k, a in self.sae_acts.items()}
        ref = "ambiguous"
        self.latent_means = self.stats[ref].token_mean
        self.neuron_means = self.sae_acts[ref].rows().mean(0)
        self._cache: dict = {}

    def pooled(self, split: str, edit: Edit | None = None) -> torch.Tensor:
        if edit is None or (not edit.latents and not edit.neurons):
            return self.probe_acts[split].pooled()
        key = (split, tuple(edit.latents), tuple(edit.neurons), edit.mode)
        if key not in self._cache:
            self._cache[key] = self._pooled_same(split, edit) if self.same_site else self._pooled_rerun(split, edit)
        return self._cache[key]

    def _pooled_same(self, split: str, edit: Edit) -> torch.Tensor:
        """Exact, from pooled quantities: pool(x + (f' - f) W_dec) = pool(x) + (pool(f') - pool(f)) W_dec."""
        x = self.probe_acts[split].pooled().clone()
        if edit.latents:
            S = torch.tensor(edit.latents)
            new = self.latent_means[S] if edit.mode == "mean" else torch.zeros(len(S))
            x += (new - self.stats[split].pooled[:, S]) @ self.sae.W_dec[S]
        if edit.neurons:
            D = torch.tensor(edit.neurons)
            x[:, D] = self.neuron_means[D] if edit.mode == "mean" else 0.0
        return x

    @torch.no_grad()
    def _pooled_rerun(self, split: str, edit: Edit) -> torch.Tensor:
        """SAE upstream of the probe: re-run the model with the edit spliced at the SAE's hook."""
        acts, first = self.probe_acts[split], 1 if self.model.bos_token_id is not None else 0
        # hooks run in order: the splice at the SAE's hook comes before the read at the probe's
        read, stop = self.probe_hook, self.model.min_stop_layer([self.probe_hook])
        fe = FeatureEdit(zero=list(edit.latents) if edit.mode == "zero" else [],
                         mean={int(i): float(self.latent_means[i]) for i in edit.latents} if edit.mode == "mean"
                         else {}, positions=slice(first, None))
        hooks = [splice_hook(self.sae, fe, keep_error=True)] if edit.latents else []
        if edit.neurons:
            D = torch.tensor(edit.neurons)
            vals = self.neuron_means[D] if edit.mode == "mean" else torch.zeros(len(D))

            def set_dims(x, hook):
                x = x.clone()
                x[:, first:, D] = vals.to(x.dtype).to(x.device)
                return x
            hooks.append((self.sae.hook_name, set_dims))
        out = torch.zeros(len(acts), acts.acts.shape[-1])
        lengths = acts.mask.sum(1) + first
        order = lengths.argsort().tolist()
        for s in range(0, len(order), self.batch):
            idx = order[s:s + self.batch]
            t = int(lengths[idx].max())
            _, cache = self.model.run_with_cache(acts.tokens[idx, :t].to(self.model.device), names=[read],
                                                 stop_at_layer=stop, hooks=hooks)
            out[idx] = pool(cache[read].float().cpu(), acts.mask[idx, :t])
        return out


# ---------------------------------------------------------------------------- the experiment

