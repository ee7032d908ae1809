"""A seeded bijection of uint32 row ids, so that a uniform sample of rows can be kept as "the
smallest hashes" (merging two samples is a minimum, independent of the chunking) and only the
hash needs storing. numpy only."""

from __future__ import annotations

import numpy as np

_M1, _M2 = 0x7FEB352D, 0x846CA68B          # lowbias32 (Chris Wellons): an invertible uint32 mix
_M1_INV, _M2_INV = pow(_M1, -1, 1 << 32), pow(_M2, -1, 1 << 32)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(16)
    x *= np.uint32(_M1)
    x ^= x >> np.uint32(15)
    x *= np.uint32(_M2)
    x ^= x >> np.uint32(16)
    return x


def _unmix(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32, copy=True)
    x ^= x >> np.uint32(16)
    x *= np.uint32(_M2_INV)
    x ^= (x >> np.uint32(15)) ^ (x >> np.uint32(30))
    x *= np.uint32(_M1_INV)
    x ^= x >> np.uint32(16)
    return x


def row_hash(rows: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """A bijection of the (uint32) row id for each salt: the sample keeps the smallest."""
    return _mix(rows.astype(np.uint32) ^ salt)


def row_unhash(h: np.ndarray, salt: np.ndarray) -> np.ndarray:
    return (_unmix(h) ^ salt).astype(np.int64)
