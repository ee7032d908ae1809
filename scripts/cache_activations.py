"""`mechinterp dump` as a script: dump activations to disk-backed memmaps (python scripts/cache_activations.py --help)."""

from mechinterp.cli.stages.dump import main

if __name__ == "__main__":
    main(prog="scripts/cache_activations.py")
