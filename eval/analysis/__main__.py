"""``python -m eval.analysis``: the command line of ``eval.analysis.cli``."""

from eval.analysis.cli import main

main()
