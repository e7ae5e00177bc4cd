"""Runs first on power-up and after every soft reset: keep the power path safe until the
application takes over (contactors open, pilots steady +12 V: no charging)."""
import board
from uwallbox.system import crashguard

crashguard.safe(board, 1)
