from gitflows.cli import main

main()
