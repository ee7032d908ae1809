"""`mechinterp bio` as a script: the biology pipeline (python scripts/bio.py --help)."""

from mechinterp.cli.stages.bio import main

if __name__ == "__main__":
    main(prog="scripts/bio.py")
