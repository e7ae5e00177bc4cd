"""The link to the CSMS: the WebSocket connection, the registration, heartbeats and pings; and the
status notifications. Two parts of the App (app.py builds them):

`app.session` (Session): keeps one connection up (URL, Basic auth, TLS for the SecurityProfile,
back-off; a raised SecurityProfile that does not connect falls back to the one that did), sends
BootNotification until Accepted, then Heartbeats and WebSocket pings (what a connection needs
once, the attempt and the registration, is ocpp/link.py, loaded for it and unloaded after);
`close(reason)` ends the link on purpose. Read by others: `connected` (a WebSocket is up),
`registration` (None, or the BootNotification status), `online` (an asyncio.Event: connected and
Accepted, what every sender awaits), `boot_wake` (set: a Pending or Rejected registration asks
again now); `boot_notification()`, `heartbeat()`.

`app.statuses` (Statuses): StatusNotification for each status of connector 0 and of each
connector that lasted MinimumStatusDuration, in order, stamped with the time it began.
`changed()` (something a status derives from changed), `report(cid)` (send it even if
unchanged), `conflict(tag)` (the CSMS contradicts the local list: LocalListConflict).
"""
import asyncio
import sys
import time

from micropython import const

from .. import clock, files, unload, use
from ..errors import CallError, Offline
from ..flash import store
from ..log import log

_CHANGES_MAX = const(12)  # status changes waiting to be reported, at most
_IDLE_MS = const(60000)  # the status task's longest sleep
# A status must last this long to be reported even with MinimumStatusDuration 0: the pilot's
# debouncing (3 steps of 10 ms) passes through intermediate states that no one should see.
_SETTLE_MS = const(60)
_KEEP = ("asyncio.funcs", "asyncio.stream")  # what a connection loads and keeps using
_OOM_LIMIT = const(3)  # connections in a row lost or refused by MemoryError: restart (crashguard)


def _link(name):
    """Function NAME of ocpp/link.py (what a connection needs once), the module unloaded at once:
    the function keeps its code while it runs (a coroutine until it ends)."""
    return use("uwallbox.ocpp.link", name)


class Session:
    def __init__(self, app):
        self.app = app
        self.online = asyncio.Event()  # connected and registration Accepted
        self.connected = False
        self.ending = False  # the firmware is stopping or restarting: no new connection
        self.registration = None
        self.boot_wake = asyncio.Event()
        # known to work, unless files.FALLBACK says otherwise
        self.profile = app.config["SecurityProfile"]
        # the attempts (link.py): back-off, failures in a row, MemoryErrors in a row and the
        # last one, a server certificate refused since the last connection
        self.backoff = self.fails = self.oom = 0
        self.last = None
        self.refused = False

    def reconfigured(self, key):
        """SecurityProfile or AuthorizationKey changed: a security event; a raised profile is
        unproven until it connects, so the one that worked is kept (files.FALLBACK)."""
        cfg = self.app.config
        if key == "SecurityProfile" and cfg[key] != self.profile and not store.exists(files.FALLBACK):
            store.save(files.FALLBACK, {"profile": self.profile})
        self.app.security_event("ReconfigurationOfSecurityParameters", key)

    async def _connect(self):
        """One attempt (link.py, loaded for it with what it imports: the handshake, TLS): the
        connection, or None after a failed attempt and its pause."""
        before = list(sys.modules)
        try:
            from .link import connect
        except MemoryError as e:  # no heap for the attempt's code: a failed attempt all the same
            unload(before, _KEEP)
            self.lost(e)
            await asyncio.sleep(1)
            return None
        try:
            r = await connect(self)
        finally:
            connect = None
            unload(before, _KEEP)
        if type(r) is int or type(r) is float:
            await asyncio.sleep(r)
            return None
        return r

    async def run(self):
        """Keep a connection up until the firmware ends: connect, register, serve, reconnect."""
        app = self.app
        app.rpc.prepare()
        while not self.ending:
            if self.oom >= _OOM_LIMIT:  # no heap to stay online: silence would be for good
                from ..system.crashguard import out_of_memory
                out_of_memory(app, "%d connections in a row failed: %r" % (self.oom, self.last))
            conn = await self._connect()
            if conn is None:
                continue
            self.connected = True
            log("net", "connected")
            reg = app.spawn("registration", self._register())
            try:
                await app.rpc.serve(conn)
            except Exception as e:
                log("net", "connection lost (%r)" % e)
                self.lost(e)
            else:
                self.lost(None)
            finally:
                self.connected = False
                self.online.clear()
                reg.cancel()
                try:
                    await conn.close()
                except Exception:
                    pass

    def lost(self, e):
        """The connection attempt or the connection ended with E (None: normally): MemoryErrors
        in a row are counted; True once there are _OOM_LIMIT of them (run() then restarts)."""
        self.oom, self.last = (self.oom + 1, e) if isinstance(e, MemoryError) else (0, None)
        return self.oom >= _OOM_LIMIT

    async def _register(self):
        # (the task holds this coroutine, not link's: link's code leaves once it has ended)
        await _link("register")(self)

    async def close(self, reason):
        """End the CSMS link on purpose: a Close frame (1001, going away) first."""
        self.ending = True  # no new connection after this one
        conn = self.app.rpc.conn
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(1001, reason), 2)
            except Exception:
                pass

    async def boot_notification(self):
        """Send BootNotification; adopt the CSMS's time and, when Accepted, its interval. Its answer."""
        return await _link("boot_notification")(self)

    # -- heartbeats and pings
    async def heartbeat(self):
        """One Heartbeat; adopts the CSMS's time."""
        try:
            r = await self.app.rpc.call("Heartbeat", {})
            self.app.set_time(clock.parse(r["currentTime"]))
        except (Offline, CallError, asyncio.TimeoutError, ValueError):
            pass

    async def housekeeping(self):
        """Heartbeats and WebSocket pings at their configured intervals."""
        last_hb = last_ping = time.ticks_ms()
        while True:
            await asyncio.sleep(1)
            now = time.ticks_ms()
            if not self.online.is_set():
                last_hb = last_ping = now
                continue
            cfg = self.app.config
            hb = cfg["HeartbeatInterval"]
            if hb and time.ticks_diff(now, last_hb) >= hb * 1000:
                last_hb = now
                await self.heartbeat()
            ping = cfg["WebSocketPingInterval"]
            conn = self.app.rpc.conn
            if ping and conn and time.ticks_diff(now, last_ping) >= ping * 1000:
                last_ping = now
                if time.ticks_diff(now, conn.last_rx) > 2 * ping * 1000 + 5000:
                    log("net", "no answer to pings: reconnecting")
                    await conn.close()
                else:
                    try:
                        await conn.ping()
                    except Exception:
                        pass


