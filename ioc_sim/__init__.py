"""Simulated instruments of the station, served by caproto.

The IOC's linear algebra is on 6 x 6 matrices: a BLAS thread pool only spins
(a whole core at idle, measured), so it gets one thread unless told otherwise.
This must happen before numpy is first imported.
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
