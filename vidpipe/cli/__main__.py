"""`python -m vidpipe.cli`: the command line without the console script's start-up tuning."""

from vidpipe.cli import main

main()
