"""Runs first on power-up and after every soft reset: keep the power path safe until the
application takes over (contactors open, pilots steady +12 V: no charging)."""
import sys

# A firmware with uwallbox frozen in: a uwallbox/ folder left in flash (an earlier `make deploy`)
# must not shadow it, so the frozen modules come first. Without frozen modules this changes nothing.
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

import board  # noqa: E402
from uwallbox.system import crashguard  # noqa: E402

crashguard.safe(board, 1)
