"""`mechinterp shift` as a script: SHIFT (python scripts/shift.py --help)."""

from mechinterp.cli.stages.shift import main

if __name__ == "__main__":
    main(prog="scripts/shift.py")
