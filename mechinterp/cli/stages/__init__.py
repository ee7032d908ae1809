"""One module per stage of `mechinterp <stage>`: `parser()` builds its flags from the stage's config
dataclasses (mechinterp.cli.flags) and `main(argv)` makes one library call and writes files.
scripts/<stage>.py are thin wrappers around the same `main`."""

from __future__ import annotations

import argparse
import errno
import re
import signal
import sys
import threading
from contextlib import contextmanager

# errors a user can fix: the library raises them (all ValueError subclasses: ModelLoadError,
# StoreError, DumpError, SAEError ...) with a message that is the whole story; every OSError is
# one line too (os_error)
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError)


@contextmanager
def user_errors():
    """`error: ...` on stderr and exit status 2 for a user error; 130 after Ctrl-C (every long
    stage saves its state first, so the same command resumes). Ctrl-C is made a KeyboardInterrupt
    here even where the parent left SIGINT ignored or at its default (background jobs, some launchers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:
        print(f"error: {os_error(e)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: what was done is saved; re-run the same command to resume", file=sys.stderr)
        raise SystemExit(130) from None


FIXES = {
    errno.ENOSPC: "free some space and re-run the same command (what was saved is kept)",
    errno.EDQUOT: "free some space and re-run the same command (what was saved is kept)",
    errno.EROFS: "choose a writable --out (or point MECHINTERP_CACHE at a writable folder for the cache)",
    errno.EACCES: "choose a folder you may write, or fix its permissions",
    errno.EPERM: "choose a folder you may write, or fix its permissions",
    errno.ENOTDIR: "a file stands where a folder is needed: move it away or choose another path",
    errno.EEXIST: "a file stands where a folder is needed: move it away or choose another path",
    errno.EISDIR: "a folder stands where a file is needed: move it away or choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def os_error(e: OSError) -> str:
    """An operating-system error as one line: the file, what went wrong, what to do (the lab's own
    FileNotFoundErrors carry their whole message)."""
    if e.errno is None:
        return str(e)
    where = f"{e.filename}: " if e.filename else ""
    what = "no space left on the device" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e)).lower()
    return f"{where}{what}; {FIXES.get(e.errno, 'check the path and re-run the same command')}"


def flag_error(message: str) -> str:
    """argparse's "argument --x: msg" as one line: "--x: msg", or just "msg" where that already starts with the flag."""
    m = re.match(r"argument (\S+): (.*)", message, re.S)
    if m:
        flag, rest = m.groups()
        message = rest if rest.startswith(flag) else f"{flag}: {rest}"
    return message


class StageParser(argparse.ArgumentParser):
    def error(self, message: str):
        """A bad flag is one line too, like every other user error."""
        print(f"error: {flag_error(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def new_parser(doc: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A stage's parser: its module docstring's first line as the description, the rest as usage notes."""
    first, _, rest = doc.strip().partition("\n")
    return StageParser(prog=prog, description=first, epilog=rest.strip() or None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)


def config_parser(doc: str, prog: str | None, *configs: type) -> argparse.ArgumentParser:
    """new_parser with one group of flags per config dataclass."""
    from mechinterp.cli.flags import add_flags

    p = new_parser(doc, prog)
    for cls in configs:
        add_flags(p, cls)
    return p
