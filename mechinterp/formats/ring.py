"""A ring of activation slots in shared memory between two processes: a PyTorch producer that runs
the model over a corpus and a JAX consumer that trains on what it wrote. Numpy and the OS only.

    ring = Ring.create(folder, units=30, rows=1024, width=1152, slots=4, producer={...})
    # producer (its own process)                  # consumer
    slot = bell.wait_free()                       kind, slot, seq = bell.wait_full()
    ring.data[slot, u] = rows_of_unit_u           train on ring.data[slot]
    bell.full(slot, seq)                          bell.free(slot)

The folder holds layout.json (the shape, and what the producer is to compute) and data.npy
([slots, units, rows, width] float32, a memmap both processes map). Which slot holds what travels
through two pipes, the doorbells: the producer announces a filled slot with its batch number, the
consumer hands a slot back when it has read it. A pipe's end of file says that the other process
is gone, so neither waits on a dead partner, and the system calls order the memmap's writes
before the announcement on every CPU. The ring holds `slots` batches at most: when the consumer
falls behind, the producer waits (back-pressure).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from mechinterp.formats.errors import LabError

LAYOUT_FILE, DATA_FILE, ERROR_FILE = "layout.json", "data.npy", "producer_error.txt"
FULL, END, FAILED, PLAN = 1, 2, 3, 4
"""Producer -> consumer messages: a filled slot (slot, batch number); the last batch was sent (-, batches
sent); the producer failed (ERROR_FILE says why); the batches the corpus holds (-, count)."""
_MSG = struct.Struct("<qqq")


class RingError(LabError):
    """A ring that cannot be made, or a partner process that failed; the message says what to do."""


def default_ring_parent(need: int) -> Path:
    """Shared memory where the system has it (/dev/shm) with room for `need` bytes, else the temporary
    folder (on macOS, say: the pages stay in the page cache while they are in use)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1.1 * need:
        return shm
    return Path(tempfile.gettempdir())


class Ring:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.layout = json.loads((self.folder / LAYOUT_FILE).read_text())
        self.data = np.load(self.folder / DATA_FILE, mmap_mode="r+")

    @classmethod
    def create(cls, parent: str | Path, units: int, rows: int, width: int, slots: int, producer: dict) -> Ring:
        parent = Path(parent)
        need = slots * units * rows * width * 4
        try:
            parent.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(parent).free
        except OSError as e:
            raise RingError(f"cannot make a ring in {parent} ({e.strerror}); pass --ring_dir a writable folder") from None
        if need > 0.9 * free:
            raise RingError(f"a ring of {slots} slots needs {need / 1e9:.2f} GB and {parent} has {free / 1e9:.2f} GB "
                            "free; pass fewer --ring_slots, a smaller --batch, or --ring_dir a folder with room")
        folder = Path(tempfile.mkdtemp(prefix="ring-", dir=parent))
        try:
            np.lib.format.open_memmap(folder / DATA_FILE, mode="w+", dtype=np.float32,
                                      shape=(slots, units, rows, width)).flush()
            layout = dict(slots=slots, units=units, rows=rows, width=width, producer=producer)
            (folder / LAYOUT_FILE).write_text(json.dumps(layout, indent=1))
        except OSError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise RingError(f"cannot make a ring of {need / 1e9:.2f} GB in {parent} ({e.strerror}); pass --ring_dir "
                            "a folder with room, or fewer --ring_slots") from None
        return cls(folder)

    def error(self) -> str | None:
        path = self.folder / ERROR_FILE
        return path.read_text().strip() if path.exists() else None

    def remove(self) -> None:
        del self.data
        shutil.rmtree(self.folder, ignore_errors=True)


class Doorbell:
    """One end of the ring's two pipes. The producer holds (full pipe's write end, free pipe's read end),
    the consumer the opposite ends."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd

    def _send(self, *values: int) -> bool:
        """False when the other process is gone."""
        data = _MSG.pack(*values, *[0] * (3 - len(values)))
        try:
            os.write(self.write_fd, data)
            return True
        except (BrokenPipeError, OSError):
            return False

    def _receive(self, timeout: float | None) -> tuple[int, int, int] | None:
        """The next message; None at end of file (the other process is gone); raises TimeoutError."""
        buf = b""
        while len(buf) < _MSG.size:
            if timeout is not None and not select.select([self.read_fd], [], [], timeout)[0]:
                raise TimeoutError
            chunk = os.read(self.read_fd, _MSG.size - len(buf))
            if not chunk:
                return None
            buf += chunk
        return _MSG.unpack(buf)

    # producer side
    def full(self, slot: int, seq: int) -> bool:
        return self._send(FULL, slot, seq)

    def tell(self, kind: int, value: int) -> bool:
        return self._send(kind, 0, value)

    def wait_free(self) -> int | None:
        """A slot the consumer has finished with; None when the consumer is gone."""
        msg = self._receive(None)
        return None if msg is None else msg[1]

    # consumer side
    def free(self, slot: int) -> bool:
        return self._send(0, slot)

    def wait_message(self, timeout: float | None = None) -> tuple[int, int, int] | None:
        """(kind, slot, value) from the producer; None when it is gone without a word."""
        return self._receive(timeout)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
