"""`mechinterp compare-saes` as a script: Pareto plots of evaluated SAEs (python scripts/compare_saes.py --help)."""

from mechinterp.cli.stages.compare_saes import main

if __name__ == "__main__":
    main(prog="scripts/compare_saes.py")
