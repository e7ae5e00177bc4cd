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


def _setup_held(board):
    if getattr(board, "SETUP_PIN", None) is None:
        return False
    from uwallbox.web.setup import held
    return held(board)


if crashguard.may_start(board):
    try:
        if getattr(board, "WIFI", False):
            from uwallbox.system import netup
            if _setup_held(board) or not netup.up():  # no working Wi-Fi: the setup access point
                from uwallbox.web import setup
                setup.run(board, netup.credentials() is not None)  # restarts after a save
        from uwallbox.app import App
        # Collect every 2 KB allocated, not only when the heap is full: the live objects stay
        # packed low and large blocks stay free above them (a full heap collected late is left
        # in pieces). Measured on the 32-bit build (frozen image, the bench scenario): it fits
        # in 50 KiB, 52 at every 4 KB (about 6 KiB more without, when it was added). A collection
        # takes ~30 us on the unix port (tools/bench/cpu.py's 50x: ~1.5 ms on an ESP32, an
        # estimate), a few times a second while MeterValues go every second.
        import gc
        gc.threshold(2048)
        app = App(board)
        try:
            asyncio.run(app.run())
        except KeyboardInterrupt:  # Ctrl-C at the console, or the simulator stopping
            asyncio.run(app.shutdown())
    except Exception as e:
        crashguard.crashed(board, e)
