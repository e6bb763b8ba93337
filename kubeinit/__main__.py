from kubeinit.cli import main

main()
