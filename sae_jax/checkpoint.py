"""Orbax checkpoints of the full training state (every array leaf: params, Adam state, step,
PRNG key, dead-latent counters) plus a JSON sidecar (configs, history, store identity)."""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.utils import TMP_DIR_SUFFIX

from mechinterp.formats.errors import SAEError

logging.getLogger("absl").setLevel(logging.ERROR)


def tree_bytes(tree) -> int:
    return sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))


def disk_full(e: BaseException) -> bool:
    """Whether an exception (or one it was raised from) is a full disk, as orbax/tensorstore or the OS says it."""
    while e is not None:
        if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or "RESOURCE_EXHAUSTED" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


class Checkpointer:
    def __init__(self, directory: str | Path, keep: int = 2):
        self.dir, self.keep = Path(directory).absolute(), keep
        self.manager = ocp.CheckpointManager(
            self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                           enable_async_checkpointing=False))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def check_space(self, need: int, what: str, advice: str) -> None:
        """Refuse before writing when the disk cannot hold `need` bytes: orbax fails a full disk with
        pages of tracebacks from its writer threads, and leaves a partial checkpoint behind."""
        free = shutil.disk_usage(self.dir).free
        if need > free:
            raise SAEError(f"not enough disk space in {self.dir}: {what} needs about {need / 1e6:.1f} MB, "
                           f"{free / 1e6:.1f} MB free; {advice}")

    def check_run_space(self, state, export_bytes: int) -> None:
        """Room for the kept checkpoints, the one being written and the export."""
        self.check_space((self.keep + 1) * tree_bytes(state) + export_bytes, "training (checkpoints and export)",
                         "free some space or use another --out")

    def save(self, step: int, state, meta: dict) -> None:
        self.check_space(tree_bytes(state), f"checkpoint {step}",
                         "free some space and re-run the same command to resume from the previous checkpoint")
        leaves = {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
        try:
            self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(leaves),
                                                           meta=ocp.args.JsonSave(meta)), force=True)
            self.manager.wait_until_finished()
        except BaseException as e:
            self._drop_unfinished()
            if disk_full(e):
                raise SAEError(f"the disk filled up while writing checkpoint {step} to {self.dir}; free some "
                               "space and re-run the same command to resume from the previous one") from None
            raise

    def _drop_unfinished(self) -> None:
        """Remove what a failed save left: orbax writes a checkpoint into a temporary folder and renames
        it when complete; a failure (a full disk) leaves that folder behind, holding the space."""
        deadline = time.monotonic() + 30  # its writer threads first: one still running would recreate the folder
        for t in threading.enumerate():
            if t is not threading.current_thread() and not t.daemon:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
        for tmp in self.dir.glob(f"*{TMP_DIR_SUFFIX}*"):
            shutil.rmtree(tmp, ignore_errors=True)

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
