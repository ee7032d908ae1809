from mechinterp.cli import main

main()
