"""Runs first on power-up: keep the power path safe until the application starts."""
import machine

import board

for conn in board.CONNECTORS:
    relay = conn.get("relay")
    if relay is not None:
        machine.Pin(relay, machine.Pin.OUT, value=0)
