"""`mechinterp train-transcoders` as a script: a transcoder per layer (python scripts/train_transcoders.py --help)."""

from mechinterp.cli.stages.train_transcoders import main

if __name__ == "__main__":
    main(prog="scripts/train_transcoders.py")
