"""The link to the CSMS: the WebSocket connection, the registration, heartbeats and pings; and the
status notifications. Two parts of the App (app.py builds them):

`app.session` (Session): keeps one connection up (URL, Basic auth, TLS for the SecurityProfile,
back-off; a raised SecurityProfile that does not connect falls back to the one that did), sends
BootNotification until Accepted, then Heartbeats and WebSocket pings; `close(reason)` ends the
link on purpose. Read by others: `connected` (a WebSocket is up), `registration` (None, or the
BootNotification status), `online` (an asyncio.Event: connected and Accepted, what every sender
awaits), `boot_wake` (set: a Pending or Rejected registration asks again now);
`boot_notification()`, `heartbeat()`.

`app.statuses` (Statuses): StatusNotification for each status of connector 0 and of each
connector that lasted MinimumStatusDuration, in order, stamped with the time it began.
`changed()` (something a status derives from changed), `report(cid)` (send it even if
unchanged), `conflict(tag)` (the CSMS contradicts the local list: LocalListConflict).
"""
import asyncio
import binascii
import time

import ws
from micropython import const

from .. import VERSION, clock, files, serial_number
from ..errors import CallError, Offline
from ..flash import store
from ..log import log

_MAX_MESSAGE = 65536  # largest OCPP message accepted, bytes
_FALLBACK_AFTER = 3  # failed connections with a new SecurityProfile before going back
_OOM_LIMIT = const(3)  # connections in a row lost or refused by MemoryError: restart (crashguard)
_CHANGES_MAX = const(12)  # status changes waiting to be reported, at most
_IDLE_MS = const(60000)  # the status task's longest sleep
# A status must last this long to be reported even with MinimumStatusDuration 0: the pilot's
# debouncing (3 steps of 10 ms) passes through intermediate states that no one should see.
_SETTLE_MS = const(60)


