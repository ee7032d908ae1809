"""`mechinterp ioi` as a script: the IOI circuit lab (python scripts/ioi.py --help)."""

from mechinterp.cli.stages.ioi import main

if __name__ == "__main__":
    main(prog="scripts/ioi.py")
