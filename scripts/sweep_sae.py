"""`mechinterp sweep-sae` as a script: train a population of SAEs at once (python scripts/sweep_sae.py --help)."""

from mechinterp.cli.stages.sweep_sae import main

if __name__ == "__main__":
    main(prog="scripts/sweep_sae.py")
