"""`mechinterp trace` as a script (python scripts/trace.py --help)."""

from mechinterp.cli.stages.trace import main

if __name__ == "__main__":
    main(prog="scripts/trace.py")
