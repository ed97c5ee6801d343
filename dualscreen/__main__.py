from dualscreen.cli import main

main()
