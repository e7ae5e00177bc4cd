"""Entry point: crash-loop guard, network and clock (boards with WIFI = True), the application."""
import asyncio

import board
from uwallbox import crashguard

if crashguard.may_start(board):
    try:
        if getattr(board, "WIFI", False):
            from uwallbox import netup
            netup.up()
        from uwallbox.app import App
        asyncio.run(App(board).run())
    except Exception as e:
        crashguard.crashed(board, e)
