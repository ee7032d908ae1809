"""`mechinterp circuit` as a script: edge-level circuit discovery (python scripts/discover_circuit.py --help)."""

from mechinterp.cli.stages.circuit import main

if __name__ == "__main__":
    main(prog="scripts/discover_circuit.py")
