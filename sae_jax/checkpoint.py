"""Orbax checkpoints of the full training state (every array leaf: params, Adam state, step,
PRNG key, dead-latent counters) plus a JSON sidecar (configs, history, store identity)."""

from __future__ import annotations

import logging
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

logging.getLogger("absl").setLevel(logging.ERROR)


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 2):
        self.dir = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                           enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, meta: dict) -> None:
        leaves = {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(leaves),
                                                       meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def read_meta(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, step: int, like):
        """Arrays of checkpoint `step` poured into the structure of `like` (same shapes)."""
        treedef = jax.tree.structure(like)
        ref = {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(like))}
        got = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(ref)))
        leaves = [np.asarray(got["state"][k]) for k in sorted(got["state"])]
        return jax.tree.unflatten(treedef, leaves)

    def close(self) -> None:
        self.manager.close()
