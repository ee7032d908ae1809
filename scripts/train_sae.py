"""`mechinterp train-sae` as a script: train one SAE and export it (python scripts/train_sae.py --help)."""

from mechinterp.cli.stages.train_sae import main

if __name__ == "__main__":
    main(prog="scripts/train_sae.py")
