"""`mechinterp eval-transcoders` as a script (python scripts/eval_transcoders.py --help)."""

from mechinterp.cli.stages.eval_transcoders import main

if __name__ == "__main__":
    main(prog="scripts/eval_transcoders.py")
