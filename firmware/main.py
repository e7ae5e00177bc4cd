"""Entry point: crash-loop guard, network and clock (boards with WIFI = True), the application."""
import asyncio

import board
from uwallbox.system import crashguard

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