class Statuses:
    """StatusNotification for each status that lasted MinimumStatusDuration."""

    def __init__(self, app):
        self.app = app
        self._seen = {}  # connector id -> (status, errorCode) last recorded
        self._changes = []  # status changes to report: [cid, status, errorCode, timestamp, ticks]
        self._wake = asyncio.Event()
        self._conflict = False  # a LocalListConflict waits to be reported on connector 0

    def changed(self):
        """A status may have changed: record it (and end the reservations it ends)."""
        app = self.app
        if app.reservations:  # a Faulted or Unavailable connector ends its reservation
            app.reservation_rules().prune(app)
        self._record()

    def report(self, cid=None):
        """StatusNotification for connector CID (None: 0 and every connector), changed or not."""
        self._record(cid)

    def registered(self):
        """The registration was Accepted: what changed while offline is not news, the present
        statuses are."""
        self._changes = []
        self._record(None)

    def conflict(self, tag):
        """The CSMS's answer for TAG contradicts the local list: report it (LocalListConflict)."""
        log("auth", "the CSMS contradicts the local list about " + tag)
        self._conflict = True
        self.changed()

    def _record(self, force=-1):
        """Note each status that changed, with the time it changed; FORCE: a connector id (None:
        all) whose present status is noted even when unchanged."""
        app = self.app
        for c in [None] + app.connectors:
            cid, now = (0, self._of_0()) if c is None else (c.id, (c.status, c.error))
            if now[0] is None or (self._seen.get(cid) == now and force not in (None, cid)):
                continue
            self._seen[cid] = now
            if len(self._changes) >= _CHANGES_MAX:  # offline for long: keep the latest of each
                self._changes = [r for i, r in enumerate(self._changes)
                                 if not any(q[0] == r[0] for q in self._changes[i + 1:])]
            self._changes.append([cid, now[0], now[1], app.clock.iso(), time.ticks_ms()])
        self._wake.set()

    def _of_0(self):
        # Inoperative on connector 0 is Scheduled while a transaction runs: it shows when the
        # last transaction has ended
        app = self.app
        off = not app.avail.get("0", True) and not any(c.tx for c in app.connectors)
        return "Unavailable" if off else "Available", "LocalListConflict" if self._conflict else "NoError"

    def _next_status(self):
        """(the first status change due to be sent or None, ms until the next one is due)."""
        msd = max(self.app.config["MinimumStatusDuration"] * 1000, _SETTLE_MS)
        ch, now, wait = self._changes, time.ticks_ms(), _IDLE_MS
        i = 0
        while i < len(ch):
            r = ch[i]
            nxt = [q for q in ch[i + 1:] if q[0] == r[0]]
            if nxt and time.ticks_diff(nxt[0][4], r[4]) < msd:
                ch.pop(i)  # did not last MinimumStatusDuration: never reported
                continue
            age = time.ticks_diff(now, r[4])
            if nxt or age >= msd:
                return r, 0
            wait = min(wait, msd - age)
            i += 1
        return None, wait

    async def run(self):
        """StatusNotification for every status that lasted MinimumStatusDuration (every one when
        it is 0), in order, stamped with the time it began."""
        app = self.app
        while True:
            await app.session.online.wait()
            r, wait = self._next_status()
            if r is None:
                try:
                    await asyncio.wait_for_ms(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                continue
            try:
                await app.rpc.call("StatusNotification", {
                    "connectorId": r[0], "status": r[1], "errorCode": r[2], "timestamp": r[3]})
            except (Offline, CallError, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            if r in self._changes:
                self._changes.remove(r)
            if r[2] == "LocalListConflict":  # reported: NoError follows
                self._conflict = False
                self._record()
