"""`mechinterp smoke` as a script: load a model, run one prompt, capture one hook (python scripts/smoke.py --help)."""

from mechinterp.cli.stages.smoke import main

if __name__ == "__main__":
    main(prog="scripts/smoke.py")
