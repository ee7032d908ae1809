"""PyTorch side: models, hook sites, IOI patching, activation dumps.

Submodules import torch lazily where they need it; `mechinterp.formats.store` is numpy-only so the
JAX side can read activation stores without importing torch.
"""
