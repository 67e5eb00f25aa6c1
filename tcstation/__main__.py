"""``python -m tcstation``: the same command line as ``tcstation``."""

import sys

from tcstation.cli import main

sys.exit(main())
