"""The App's building, start and end, loaded for each and unloaded after (app.py): what runs
once per boot (the parts built from the board and the configuration, settings.json, the meters'
first answer, the transactions a power cut interrupted, the tasks, the web page, a firmware
update to resume), the reboot and the shutdown."""
import asyncio
import time

import machine

from . import VERSION, files, transient
from .flash import store
from .log import log

# (the parts' modules are imported in the functions: what this module imports at its top is
# unloaded with it, and they stay)


def build(app, board):
    """App(board): every part, from the board and the configuration."""
    from . import clock
    from .hw.evse import Evse
    from .ocpp import routes
    from .ocpp.rpc import Rpc
    from .ocpp.session import Session, Statuses
    from .station.auth import Auth
    from .station.config import Config
    from .station.connector import Connector
    from .station.journal import Journal
    from .station.meter import Metering
    from .station.seclog import SecurityLog
    app.board = board
    n = len(board.CONNECTORS)
    app.tasks = {}  # name -> the task of that name (spawn)
    app.clock = clock.Clock()
    app.seclog = SecurityLog(app)
    app.smart = None  # smartcharging.Scheduler, imported only once profiles exist
    app.config = Config({"NumberOfConnectors": n, "Phases": board.PHASES,
                          "SupportedFeatureProfiles": routes.supported()})
    with transient():
        from .system.provision import apply  # settings.json: once, at boot
        apply(app.config)
    app.config.listener = app._config_changed  # provisioning is no reconfiguration
    app.rpc = Rpc(app)
    app.session = Session(app)
    app.statuses = Statuses(app)
    app.journal = Journal(app)
    app.auth = Auth(app)
    app.metering = Metering(app)
    app.avail = store.load(files.AVAILABILITY, {})
    app.reservations = store.load(files.RESERVATIONS, {})
    app.firmware_status = app.diagnostics_status = "Idle"  # set by firmware.py
    app.evses = [Evse(board, i) for i in range(n)]
    app._cap()
    app.connectors = [Connector(app, i + 1, app.evses[i], board.meter(i)) for i in range(n)]
    # a transaction a power cut interrupted ends in run(), once the meters have answered


async def _meters_ready(app, ms=3000):
    """Start the meters that poll (hw/meters.py) and give them MS to answer: a transaction's
    meterStart, a PowerLoss meterStop come from their register, not from zeros."""
    for c in app.connectors:
        start = getattr(c.meter, "start", None)
        if start:
            start()
    for c in app.connectors:
        ready = getattr(c.meter, "ready", None)
        if ready is not None:
            try:
                await asyncio.wait_for_ms(ready.wait(), ms)
            except asyncio.TimeoutError:
                log("!", "connector %d: the meter does not answer" % c.id)
                ms = 0


def recover(c):
    """At boot, a transaction file a power cut left on connector C: end it with reason PowerLoss
    and the last persisted meter reading, unless its StopTransaction was queued before the cut
    (or it never got as far as a StartTransaction)."""
    tx = c.tx
    if tx is None:
        return
    j, ref = c.app.journal, tx.ref
    if (j.tid(ref) is not None or j.queued("StartTransaction", ref)) and not j.queued(
            "StopTransaction", ref):
        wh = tx.meter_wh
        if c.meter_ok and hasattr(c.meter, "ready"):
            # a real meter counted what flowed after the last persisted reading, up to the cut
            raw = c.meter.read()[0] + tx.offset
            if raw >= wh:
                wh = raw
            else:
                log("!", "connector %d: meter went backwards from %d to %d Wh" % (c.id, wh, raw))
        j.add("StopTransaction", {"transactionId": 0, "meterStop": wh,
                                  "timestamp": c.app.clock.iso(), "reason": "PowerLoss"}, ref)
        log("tx", "connector %d: transaction %d ended by power loss at %d Wh" % (c.id, ref, wh))
    store.remove(c.path)
    c.tx = None


async def start(app):
    """Everything App.run() starts, in order."""
    log("boot", "uwallbox %s on board %s, %d connector(s), charge point %s" % (
        VERSION, app.board.NAME, len(app.connectors), app.config["ChargePointId"]))
    from .hw.evse import start_timer
    asyncio.get_event_loop().set_exception_handler(app.failed)
    start_timer(app.evses)
    await _meters_ready(app)
    for c in app.connectors:
        recover(c)  # a transaction a power cut interrupted
        app.spawn("connector%d" % c.id, c.run())
    app.spawn("connection", app.session.run())
    app.spawn("journal", app.journal.run())
    app.spawn("statuses", app.statuses.run())
    app.spawn("housekeeping", app.session.housekeeping())
    app.spawn("metering", app.metering.run())
    app.spawn("security-events", app.seclog.run())
    app.security_event("StartupOfTheDevice")
    if store.exists(files.PROFILES):
        from .profiles.smartcharging import scheduler
        scheduler(app)
    attach = getattr(app.board, "attach", None)
    if attach:
        attach(app)
    if app.config["WebServerEnabled"] and getattr(app.board, "WEB_PORT", 80) \
            and store.exists(files.WEB_ADMIN):
        try:
            from .web import start  # the web page (web/), imported only when enabled
            start(app)
        except MemoryError:  # the page is optional: charging goes on without it
            log("!", "web page off: not enough memory")
    if store.exists(files.FW_UPDATE):
        from .profiles.firmware import resume
        app.spawn("firmware-update", resume(app))


async def shutdown(app):
    """The end of App.shutdown(), the contactors open: the link closed properly."""
    await app.session.close("shutting down")
    log("boot", "stopped")


async def reboot(app, reason):
    """Stop every transaction with REASON, deliver what we can, restart."""
    from .hw.evse import stop_timer
    app.security_event("ResetOrReboot", reason)
    for c in app.connectors:
        c.stop(reason)
    t = time.ticks_ms()
    online = app.session.online
    while len(app.journal) and online.is_set() and time.ticks_diff(time.ticks_ms(), t) < 15000:
        await asyncio.sleep_ms(100)
    log("boot", "restarting (%s)" % reason)
    await app.session.close("restarting")  # the CSMS learns that the link ends on purpose
    stop_timer()
    machine.reset()
