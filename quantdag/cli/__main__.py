"""``python -m quantdag.cli``: the same as the ``quantdag`` console script."""

from quantdag.cli import main

main()
