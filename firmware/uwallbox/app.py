"""The charge point: builds every part from the board and the configuration, runs the tasks."""
import asyncio
import binascii
import time

import machine
import ws

from . import VERSION, actions, clock, store
from .auth import Auth
from .config import Config
from .connector import Connector
from .errors import CallError
from .evse import Evse
from .journal import Journal
from .log import log
from .meter import Metering
from .rpc import Offline, Rpc

_SETTINGS = "settings.json"
_AVAIL = "avail.json"
_RESERVATIONS = "resv.json"
_MAX_MESSAGE = 65536  # largest OCPP message accepted, bytes


class App:
    def __init__(self, board):
        self.board = board
        n = len(board.CONNECTORS)
        self.clock = clock.Clock()
        self.config = Config({"NumberOfConnectors": n, "Phases": board.PHASES,
                              "SupportedFeatureProfiles": actions.supported()})
        self.config.listener = self._config_changed
        self._provision()
        self.rpc = Rpc(self)
        self.online = asyncio.Event()  # connected and registration Accepted
        self.connected = False
        self.registration = None
        self.journal = Journal(self)
        self.auth = Auth(self)
        self.metering = Metering(self)
        self.avail = store.load(_AVAIL, {})
        self.reservations = store.load(_RESERVATIONS, {})
        self.evses = [Evse(board, i) for i in range(n)]
        for e in self.evses:
            e.max_a = min(self.config["MaxCurrent"], board.MAX_CURRENT_A)
        self.connectors = [Connector(self, i + 1, self.evses[i], board.meter(i)) for i in range(n)]
        self._reported = {}
        self._status_wake = asyncio.Event()
        self._tasks = []
        self._recover()

    # -- boot
    def _provision(self):
        """Merge settings.json (written by the simulator or `make deploy`) into the configuration."""
        s = store.load(_SETTINGS)
        if s is None:
            return
        cfg = self.config
        for name, key in (("url", "CentralSystemUrl"), ("id", "ChargePointId"),
                          ("security_profile", "SecurityProfile"),
                          ("authorization_key", "AuthorizationKey")):
            if name in s:
                cfg.set(key, s[name])
        if "ca" in s:
            store.write("ca.pem", s["ca"])
        store.remove(_SETTINGS)

    def _recover(self):
        """A transaction file left by a power cut: end it with reason PowerLoss."""
        j = self.journal
        for c in self.connectors:
            tx = c.tx
            if tx is None:
                continue
            ref = tx["ref"]
            queued = [j.read(n) for n in j.names()]
            stopped = any(m and m["a"] == "StopTransaction" and m["ref"] == ref for m in queued)
            started = j.tid(ref) is not None or any(
                m and m["a"] == "StartTransaction" and m["ref"] == ref for m in queued)
            if started and not stopped:
                j.add("StopTransaction", {"transactionId": 0, "meterStop": tx["meter"],
                                          "timestamp": self.clock.iso(), "reason": "PowerLoss"}, ref)
                log("tx", "connector %d: transaction %d ended by power loss at %d Wh" % (c.id, ref, tx["meter"]))
            store.remove(c.path)
            c.tx = None

    # -- what connectors and profiles ask
    def available(self, cid):
        return self.avail.get("0", True) and self.avail.get(str(cid), True)

    def set_available(self, cid, on):
        if on:
            self.avail.pop(str(cid), None)
        else:
            self.avail[str(cid)] = False
        store.save(_AVAIL, self.avail)
        for c in self.connectors:
            c.apply()
        self.status_changed()

    def reserved(self, cid):
        return str(cid) in self.reservations

    def connector(self, cid):
        """Connector CID (1-based) or None."""
        return self.connectors[cid - 1] if 1 <= cid <= len(self.connectors) else None

    def status_changed(self):
        self._status_wake.set()

    def delivered(self, action, ref, reply):
        """The journal got the CSMS's answer to a transaction message."""
        if action != "StartTransaction" or reply is None:
            return
        info = reply["idTagInfo"]
        for c in self.connectors:
            if c.tx and c.tx["ref"] == ref:
                self.auth.remember(c.tx["tag"], info)
                if info["status"] != "Accepted":
                    log("auth", "CSMS refused %s: %s" % (c.tx["tag"], info["status"]))
                    c.deauthorize()

    def _config_changed(self, key):
        if key == "MeterValueSampleInterval":
            for c in self.connectors:
                c.next_sample = 0
        elif key == "MaxCurrent":
            for e in self.evses:
                e.max_a = min(self.config[key], self.board.MAX_CURRENT_A)

    # -- cards and remote starts
    async def on_card(self, tag):
        """A card at the reader: stops its own transaction, else authorizes and starts one."""
        log("card", tag)
        for c in self.connectors:
            if c.tx and c.tx["tag"] == tag:
                c.stop("Local", tag)
                return
        info = await self.auth.authorize(tag)
        parent = info.get("parentIdTag")
        if parent:
            for c in self.connectors:
                if c.tx and c.tx["parent"] == parent:
                    c.stop("Local", tag)
                    return
        if info.get("status") != "Accepted":
            log("auth", "%s refused: %s" % (tag, info.get("status")))
            return
        self.begin(tag, info)

    def begin(self, tag, info, cid=0):
        """Start a transaction for TAG on connector CID (0: the plugged or first free one)."""
        free = [c for c in self.connectors if c.tx is None and c.operative and (cid in (0, c.id))]
        if not free:
            log("auth", "no free connector for " + tag)
            return False
        plugged = [c for c in free if c.evse.plugged]
        c = (plugged or free)[0]
        if c.evse.plugged:
            c.start(tag, info)
        else:
            c.pending = (tag, info, self.clock.now() + self.config["ConnectionTimeOut"])
            c.evse.changed.set()
        return True

    async def reboot(self, reason):
        """Stop every transaction with REASON, deliver what we can, restart."""
        for c in self.connectors:
            c.stop(reason)
        t = time.ticks_ms()
        while len(self.journal) and self.online.is_set() and time.ticks_diff(time.ticks_ms(), t) < 15000:
            await asyncio.sleep_ms(100)
        log("boot", "restarting (%s)" % reason)
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
        if not self.config["CentralSystemUrl"].startswith("wss:"):
            return None
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            with open("ca.pem", "rb") as f:
                ctx.load_verify_locations(cadata=f.read())
            ctx.verify_mode = ssl.CERT_REQUIRED
        except OSError:
            log("!", "no CA certificate in flash: the server is not verified")
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def _connection(self):
        backoff = 1
        while True:
            url = self._url()
            log("net", "connecting to " + url)
            try:
                conn = await ws.connect(url, ("ocpp1.6",), self._headers(), self._ssl(), _MAX_MESSAGE)
            except Exception as e:
                wait = backoff + (time.ticks_ms() % 1000) / 1000 * backoff
                log("net", "connection failed (%r); retry in %.1f s" % (e, wait))
                await asyncio.sleep(wait)
                backoff = min(backoff * 2, 60)
                continue
            backoff = 1
            self.connected = True
            log("net", "connected")
            reg = asyncio.create_task(self._register())
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

    async def _register(self):
        """BootNotification until Accepted (once per boot), then go online."""
        while self.registration != "Accepted":
            board = self.board
            req = {"chargePointVendor": "uwallbox", "chargePointModel": board.NAME[:20],
                   "chargePointSerialNumber": binascii.hexlify(machine.unique_id()).decode()[:25],
                   "firmwareVersion": VERSION}
            try:
                r = await self.rpc.call("BootNotification", req)
            except Offline:
                return
            except (CallError, asyncio.TimeoutError):
                await asyncio.sleep(30)
                continue
            self.registration = r["status"]
            try:
                self.clock.set(clock.parse(r["currentTime"]))
            except ValueError:
                pass
            if self.registration == "Accepted":
                if r["interval"] > 0:
                    self.config.set("HeartbeatInterval", r["interval"])
                break
            await asyncio.sleep(r["interval"] if r["interval"] > 0 else 30)
        self.rpc.accepted = True
        self._reported = {}
        self.online.set()
        self.status_changed()

    def _status_of_0(self):
        return ("Available" if self.avail.get("0", True) else "Unavailable"), "NoError"

    async def _statuses(self):
        """StatusNotification for each connector whose status or error changed."""
        while True:
            await self._status_wake.wait()
            self._status_wake.clear()
            await self.online.wait()
            await asyncio.sleep_ms(max(300, self.config["MinimumStatusDuration"] * 1000))
            for c in [None] + self.connectors:
                cid, now = (0, self._status_of_0()) if c is None else (c.id, (c.status, c.error))
                if now[0] is None or self._reported.get(cid) == now:
                    continue
                try:
                    await self.rpc.call("StatusNotification", {
                        "connectorId": cid, "status": now[0], "errorCode": now[1],
                        "timestamp": self.clock.iso()})
                    self._reported[cid] = now
                except (Offline, CallError, asyncio.TimeoutError):
                    self._status_wake.set()
                    break

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
                try:
                    r = await self.rpc.call("Heartbeat", {})
                    self.clock.set(clock.parse(r["currentTime"]))
                except (Offline, CallError, asyncio.TimeoutError, ValueError):
                    pass
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

    def start(self, coro):
        self._tasks.append(asyncio.create_task(coro))

    async def run(self):
        log("boot", "uwallbox %s on board %s, %d connector(s), charge point %s" % (
            VERSION, self.board.NAME, len(self.connectors), self.config["ChargePointId"]))
        Evse.start_timer(self.evses)
        for c in self.connectors:
            self.start(c.run())
        self.start(self._connection())
        self.start(self.journal.run())
        self.start(self._statuses())
        self.start(self._housekeeping())
        self.start(self.metering.run())
        attach = getattr(self.board, "attach", None)
        if attach:
            attach(self)
        await asyncio.gather(*self._tasks)
