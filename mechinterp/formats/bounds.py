"""Valid ranges of numeric settings, declared once on the config dataclass field that holds them:

    steps: int = field(default=2000, metadata=bounds(1))                    # >= 1
    lr: float | None = field(default=None, metadata=bounds(0, open_low=True))  # > 0 (None: derived)
    eval_fraction: float = field(default=0.05, metadata=bounds(0, 1, open_high=True))  # in [0, 1)

The command's flag parser refuses a value out of range with one line and shows the range in
--help; `check_bounds(config)` in the config's `__post_init__` refuses it from Python. Every float
setting must be finite (NaN and infinities are refused whether or not a range is declared); a tuple
setting is checked element by element; None ("derive it") is always allowed where the type allows it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mechinterp.formats.errors import LabError


@dataclass(frozen=True)
class Bounds:
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.open_high else '<='} {self.high:g}"
        return "finite"

    def problem(self, value) -> str | None:
        """Why `value` is out of range, or None."""
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        low_bad = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        high_bad = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        return f"must be {self}" if low_bad or high_bad else None


FINITE = Bounds()


def bounds(low: float | None = None, high: float | None = None, *, open_low: bool = False, open_high: bool = False,
           **metadata) -> dict:
    """A field's metadata with its valid range (and any other metadata, e.g. a flag's spelling)."""
    return {"bounds": Bounds(low, high, open_low, open_high), **metadata}


def field_bounds(f: dataclasses.Field) -> Bounds | None:
    return f.metadata.get("bounds")


def check_bounds(config) -> None:
    """Refuse a config whose numeric settings leave their declared ranges (or are not finite)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        rule = field_bounds(f) or FINITE
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                why = rule.problem(v)
                if why:
                    raise LabError(f"--{f.metadata.get('flag', f.name)} {v!r} {why}")
