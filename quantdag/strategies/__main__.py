"""``python -m quantdag.strategies``: see :mod:`quantdag.strategies.cli`."""

import sys

from quantdag.strategies.cli import main

sys.exit(main())
