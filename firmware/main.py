"""Entry point: run the charge point application on this board."""
import asyncio

import board
from uwallbox.app import App

asyncio.run(App(board).run())
