"""Entry point: crash-loop guard, network and clock (boards with WIFI = True), the application."""
import sys

# A firmware with uwallbox frozen in: a uwallbox/ folder left in flash (an earlier `make deploy`)
# must not shadow it, so the frozen modules come first. Without frozen modules this changes nothing.
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

import asyncio  # noqa: E402

import board  # noqa: E402
from uwallbox.system import crashguard  # noqa: E402

if crashguard.may_start(board):
    try:
        if getattr(board, "WIFI", False):
            from uwallbox.system import netup
            netup.up()
        from uwallbox.app import App
        app = App(board)
        try:
            asyncio.run(app.run())
        except KeyboardInterrupt:  # Ctrl-C at the console, or the simulator stopping
            asyncio.run(app.shutdown())
    except Exception as e:
        crashguard.crashed(board, e)
