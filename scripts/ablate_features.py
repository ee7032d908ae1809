"""`mechinterp ablate` as a script: ablate SAE latents against random ablations (python scripts/ablate_features.py --help)."""

from mechinterp.cli.stages.ablate import main

if __name__ == "__main__":
    main(prog="scripts/ablate_features.py")
