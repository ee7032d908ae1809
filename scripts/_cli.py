"""What every stage script shares: the common flags, and user errors as one line + exit 2."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # scripts run as files from any directory
    sys.path.insert(0, str(REPO))


def common_parser(description: str, out_default: str | None = None) -> argparse.ArgumentParser:
    from extract.models import DEFAULT_MODEL  # noqa: PLC0415 (after the sys.path insert)

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"registry name, hub id or local dir (default {DEFAULT_MODEL})")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=int, default=0)
    if out_default is not None:
        p.add_argument("--out", default=out_default, help=f"output directory (default {out_default})")
    return p


# errors a user can fix: the library raises them (all ValueError subclasses: ModelLoadError,
# StoreError, DumpError, SAEError ...) with a message that is the whole story
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, FileExistsError)


@contextmanager
def user_errors():
    """`error: ...` on stderr and exit status 2 for a user error; 130 after Ctrl-C (every long
    stage saves its state first, so the same command resumes)."""
    try:
        yield
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: what was done is saved; re-run the same command to resume", file=sys.stderr)
        raise SystemExit(130) from None
