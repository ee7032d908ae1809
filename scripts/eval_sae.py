"""`mechinterp eval-sae` as a script: the evaluation suite of an SAE (python scripts/eval_sae.py --help)."""

from mechinterp.cli.stages.eval_sae import main

if __name__ == "__main__":
    main(prog="scripts/eval_sae.py")
