"""The charge point: builds every part from the board and the configuration, runs the tasks."""
import asyncio
import binascii
import time

import machine
import ws
from micropython import const

from . import VERSION, clock, files
from .errors import CallError, Offline
from .flash import store
from .hw.evse import Evse
from .log import log
from .ocpp import routes
from .ocpp.rpc import Rpc
from .station.auth import Auth, same
from .station.config import Config
from .station.connector import Connector
from .station.journal import Journal
from .station.meter import Metering
from .station.seclog import SecurityLog
from .system import crashguard, provision

_MAX_MESSAGE = 65536  # largest OCPP message accepted, bytes
_TIME_JUMP = 60  # seconds: a larger correction of the clock is a security event
_FALLBACK_AFTER = 3  # failed connections with a new SecurityProfile before going back
_CHANGES_MAX = const(12)  # status changes waiting to be reported, at most
_IDLE_MS = const(60000)  # the status task's longest sleep
# A status must last this long to be reported even with MinimumStatusDuration 0: the pilot's
# debouncing (3 steps of 10 ms) passes through intermediate states that no one should see.
_SETTLE_MS = const(60)


class App:
    def __init__(self, board):
        self.board = board
        n = len(board.CONNECTORS)
        self.clock = clock.Clock()
        self.seclog = SecurityLog(self)
        self.smart = None  # smartcharging.Scheduler, imported only once profiles exist
        self.config = Config({"NumberOfConnectors": n, "Phases": board.PHASES,
                              "SupportedFeatureProfiles": routes.supported()})
        provision.apply(self.config)
        self.config.listener = self._config_changed  # provisioning is no reconfiguration
        self._profile = self.config["SecurityProfile"]  # known to work, unless files.FALLBACK says otherwise
        self.config.checks["SecurityProfile"] = self._profile_ok
        self.rpc = Rpc(self)
        self.online = asyncio.Event()  # connected and registration Accepted
        self.connected = False
        self.ending = False  # the firmware is stopping or restarting: no new connection
        self.registration = None
        self.journal = Journal(self)
        self.auth = Auth(self)
        self.metering = Metering(self)
        self.avail = store.load(files.AVAILABILITY, {})
        self.reservations = store.load(files.RESERVATIONS, {})
        self.firmware_status = self.diagnostics_status = "Idle"  # set by firmware.py
        self.evses = [Evse(board, i) for i in range(n)]
        for e in self.evses:
            e.max_a = min(self.config["MaxCurrent"], board.MAX_CURRENT_A)
        self.connectors = [Connector(self, i + 1, self.evses[i], board.meter(i)) for i in range(n)]
        self._seen = {}  # connector id -> (status, errorCode) last recorded
        self._changes = []  # status changes to report: [cid, status, errorCode, timestamp, ticks]
        self._status_wake = asyncio.Event()
        self.conflict = False  # a LocalListConflict waits to be reported on connector 0
        self.boot_wake = asyncio.Event()
        self.tasks = {}  # name -> the task of that name (spawn)
        for c in self.connectors:
            c.recover()  # a transaction a power cut interrupted

    # -- boot
    # -- what connectors and profiles ask
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
        self.status_changed()

    # -- reservations: the rules are in reservation.py, imported only while one exists
    def reserved(self, cid):
        """Is connector CID kept for a reservation holder (status Reserved)?"""
        return bool(self.reservations) and self._reservation().held(self, cid)

    def admits(self, cid, tag, info):
        """May TAG (INFO: its idTagInfo) start on connector CID, given the reservations?"""
        return not self.reservations or self._reservation().admits(self, cid, tag, info)

    def claim(self, cid, tag, info):
        """End the reservation TAG starts a transaction with on CID: its reservationId, or None."""
        return self._reservation().claim(self, cid, tag, info) if self.reservations else None

    def save_reservations(self):
        store.save(files.RESERVATIONS, self.reservations)
        for c in self.connectors:
            c.evse.changed.set()

    @staticmethod
    def _reservation():
        from .profiles import reservation
        return reservation

    def connector(self, cid):
        """Connector CID (1-based) or None."""
        return self.connectors[cid - 1] if 1 <= cid <= len(self.connectors) else None

    def report_status(self, cid=None):
        """StatusNotification for connector CID (None: 0 and every connector), changed or not."""
        self._record(cid)

    def status_changed(self):
        if self.reservations:  # a Faulted or Unavailable connector ends its reservation
            self._reservation().prune(self)
        self._record()

    def _record(self, force=-1):
        """Note each status that changed, with the time it changed; FORCE: a connector id (None:
        all) whose present status is noted even when unchanged."""
        for c in [None] + self.connectors:
            cid, now = (0, self._status_of_0()) if c is None else (c.id, (c.status, c.error))
            if now[0] is None or (self._seen.get(cid) == now and force not in (None, cid)):
                continue
            self._seen[cid] = now
            if len(self._changes) >= _CHANGES_MAX:  # offline for long: keep the latest of each
                self._changes = [r for i, r in enumerate(self._changes)
                                 if not any(q[0] == r[0] for q in self._changes[i + 1:])]
            self._changes.append([cid, now[0], now[1], self.clock.iso(), time.ticks_ms()])
        self._status_wake.set()

    def list_conflict(self, tag):
        """The CSMS's answer for TAG contradicts the local list: report it (StatusNotification)."""
        log("auth", "the CSMS contradicts the local list about " + tag)
        self.conflict = True
        self.status_changed()

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
            if c.tx and c.tx["ref"] == ref:
                if info.get("parentIdTag"):
                    c.tx["parent"] = info["parentIdTag"]
                    c.save()
                if info["status"] != "Accepted":
                    log("auth", "CSMS refused %s: %s" % (tag, info["status"]))
                    c.deauthorize()

    def _config_changed(self, key):
        if key == "MeterValueSampleInterval":
            for c in self.connectors:
                c.next_sample = 0
        elif key == "MaxCurrent":
            for e in self.evses:
                e.max_a = min(self.config[key], self.board.MAX_CURRENT_A)
        elif key in ("SecurityProfile", "AuthorizationKey"):
            if key == "SecurityProfile" and self.config[key] != self._profile and not store.exists(files.FALLBACK):
                store.save(files.FALLBACK, {"profile": self._profile})
            self.security_event("ReconfigurationOfSecurityParameters", key)

    def _fall_back(self):
        """A raised SecurityProfile does not connect: go back to the one that did (whitepaper)."""
        fb = store.load(files.FALLBACK)
        store.remove(files.FALLBACK)
        if fb is None:
            return False
        log("net", "security profile %d does not connect: back to %d" % (
            self.config["SecurityProfile"], fb["profile"]))
        self._profile = fb["profile"]
        self.config.set("SecurityProfile", fb["profile"])
        return True

    @staticmethod
    def _profile_ok(profile):
        """May SecurityProfile become PROFILE? certs.py knows what each profile needs."""
        from .flash.certs import profile_ok
        return profile_ok(profile)

    def security_event(self, kind, tech_info=None):
        """Log security event KIND (seclog.py) and report it to the CSMS."""
        self.seclog.add(kind, tech_info)

    def set_time(self, t):
        """Adopt the CSMS's time T; a jump of more than _TIME_JUMP seconds is a security event."""
        jump = t - self.clock.now()
        self.clock.set(t)
        if abs(jump) > _TIME_JUMP:
            self.security_event("SettingSystemTime", "%+d s" % jump)

    # -- cards and remote starts
    async def on_card(self, tag):
        """A card at the reader: stops its own transaction, else authorizes and starts one."""
        log("card", tag)
        for c in self.connectors:
            if c.tx and same(c.tx["tag"], tag):
                c.stop("Local", tag)
                return
        info = await self.auth.authorize(tag)
        parent = info.get("parentIdTag")
        # another card of the transaction's group stops it, if that card itself is valid now (a
        # Blocked or Expired card of the group may not end someone's charge)
        if parent and info.get("status") == "Accepted":
            for c in self.connectors:
                if c.tx and same(c.tx["parent"], parent):
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

    async def close_link(self, reason):
        """End the CSMS link on purpose: a Close frame (1001, going away) first."""
        self.ending = True  # no new connection after this one
        conn = self.rpc.conn
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(1001, reason), 2)
            except Exception:
                pass

    async def shutdown(self):
        """Stop for good (Ctrl-C): contactors open, pilots at +12 V, the link closed properly.
        Transactions stay in flash and end with PowerLoss at the next boot, as after a cut."""
        Evse.stop_timer()
        crashguard.safe(self.board, 1)
        await self.close_link("shutting down")
        log("boot", "stopped")

    async def reboot(self, reason):
        """Stop every transaction with REASON, deliver what we can, restart."""
        self.security_event("ResetOrReboot", reason)
        for c in self.connectors:
            c.stop(reason)
        t = time.ticks_ms()
        while len(self.journal) and self.online.is_set() and time.ticks_diff(time.ticks_ms(), t) < 15000:
            await asyncio.sleep_ms(100)
        log("boot", "restarting (%s)" % reason)
        await self.close_link("restarting")  # the CSMS learns that the link ends on purpose
        Evse.stop_timer()
        machine.reset()

    # -- the connection
    def _url(self):
        cfg = self.config
        cp_id = cfg["ChargePointId"]
        safe = "".join(ch if ch.isalpha() or ch.isdigit() or ch in "-_.~" else "%%%02X" % ord(ch)
                       for ch in cp_id)
        return cfg["CentralSystemUrl"].rstrip("/") + "/" + safe

    def _headers(self):
        cfg = self.config
        if cfg["SecurityProfile"] in (1, 2) and cfg["AuthorizationKey"]:
            cred = "%s:%s" % (cfg["ChargePointId"], cfg["AuthorizationKey"])
            return {"Authorization": "Basic " + binascii.b2a_base64(cred.encode()).decode().strip()}
        return None

    def _ssl(self):
        """TLS context for wss (certs.py): the server must present a certificate from an installed
        CentralSystemRootCertificate; profile 3 presents the ChargePointCertificate."""
        if not self.config["CentralSystemUrl"].startswith("wss:"):
            return None
        from .flash.certs import tls_context
        return tls_context(self.config["SecurityProfile"])

    async def _connection(self):
        backoff = fails = 0
        refused = False  # a server certificate was refused since the last connection
        while not self.ending:
            url = self._url()
            log("net", "connecting to " + url)
            try:
                conn = await ws.connect(url, ("ocpp1.6",), self._headers(), self._ssl(), _MAX_MESSAGE)
            except Exception as e:
                if isinstance(e, ValueError) and url.startswith("wss:") and not refused:
                    refused = True  # mbedtls: the server's certificate was rejected
                    self.security_event("InvalidCentralSystemCertificate", str(e).strip())
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
            reg = self.spawn("registration", self._register())
            try:
                await self.rpc.serve(conn)
            except Exception as e:
                log("net", "connection lost (%r)" % e)
            finally:
                self.connected = False
                self.online.clear()
                reg.cancel()
                try:
                    await conn.close()
                except Exception:
                    pass

    async def boot_notification(self):
        """Send BootNotification; adopt the CSMS's time and, when Accepted, its interval. Its answer."""
        board = self.board
        req = {"chargePointVendor": "uwallbox", "chargePointModel": board.NAME[:20],
               "chargePointSerialNumber": binascii.hexlify(machine.unique_id()).decode()[:25],
               "firmwareVersion": VERSION}
        r = await self.rpc.call("BootNotification", req)
        try:
            self.set_time(clock.parse(r["currentTime"]))
        except ValueError:
            pass
        if r["status"] == "Accepted" and r["interval"] > 0:
            self.config.set("HeartbeatInterval", r["interval"])
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
        self.rpc.accepted = True
        if store.exists(files.FALLBACK):  # the new SecurityProfile works
            store.remove(files.FALLBACK)
            self._profile = self.config["SecurityProfile"]
        self._changes = []  # what changed while offline is not news: the present statuses are
        self.online.set()
        self.report_status()

    def _status_of_0(self):
        # Inoperative on connector 0 is Scheduled while a transaction runs: it shows when the
        # last transaction has ended
        off = not self.avail.get("0", True) and not any(c.tx for c in self.connectors)
        return "Unavailable" if off else "Available", "LocalListConflict" if self.conflict else "NoError"

    def _next_status(self):
        """(the first status change due to be sent or None, ms until the next one is due)."""
        msd = max(self.config["MinimumStatusDuration"] * 1000, _SETTLE_MS)
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

    async def _statuses(self):
        """StatusNotification for every status that lasted MinimumStatusDuration (every one when
        it is 0), in order, stamped with the time it began."""
        while True:
            await self.online.wait()
            r, wait = self._next_status()
            if r is None:
                try:
                    await asyncio.wait_for_ms(self._status_wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                self._status_wake.clear()
                continue
            try:
                await self.rpc.call("StatusNotification", {
                    "connectorId": r[0], "status": r[1], "errorCode": r[2], "timestamp": r[3]})
            except (Offline, CallError, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            if r in self._changes:
                self._changes.remove(r)
            if r[2] == "LocalListConflict":  # reported: NoError follows
                self.conflict = False
                self._record()

    async def heartbeat(self):
        """One Heartbeat; adopts the CSMS's time."""
        try:
            r = await self.rpc.call("Heartbeat", {})
            self.set_time(clock.parse(r["currentTime"]))
        except (Offline, CallError, asyncio.TimeoutError, ValueError):
            pass

    async def _housekeeping(self):
        """Heartbeats and WebSocket pings at their configured intervals."""
        last_hb = last_ping = time.ticks_ms()
        while True:
            await asyncio.sleep(1)
            now = time.ticks_ms()
            if not self.online.is_set():
                last_hb = last_ping = now
                continue
            cfg = self.config
            hb = cfg["HeartbeatInterval"]
            if hb and time.ticks_diff(now, last_hb) >= hb * 1000:
                last_hb = now
                await self.heartbeat()
            ping = cfg["WebSocketPingInterval"]
            conn = self.rpc.conn
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

    # -- the tasks: every long-lived task and every job has its owner here
    def spawn(self, name, coro):
        """Run CORO as task NAME, cancelling a task of that name still running (a new request
        replaces the job under way). A task that raises is logged and handed to the crash guard
        (crash.log, contactors open, restart): none dies silently. Returns the task."""
        old = self.tasks.get(name)
        if old is not None:
            old.cancel()
        task = self.tasks[name] = asyncio.create_task(self._owned(name, coro))
        return task

    async def _owned(self, name, coro):
        try:
            await coro
        except Exception as e:  # not CancelledError: a BaseException in MicroPython
            log("!", "task %s failed: %r" % (name, e))
            crashguard.crashed(self.board, e)
        finally:
            if self.tasks.get(name) is asyncio.current_task():
                del self.tasks[name]

    def _unowned(self, loop, context):
        """The event loop's exception handler: a task spawn() does not own (the board's, a
        library's) failed. The same end as an owned one."""
        e = context.get("exception")
        log("!", "task failed: %r" % (e,))
        crashguard.crashed(self.board, e)

    async def run(self):
        log("boot", "uwallbox %s on board %s, %d connector(s), charge point %s" % (
            VERSION, self.board.NAME, len(self.connectors), self.config["ChargePointId"]))
        asyncio.get_event_loop().set_exception_handler(self._unowned)
        Evse.start_timer(self.evses)
        for c in self.connectors:
            self.spawn("connector%d" % c.id, c.run())
        self.spawn("connection", self._connection())
        self.spawn("journal", self.journal.run())
        self.spawn("statuses", self._statuses())
        self.spawn("housekeeping", self._housekeeping())
        self.spawn("metering", self.metering.run())
        self.spawn("security-events", self.seclog.run())
        self.security_event("StartupOfTheDevice")
        if store.exists(files.PROFILES):
            from .profiles.smartcharging import scheduler
            scheduler(self)
        attach = getattr(self.board, "attach", None)
        if attach:
            attach(self)
        if store.exists(files.FW_UPDATE):
            from .profiles.firmware import resume
            self.spawn("firmware-update", resume(self))
        await self.spawn("watchdog", crashguard.watch())  # runs as long as the application
