"""Layer lists as users write them: `all`, or layers and inclusive ranges (`0,4,8-11`)."""

from __future__ import annotations


def parse_layers(spec: str, n_layers: int) -> list[int]:
    """'all', or comma-separated layers and inclusive ranges ('0,4,8-11') -> sorted layer list."""
    if spec.strip() == "all":
        return list(range(n_layers))
    layers: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in spec.split(","))):
            lo, _, hi = part.partition("-")
            layers.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ValueError(f"--layers {spec!r}: use all, or layers and ranges such as 0,4,8-11") from None
    bad = sorted(L for L in layers if not 0 <= L < n_layers)
    if not layers or bad:
        raise ValueError(f"--layers {spec!r}: the model has layers 0..{n_layers - 1}" + (f", not {bad}" if bad else ""))
    return sorted(layers)
