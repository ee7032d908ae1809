"""What an SAE architecture is to the trainer: one subclass of Architecture per module of this package.

Two families share the training code. Dense architectures (`uses_k` False) compute every latent and
return them with their sparsity term from `dense_latents`. The k family (`uses_k` True) is trained
through the sparse top-k path (sae_jax/topk.py: only the k_max largest pre-activations of each token
are ever materialised), and `keep` says which of those candidates stay. The export is one of the
three inference contracts of mechinterp/formats/sae.py (`standard`, `topk`, `jumprelu`), written in
JAX once in contract.py.
"""

from __future__ import annotations


class Architecture:
    name: str = ""
    export: str = "standard"
    """The inference contract of the export: standard, topk or jumprelu (mechinterp/formats/sae.py)."""
    uses_k: bool = False
    """Sparsity is set by k and the sparse top-k path trains it (else: a sparsity penalty, dense latents)."""
    default_l1: float = 0.0
    """Sparsity coefficient when --l1 is not given (dense architectures)."""
    unit_norm_decoder: bool = True
    """Decoder rows are kept at norm 1 (gradients projected, rows renormalised after each step)."""
    resamples_dead: bool = False
    """Dead latents are re-initialised on poorly reconstructed inputs during training."""
    tracks_threshold: bool = False
    """Training keeps a moving estimate of an inference threshold, calibrated at the end and exported."""

    def kmax(self, k: int, d_sae: int) -> int:
        """Candidates per token the sparse path materialises (k family)."""
        return k

    def decoder_init_norm(self, cfg) -> float:
        return 1.0

    def init_log_threshold(self, cfg) -> float:
        return 0.0

    def dense_latents(self, sae, pre, cfg):
        """Dense family: (latents f [b, d_sae], the sparsity term to weight by l1)."""
        raise NotImplementedError(f"{self.name} is trained through the top-k path")

    def keep(self, vals, k, n_tokens: int):
        """k family: (the kept candidate values [b, k_max], zero elsewhere; the batch's threshold, or 0)."""
        raise NotImplementedError(f"{self.name} computes its latents densely")
