"""The charge point: builds every part from the board and the configuration, owns the tasks.

The parts (docs/ARCHITECTURE.md): `session` and `statuses` (ocpp/session.py: the connection, the
registration, StatusNotification), `rpc` (ocpp/rpc.py), the station (`config`, `connectors`,
`journal`, `auth`, `metering`, `seclog`, `smart` once charging profiles exist), `evses` (hw/).
What stays here: the wiring, the tasks (`spawn`), availability and reservations, starting a
transaction for a card, the clock and security events. Building the parts, the start, the reboot
and the shutdown are lifecycle.py, loaded for each.
"""
import asyncio
from micropython import const

from . import files, use
from .flash import store
from .hw.evse import stop_timer
from .log import log
from .station.auth import same
from .system import crashguard

_TIME_JUMP = const(60)  # seconds: a larger correction of the clock is a security event


def _lifecycle(name):
    """Function NAME of lifecycle.py (the building, the start, the reboot, the shutdown), loaded
    for the call."""
    return use("uwallbox.lifecycle", name)


class App:
    def __init__(self, board):
        _lifecycle("build")(self, board)  # every part, from the board and the configuration

    def connector(self, cid):
        """Connector CID (1-based) or None."""
        return self.connectors[cid - 1] if 1 <= cid <= len(self.connectors) else None

    def _config_changed(self, key):
        if key == "MeterValueSampleInterval":
            for c in self.connectors:
                c.next_sample = 0
        elif key in ("MaxCurrent", "LocalCurrentLimit"):
            self._cap()
        elif key in ("SecurityProfile", "AuthorizationKey"):
            self.session.reconfigured(key)

    def _cap(self):
        """Each Evse's max_a: the board's rating, MaxCurrent and the owner's LocalCurrentLimit (0:
        none; set on the web page). Smart charging's limit_a comes under it (Evse._limit)."""
        a = min(self.config["MaxCurrent"], self.board.MAX_CURRENT_A)
        local = self.config["LocalCurrentLimit"]
        if local:
            a = min(a, local)
        for e in self.evses:
            e.max_a = a

    # -- availability (ChangeAvailability)
    def available(self, cid):
        return self.avail.get("0", True) and self.avail.get(str(cid), True)

    def set_available(self, cid, on):
        if on:
            self.avail.pop(str(cid), None)
        else:
            self.avail[str(cid)] = False
        store.save(files.AVAILABILITY, self.avail)
        for c in self.connectors:
            c.apply()
        self.statuses.changed()

    # -- reservations: `reservations` is saved here, the rules are profiles/reservation.py's,
    # imported only while a reservation exists
    def reserved(self, cid):
        """Is connector CID kept for a reservation holder (status Reserved)?"""
        return bool(self.reservations) and self.reservation_rules().held(self, cid)

    def admits(self, cid, tag, info):
        """May TAG (INFO: its idTagInfo) start on connector CID, given the reservations?"""
        return not self.reservations or self.reservation_rules().admits(self, cid, tag, info)

    def claim(self, cid, tag, info):
        """End the reservation TAG starts a transaction with on CID: its reservationId, or None."""
        return self.reservation_rules().claim(self, cid, tag, info) if self.reservations else None

    def save_reservations(self):
        store.save(files.RESERVATIONS, self.reservations)
        for c in self.connectors:
            c.evse.changed.set()

    @staticmethod
    def reservation_rules():
        from .profiles import reservation
        return reservation

    # -- cards and remote starts
    async def on_card(self, tag):
        """A card at the reader: stops its own transaction, else authorizes and starts one."""
        log("card", tag)
        for c in self.connectors:
            if c.tx and same(c.tx.tag, tag):
                c.stop("Local", tag)
                return
        info = await self.auth.authorize(tag)
        parent = info.get("parentIdTag")
        # another card of the transaction's group stops it, if that card itself is valid now (a
        # Blocked or Expired card of the group may not end someone's charge)
        if parent and info.get("status") == "Accepted":
            for c in self.connectors:
                if c.tx and same(c.tx.parent, parent):
                    c.stop("Local", tag)
                    return
        if info.get("status") != "Accepted":
            log("auth", "%s refused: %s" % (tag, info.get("status")))
            return
        self.begin(tag, info)

    def begin(self, tag, info, cid=0):
        """Start a transaction for TAG on connector CID (0: the plugged or first free one)."""
        free = [c for c in self.connectors if c.tx is None and c.operative and not c.evse.fault
                and cid in (0, c.id) and self.admits(c.id, tag, info)]
        if not free:
            log("auth", "no free connector for " + tag)
            return False
        plugged = [c for c in free if c.evse.plugged]
        c = (plugged or free)[0]
        if c.evse.plugged:
            c.start(tag, info, self.claim(c.id, tag, info))
        else:
            c.pending = (tag, info, self.clock.now() + self.config["ConnectionTimeOut"])
            c.evse.changed.set()
        return True

    def delivered(self, action, ref, reply, payload):
        """The journal got the CSMS's answer REPLY to transaction message PAYLOAD. Every idTagInfo
        updates the cache, whenever it comes (the transaction may have ended long ago); the
        group (parentIdTag) the CSMS names is kept for the running transaction."""
        info = reply and reply.get("idTagInfo")
        tag = payload.get("idTag")
        if info is None or tag is None:
            return
        self.auth.remember(tag, info)
        if action != "StartTransaction":
            return
        for c in self.connectors:
            if c.tx and c.tx.ref == ref:
                if info.get("parentIdTag"):
                    c.tx.parent = info["parentIdTag"]
                    c.save()
                if info["status"] != "Accepted":
                    log("auth", "CSMS refused %s: %s" % (tag, info["status"]))
                    c.deauthorize()

    # -- the clock and security events
    def security_event(self, kind, tech_info=None):
        """Log security event KIND (seclog.py) and report it to the CSMS."""
        self.seclog.add(kind, tech_info)

    def set_time(self, t):
        """Adopt the CSMS's time T; a jump of more than _TIME_JUMP seconds is a security event."""
        jump = t - self.clock.now()
        self.clock.set(t)
        if abs(jump) > _TIME_JUMP:
            self.security_event("SettingSystemTime", "%+d s" % jump)

    async def shutdown(self):
        """Stop for good (Ctrl-C): contactors open, pilots at +12 V (here: before anything that
        needs heap), then the link closed properly (lifecycle.py). Transactions stay in flash and
        end with PowerLoss at the next boot, as after a cut."""
        stop_timer()
        crashguard.safe(self.board, 1)
        await _lifecycle("shutdown")(self)

    async def reboot(self, reason):
        """Stop every transaction with REASON, deliver what we can, restart (lifecycle.py)."""
        await _lifecycle("reboot")(self, reason)

    # -- the tasks: every long-lived task and every job has its owner here
    def spawn(self, name, coro):
        """Run CORO as task NAME in `tasks`, cancelling a task of that name still running (a new
        request replaces the job under way); the tasks that have ended leave. A task that raises
        goes to `failed`: none dies silently. Returns the task (no wrapper: no heap per task)."""
        tasks = self.tasks
        for k in [k for k, t in tasks.items() if t.done()]:
            del tasks[k]
        old = tasks.get(name)
        if old is not None:
            old.cancel()
        task = tasks[name] = asyncio.create_task(coro)
        return task

    def failed(self, loop, context):
        """The event loop's exception handler (run() sets it): a task nobody awaits raised, ours
        or not (the board's, a library's). Logged with its name, then handed to the crash guard
        (crash.log, contactors open, restart)."""
        e, task = context["exception"], context["future"]
        name = [k for k, t in self.tasks.items() if t is task]
        log("!", "task %s failed: %r" % (name[0] if name else "?", e))
        crashguard.crashed(self.board, e)

    async def run(self):
        """Start every part (lifecycle.py), then run as long as the watchdog task does."""
        await _lifecycle("start")(self)
        await self.spawn("watchdog", crashguard.watch())  # runs as long as the application
