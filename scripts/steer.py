"""`mechinterp steer` as a script: steer with one SAE feature (python scripts/steer.py --help)."""

from mechinterp.cli.stages.steer import main

if __name__ == "__main__":
    main(prog="scripts/steer.py")
