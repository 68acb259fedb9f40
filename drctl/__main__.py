from drctl.cli import main

main()
