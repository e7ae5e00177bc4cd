"""Crash-loop guard and watchdog: a crash restarts cleanly, a crash loop stops the charge point.

Crashes (an exception out of the application, a watchdog reset) are counted in `crashes.json`
and described in `crash.log` (the newest _LOG_MAX bytes). Running _STABLE_S seconds clears the
count. After _LIMIT crashes in a row the boot leaves the charge point safe and unavailable
(contactors open, pilots in state F) without starting the application, until the count is
cleared (`make deploy` does it). A `maintenance` file (written by `make deploy`) skips one start.
"""
import asyncio
import io
import sys

import machine
from micropython import const

from .. import clock, files
from ..flash import store
from ..log import log

try:
    from .._build import PRODUCTION  # written by tools/build.py
except ImportError:
    try:  # uwallbox frozen into the firmware: tools/deploy.py copies the flag to the flash's root
        from uwallbox_build import PRODUCTION
    except ImportError:
        PRODUCTION = False

_LOG_MAX = const(4096)  # bytes of crash.log kept
_LIMIT = const(3)  # crashes in a row that stop the charge point
_STABLE_S = const(300)  # running this long clears the count
_WDT_MS = const(30000)  # watchdog timeout (production builds)


def safe(board, pilot):
    """Contactors open; pilots steady at level PILOT (1: +12 V, no charging; 0: -12 V, state F)."""
    for c in board.CONNECTORS:
        machine.Pin(c["relay"], machine.Pin.OUT, value=0)
        machine.Pin(c["pilot_pwm"], machine.Pin.OUT, value=pilot)


def _append(text):
    """Add TEXT to crash.log, dropping the oldest whole lines beyond _LOG_MAX bytes."""
    try:
        with open(files.CRASH_LOG) as f:
            text = f.read() + text
    except OSError:
        pass
    if len(text) > _LOG_MAX:
        text = text[text.find("\n", len(text) - _LOG_MAX) + 1:]
    store.write(files.CRASH_LOG, text)


def _record(why, details=""):
    """Count one crash (WHY: one line) and describe it in crash.log."""
    n = store.load(files.CRASH_COUNT, {}).get("n", 0) + 1
    store.save(files.CRASH_COUNT, {"n": n, "why": why})
    entry = "%s crash %d: %s\n%s" % (clock.Clock().iso(), n, why, details)
    if n >= _LIMIT:
        entry += "crash loop: the charge point stays unavailable\n"
    _append(entry)
    log("!", "crash %d: %s" % (n, why))


def may_start(board):
    """At boot: may the application run? If not, the charge point is left safe."""
    if store.exists(files.MAINTENANCE):
        store.remove(files.MAINTENANCE)
        log("boot", "maintenance: application not started")
        return False
    if machine.reset_cause() == machine.WDT_RESET:
        _record("watchdog reset")
    last = store.load(files.CRASH_COUNT, {})
    if last.get("n", 0) < _LIMIT:
        return True
    safe(board, 0)
    log("!", "stopped after %d crashes in a row (last: %s): unavailable; see crash.log" % (
        last["n"], last.get("why")))
    return False


def crashed(board, exc):
    """The application died of EXC: open the contactors, record it, restart."""
    evse = sys.modules.get("uwallbox.hw.evse")
    if evse:
        evse.stop_timer()
    safe(board, 1)
    try:
        buf = io.StringIO()
        sys.print_exception(exc, buf)
        details = buf.getvalue()
        print(details, end="")
        _record(details.rstrip().rsplit("\n", 1)[-1], details)
    finally:
        machine.reset()


def out_of_memory(app, why):
    """The firmware cannot allocate what it needs to stay online (WHY): each transaction ends
    with reason Reboot in the journal (if that fails too, the boot ends it with PowerLoss), then
    a restart through the crash guard, WHY in crash.log."""
    import gc
    gc.collect()
    log("!", "out of memory: %s: restarting" % why)
    for c in app.connectors:
        try:
            c.stop("Reboot")
        except Exception:
            pass
    crashed(app.board, MemoryError(why))


async def watch():
    """Application task: arms and feeds the watchdog (production builds); clears the crash
    count once the application has run _STABLE_S seconds."""
    wdt = machine.WDT(timeout=_WDT_MS) if PRODUCTION else None
    t = 0
    while True:
        if wdt:
            wdt.feed()
        if t == _STABLE_S:
            store.remove(files.CRASH_COUNT)
        t += 1
        await asyncio.sleep(1)
