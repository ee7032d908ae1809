"""`mechinterp label` as a script: labels for every latent, scored on held-out text (python scripts/label_features.py --help)."""

from mechinterp.cli.stages.label import main

if __name__ == "__main__":
    main(prog="scripts/label_features.py")
