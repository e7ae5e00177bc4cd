"""What a (re)connection to the CSMS needs once, loaded for it and unloaded after (session.py):
one attempt to connect (URL, Basic auth, TLS for the SecurityProfile; the back-off of failed
attempts; a raised SecurityProfile that does not connect falls back to the one that did), and
the registration (BootNotification until Accepted). The connection itself is session.py's."""
import asyncio
import binascii
import time

import ws
from micropython import const

from .. import VERSION, clock, files, serial_number
from ..errors import CallError, Offline
from ..flash import store
from ..log import log

_MAX_MESSAGE = const(65536)  # largest OCPP message accepted, bytes
_FALLBACK_AFTER = const(3)  # failed connections with a new SecurityProfile before going back


def _url(cfg):
    cp_id = cfg["ChargePointId"]
    safe = "".join(ch if ch.isalpha() or ch.isdigit() or ch in "-_.~" else "%%%02X" % ord(ch)
                   for ch in cp_id)
    return cfg["CentralSystemUrl"].rstrip("/") + "/" + safe


def _headers(cfg):
    if cfg["SecurityProfile"] in (1, 2) and cfg["AuthorizationKey"]:
        cred = "%s:%s" % (cfg["ChargePointId"], cfg["AuthorizationKey"])
        return {"Authorization": "Basic " + binascii.b2a_base64(cred.encode()).decode().strip()}
    return None


def _ssl(cfg):
    """TLS context for wss (certs.py): the server must present a certificate from an installed
    CentralSystemRootCertificate; profile 3 presents the ChargePointCertificate."""
    if not cfg["CentralSystemUrl"].startswith("wss:"):
        return None
    from ..flash.certs import tls_context
    return tls_context(cfg["SecurityProfile"])


def _fall_back(s):
    """A raised SecurityProfile does not connect: go back to the one that did (whitepaper)."""
    fb = store.load(files.FALLBACK)
    store.remove(files.FALLBACK)
    if fb is None:
        return False
    cfg = s.app.config
    log("net", "security profile %d does not connect: back to %d" % (
        cfg["SecurityProfile"], fb["profile"]))
    s.profile = fb["profile"]
    cfg.set("SecurityProfile", fb["profile"])
    return True


async def connect(s):
    """One attempt of Session S: the WebSocket, or the seconds to wait before the next one."""
    app = s.app
    cfg = app.config
    url = _url(cfg)
    log("net", "connecting to " + url)
    try:
        conn = await ws.connect(url, ("ocpp1.6",), _headers(cfg), _ssl(cfg), _MAX_MESSAGE)
    except Exception as e:
        if s.lost(e):  # Session.run restarts before the next attempt
            return 0
        if isinstance(e, ValueError) and url.startswith("wss:") and not s.refused:
            s.refused = True  # mbedtls: the server's certificate was rejected
            app.security_event("InvalidCentralSystemCertificate", str(e).strip())
        s.fails += 1
        if s.fails >= _FALLBACK_AFTER and _fall_back(s):
            s.fails = 0
            return 0
        s.backoff = min(s.backoff * 2, 60) or 1
        wait = s.backoff + (time.ticks_ms() % 1000) / 1000 * s.backoff
        log("net", "connection failed (%r); retry in %.1f s" % (e, wait))
        return wait
    s.backoff = s.fails = 0
    s.refused = False
    return conn


async def boot_notification(s):
    """Send BootNotification; adopt the CSMS's time and, when Accepted, its interval. Its answer."""
    app = s.app
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


async def register(s):
    """BootNotification until Accepted (once per boot), then go online. While Pending or
    Rejected, `boot_wake` (TriggerMessage) cuts the wait short."""
    while s.registration != "Accepted":
        s.boot_wake.clear()
        try:
            r = await boot_notification(s)
        except Offline:
            return
        except (CallError, asyncio.TimeoutError):
            await asyncio.sleep(30)
            continue
        s.registration = r["status"]
        if s.registration == "Accepted":
            break
        try:
            await asyncio.wait_for(s.boot_wake.wait(), r["interval"] if r["interval"] > 0 else 30)
        except asyncio.TimeoutError:
            pass
    app = s.app
    app.rpc.accepted = True
    if store.exists(files.FALLBACK):  # the new SecurityProfile works
        store.remove(files.FALLBACK)
        s.profile = app.config["SecurityProfile"]
    s.online.set()
    app.statuses.registered()
