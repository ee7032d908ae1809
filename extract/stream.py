"""The producer of a training stream: the model's forward over a corpus, written into a ring of
shared-memory slots (mechinterp/formats/ring.py) that a JAX process trains from.

    python -m extract.stream RING_FOLDER READ_FD WRITE_FD START_BATCH   (started by the consumer)

What it computes comes from the ring's layout.json ("producer"): the model, the units (one row of a
unit is its hooks' activations side by side: (mlp_in, mlp_out) for a transcoder), the corpus and its
windows. The rows are the training windows' tokens after the first `skip_windows` (those went to
the held-out dump), BOS rows left out as a dump's training batches leave them out, shuffled within
buffers of `shuffle_batches` batches by a generator seeded by the buffer's number. Batch s is
therefore the same batch whenever it is made: a consumer that resumes at step s starts the
producer at batch s and sees what an uninterrupted run saw.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from mechinterp.formats.ring import END, ERROR_FILE, FAILED, PLAN, Doorbell, Ring


def _rows_of(window: np.ndarray, bos: int | None) -> np.ndarray:
    """Positions of a window's training rows: every token but BOS (the first and the separators)."""
    pos = np.arange(len(window))
    return pos if bos is None else pos[window != bos]


def row_budget(windows: Iterator[np.ndarray], bos: int | None, want: int) -> int:
    """Training rows the windows hold, counted up to `want`: a tokenising pass, no forward."""
    rows = 0
    for w in windows:
        if rows >= want:
            break
        rows += len(_rows_of(w, bos))
    return min(rows, want)


class Producer:
    def __init__(self, ring: Ring, start_batch: int):
        import torch

        from extract.corpus import open_corpus
        from extract.models import load_model
        from extract.windows import WindowStream

        p = ring.layout["producer"]
        torch.set_num_threads(p["threads"])
        self.ring, self.p, self.start = ring, p, start_batch
        self.model = load_model(p["model"], device=p["device"])
        self.units = [list(u) for u in p["units"]]
        self.names = list(dict.fromkeys(h for u in self.units for h in u))
        self.stop = self.model.min_stop_layer(self.names)
        self.bos = self.model.bos_token_id
        source = open_corpus(p["corpus"], p["text_field"])
        self.stream = WindowStream(source, self.model.tokenizer, p["ctx"], self.bos, p["seed"], p["eval_fraction"])

    def windows(self) -> Iterator[np.ndarray]:
        return islice(self.stream.train(), self.p["skip_windows"], None)

    def batches_available(self) -> int:
        rows = self.ring.layout["rows"]
        return row_budget(self.windows(), self.bos, self.p["batches"] * rows) // rows

    def _forward(self, windows: list[np.ndarray]) -> np.ndarray:
        """[units, n rows, width]: the windows' training rows, each unit's hooks side by side."""
        import torch

        toks = np.stack(windows)
        with torch.inference_mode():
            _, cache = self.model.run_with_cache(torch.from_numpy(toks).long().to(self.model.device),
                                                 names=self.names, stop_at_layer=self.stop)
        keep = np.concatenate([_rows_of(w, self.bos) + i * len(w) for i, w in enumerate(toks)])
        flat = {n: cache[n].float().reshape(toks.size, -1)[torch.from_numpy(keep)].cpu().numpy() for n in self.names}
        return np.stack([np.concatenate([flat[h] for h in u], axis=1) for u in self.units])

    def buffers(self, n_batches: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first batch number, rows [units, batches * rows, width] shuffled) for each shuffle buffer that
        holds a batch >= start, in order; the windows before the first such buffer are only tokenised."""
        rows, per = self.ring.layout["rows"], self.p["shuffle_batches"]
        first = self.start // per * per
        skip_rows = first * rows
        seen = 0
        pending: list[np.ndarray] = []
        pending_rows, fwd = 0, self.p["forward_windows"]
        batch = []
        for w in self.windows():
            n = len(_rows_of(w, self.bos))
            if seen + n <= skip_rows:  # wholly before the first buffer: no forward needed
                seen += n
                continue
            batch.append(w)
            if len(batch) < fwd:
                continue
            acts = self._forward(batch)
            batch = []
            if seen < skip_rows:
                acts, seen = acts[:, skip_rows - seen:], skip_rows
            pending.append(acts)
            pending_rows += acts.shape[1]
            while pending_rows >= per * rows and first < n_batches:
                yield first, self._cut(pending, per * rows, first)
                pending_rows -= per * rows
                first += per
            if first >= n_batches:
                return
        if batch:
            pending.append(self._forward(batch))
            pending_rows += pending[-1].shape[1]
        while first < n_batches and pending_rows >= rows:  # the corpus ended: a last, shorter buffer
            take = min(per, pending_rows // rows, n_batches - first) * rows
            yield first, self._cut(pending, take, first)
            pending_rows -= take
            first += take // rows

    def _cut(self, pending: list[np.ndarray], n: int, first: int) -> np.ndarray:
        """The first n pending rows, shuffled by the buffer's own generator; the rest stay pending."""
        rows = np.concatenate(pending, axis=1)
        pending[:] = [rows[:, n:]]
        return rows[:, :n][:, np.random.default_rng([self.p["seed"], first]).permutation(n)]

    def run(self, bell: Doorbell) -> None:
        ring, rows = self.ring, self.ring.layout["rows"]
        n_batches = min(self.p["batches"], self.batches_available())
        if not bell.tell(PLAN, n_batches):
            return
        sent = self.start
        for first, buf in self.buffers(n_batches):
            for b in range(buf.shape[1] // rows):
                seq = first + b
                if seq < self.start:
                    continue
                slot = bell.wait_free()
                if slot is None:
                    return  # the consumer is gone
                ring.data[slot] = buf[:, b * rows:(b + 1) * rows]
                if not bell.full(slot, seq):
                    return
                sent = seq + 1
        bell.tell(END, sent)


def main(argv: list[str]) -> int:
    folder, read_fd, write_fd, start = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    ring = Ring(Path(folder))
    bell = Doorbell(read_fd, write_fd)
    try:
        Producer(ring, start).run(bell)
        return 0
    except KeyboardInterrupt:
        return 130
    except BaseException as e:  # the consumer reports it: one line in the ring's error file
        from mechinterp.formats.errors import LabError

        msg = str(e) if isinstance(e, LabError) else f"{type(e).__name__}: {e}"
        (ring.folder / ERROR_FILE).write_text(msg + "\n\n" + traceback.format_exc())
        bell.tell(FAILED, 0)
        return 1
    finally:
        bell.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
