"""`mechinterp demo` as a script: the main job (python scripts/run_all.py --help).
--tiny and --full are kept as the spellings of --size tiny / --size full."""

import sys

from mechinterp.cli.stages.demo import main

if __name__ == "__main__":
    sizes = {"--tiny": ["--size", "tiny"], "--full": ["--size", "full"]}
    main([part for arg in sys.argv[1:] for part in sizes.get(arg, [arg])], prog="scripts/run_all.py")
