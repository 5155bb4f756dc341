"""``python -m clampdown``: the same command line as the ``clampdown`` script."""

from clampdown.cli import main

main()
