"""`python -m writroot` runs the CLI."""

from writroot.cli import main

main()
