"""`mechinterp browse` as a script: the feature browser (python scripts/browse_features.py --help)."""

from mechinterp.cli.stages.browse import main

if __name__ == "__main__":
    main(prog="scripts/browse_features.py")
