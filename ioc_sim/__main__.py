"""``python -m ioc_sim``: serve the simulated station."""

import sys

from tcstation.ioc_sim.station import main

sys.exit(main())