class Session:
    def __init__(self, app):
        self.app = app
        self.online = asyncio.Event()  # connected and registration Accepted
        self.connected = False
        self.ending = False  # the firmware is stopping or restarting: no new connection
        self.registration = None
        self.boot_wake = asyncio.Event()
        cfg = app.config
        self._profile = cfg["SecurityProfile"]  # known to work, unless files.FALLBACK says otherwise
        cfg.checks["SecurityProfile"] = self._profile_ok

    # -- the security profile
    @staticmethod
    def _profile_ok(profile):
        """May SecurityProfile become PROFILE? certs.py knows what each profile needs."""
        from ..flash.certs import profile_ok
        return profile_ok(profile)

    def reconfigured(self, key):
        """SecurityProfile or AuthorizationKey changed: a security event; a raised profile is
        unproven until it connects, so the one that worked is kept (files.FALLBACK)."""
        cfg = self.app.config
        if key == "SecurityProfile" and cfg[key] != self._profile and not store.exists(files.FALLBACK):
            store.save(files.FALLBACK, {"profile": self._profile})
        self.app.security_event("ReconfigurationOfSecurityParameters", key)

    def _fall_back(self):
        """A raised SecurityProfile does not connect: go back to the one that did (whitepaper)."""
        fb = store.load(files.FALLBACK)
        store.remove(files.FALLBACK)
        if fb is None:
            return False
        cfg = self.app.config
        log("net", "security profile %d does not connect: back to %d" % (
            cfg["SecurityProfile"], fb["profile"]))
        self._profile = fb["profile"]
        cfg.set("SecurityProfile", fb["profile"])
        return True

    # -- the connection
    def _url(self):
        cfg = self.app.config
        cp_id = cfg["ChargePointId"]
        safe = "".join(ch if ch.isalpha() or ch.isdigit() or ch in "-_.~" else "%%%02X" % ord(ch)
                       for ch in cp_id)
        return cfg["CentralSystemUrl"].rstrip("/") + "/" + safe

    def _headers(self):
        cfg = self.app.config
        if cfg["SecurityProfile"] in (1, 2) and cfg["AuthorizationKey"]:
            cred = "%s:%s" % (cfg["ChargePointId"], cfg["AuthorizationKey"])
            return {"Authorization": "Basic " + binascii.b2a_base64(cred.encode()).decode().strip()}
        return None

    def _ssl(self):
        """TLS context for wss (certs.py): the server must present a certificate from an installed
        CentralSystemRootCertificate; profile 3 presents the ChargePointCertificate."""
        cfg = self.app.config
        if not cfg["CentralSystemUrl"].startswith("wss:"):
            return None
        from ..flash.certs import tls_context
        return tls_context(cfg["SecurityProfile"])

    async def run(self):
        """Keep a connection up until the firmware ends: connect, register, serve, reconnect."""
        app = self.app
        backoff = fails = oom = 0
        last = None  # the MemoryError that ended the last connection
        refused = False  # a server certificate was refused since the last connection
        while not self.ending:
            if oom >= _OOM_LIMIT:  # no heap to stay online: silence would be for good
                from ..system.crashguard import out_of_memory
                out_of_memory(app, "%d connections in a row failed: %r" % (oom, last))
            url = self._url()
            log("net", "connecting to " + url)
            try:
                conn = await ws.connect(url, ("ocpp1.6",), self._headers(), self._ssl(), _MAX_MESSAGE)
            except Exception as e:
                oom, last = (oom + 1, e) if isinstance(e, MemoryError) else (0, None)
                if oom >= _OOM_LIMIT:
                    continue
                if isinstance(e, ValueError) and url.startswith("wss:") and not refused:
                    refused = True  # mbedtls: the server's certificate was rejected
                    app.security_event("InvalidCentralSystemCertificate", str(e).strip())
                fails += 1
                if fails >= _FALLBACK_AFTER and self._fall_back():
                    fails = 0
                    continue
                backoff = min(backoff * 2, 60) or 1
                wait = backoff + (time.ticks_ms() % 1000) / 1000 * backoff
                log("net", "connection failed (%r); retry in %.1f s" % (e, wait))
                await asyncio.sleep(wait)
                continue
            backoff = fails = 0
            refused = False
            self.connected = True
            log("net", "connected")
            reg = app.spawn("registration", self._register())
            try:
                await app.rpc.serve(conn)
            except Exception as e:
                log("net", "connection lost (%r)" % e)
                oom, last = (oom + 1, e) if isinstance(e, MemoryError) else (0, None)
            else:
                oom = 0
            finally:
                self.connected = False
                self.online.clear()
                reg.cancel()
                try:
                    await conn.close()
                except Exception:
                    pass

    async def close(self, reason):
        """End the CSMS link on purpose: a Close frame (1001, going away) first."""
        self.ending = True  # no new connection after this one
        conn = self.app.rpc.conn
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(1001, reason), 2)
            except Exception:
                pass

    # -- the registration
    async def boot_notification(self):
        """Send BootNotification; adopt the CSMS's time and, when Accepted, its interval. Its answer."""
        app = self.app
        req = {"chargePointVendor": "uwallbox", "chargePointModel": app.board.NAME[:20],
               "chargePointSerialNumber": serial_number(),
               "firmwareVersion": VERSION}
        r = await app.rpc.call("BootNotification", req)
        try:
            app.set_time(clock.parse(r["currentTime"]))
        except ValueError:
            pass
        if r["status"] == "Accepted" and r["interval"] > 0:
            app.config.set("HeartbeatInterval", r["interval"])
        return r

    async def _register(self):
        """BootNotification until Accepted (once per boot), then go online. While Pending or
        Rejected, `boot_wake` (TriggerMessage) cuts the wait short."""
        while self.registration != "Accepted":
            self.boot_wake.clear()
            try:
                r = await self.boot_notification()
            except Offline:
                return
            except (CallError, asyncio.TimeoutError):
                await asyncio.sleep(30)
                continue
            self.registration = r["status"]
            if self.registration == "Accepted":
                break
            try:
                await asyncio.wait_for(self.boot_wake.wait(), r["interval"] if r["interval"] > 0 else 30)
            except asyncio.TimeoutError:
                pass
        self.app.rpc.accepted = True
        if store.exists(files.FALLBACK):  # the new SecurityProfile works
            store.remove(files.FALLBACK)
            self._profile = self.app.config["SecurityProfile"]
        self.online.set()
        self.app.statuses.registered()

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
