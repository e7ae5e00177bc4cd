"""Station mode: the page (gzip, streamed from flash), the status JSON it polls, control, settings,
logs; every /api/ request but login needs a session, every POST its CSRF token (auth.py)."""
import gc
import json
import time

import httpd
from httpd import HttpError

from .. import VERSION, files
from ..log import log
from .auth import Sessions

_JSON = "application/json"


def _mask(tag):
    """An idTag as the page shows it: its last 4 characters."""
    return None if tag is None else "*" * max(0, len(tag) - 4) + tag[-4:]


class Web:
    def __init__(self, app):
        self.app = app
        self.sessions = Sessions()
        self.http = httpd.Server(self.handle, ("cookie", "x-csrf"), max_body=1024)
        self.buf = None  # the page's send buffer, allocated on the first page request
        self.t0 = time.time()

    async def serve(self, port, host):
        log("web", "page on http://%s:%d/" % (host, port))
        await self.http.serve(port, host)

    async def handle(self, req):
        path, m = req.path, req.method
        if path == "/":
            if m != "GET":
                raise HttpError(405)
            if self.buf is None:
                self.buf = bytearray(512)
            return await req.file(files.WEB_PAGE, "text/html; charset=utf-8",
                                  "Content-Encoding: gzip\r\nX-Frame-Options: DENY\r\n", self.buf)
        if not path.startswith("/api/"):
            raise HttpError(404, "not found")
        name = path[5:]
        if name == "mode" and m == "GET":
            return 200, _JSON, json.dumps({"setup": False, "logged_in": self.sessions.check(
                req.headers.get("cookie")) is not None})
        if m == "POST":
            d = _body(req)
            if name == "login":
                return self.login(req, d)
            token = self.sessions.check(req.headers.get("cookie"), req.headers.get("x-csrf", ""))
            if token is None:
                raise HttpError(403, "not logged in or bad CSRF token")
            h = _POSTS.get(name)
            if h is None:
                raise HttpError(404, "not found")
            return 200, _JSON, json.dumps(await h(self, d, token) or {"ok": True})
        if m != "GET":
            raise HttpError(405)
        if self.sessions.check(req.headers.get("cookie")) is None:
            raise HttpError(401, "log in first")
        if name == "logs":
            return await self.logs(req)
        h = _GETS.get(name)
        if h is None:
            raise HttpError(404, "not found")
        return 200, _JSON, json.dumps(h(self))

    def login(self, req, d):
        r = self.sessions.login(d.get("password"))
        if r == "locked":
            raise HttpError(429, "too many wrong passwords: wait a minute")
        if r is None:
            log("web", "wrong admin password")
            raise HttpError(401, "wrong password")
        token, csrf = r
        req.extra = "Set-Cookie: sid=%s; Path=/; HttpOnly; SameSite=Strict\r\n" % token
        return 200, _JSON, json.dumps({"csrf": csrf})

    # -- GET
    def status(self):
        app = self.app
        now = app.clock.now()
        conns = []
        for c in app.connectors:
            e, tx = c.evse, c.tx
            conns.append({
                "id": c.id, "cp": e.cp, "status": c.status, "offered_a": e.offered_a,
                "relay": e.relay, "locked": e.locked, "fault": e.fault, "power_w": c.power_w,
                "energy_wh": (c.meter_wh - tx.start_wh) if tx else None,
                "duration_s": (now - tx.started) if tx else None,
                "id_tag": _mask(tx.tag) if tx else None, "transaction_id": c.transaction_id,
                "max_a": e.max_a, "limit_a": e.limit_a})
        s = app.session
        last = app.rpc.last_ms
        gc.collect()
        return {"connectors": conns, "ocpp": {
            "connected": s.connected, "registration": s.registration,
            "last_message_s": None if last is None else time.ticks_diff(time.ticks_ms(), last) // 1000},
            "wifi_dbm": _rssi(app.board), "heap_free": gc.mem_free(), "uptime_s": int(time.time() - self.t0),
            "version": VERSION, "board": app.board.NAME, "id": app.config["ChargePointId"],
            "local_limit_a": app.config["LocalCurrentLimit"], "free_charging": app.config["FreeCharging"],
            "local_tag": bool(app.config["LocalIdTag"])}

    def get_settings(self):
        from . import settings  # only while the settings are open (5 KB of bytecode)
        return settings.shown(self.app.config)

    async def logs(self, req):
        """{"log": [...], "security": [...]}, written a line at a time: no block of the whole."""
        from .. import log as logmod
        req.head(200, _JSON)  # no Content-Length: the answer ends with the connection
        w = req.writer
        for key, lines in (("log", logmod.tail or []), ("security", _tail(files.SECURITY_LOGS[1]))):
            w.write('{"log": [' if key == "log" else '], "security": [')
            for i, line in enumerate(lines):
                if i:
                    w.write(", ")
                w.write(json.dumps(line))
                await w.drain()
        w.write("]}")
        await w.drain()

    # -- POST
    def _conn(self, d):
        cid = d.get("connector", 1)
        c = self.app.connector(cid) if type(cid) is int else None
        if c is None:
            raise HttpError(400, "connector: a connector number expected")
        return c

    async def start_tx(self, d, _):
        app = self.app
        c = self._conn(d)
        if c.tx:
            raise HttpError(400, "a transaction is running on connector %d" % c.id)
        tag = app.config["LocalIdTag"]
        if app.config["FreeCharging"]:
            ok = app.begin(tag or "LOCAL", {"status": "Accepted"}, c.id)
        elif tag:
            info = await app.auth.authorize(tag)
            if info.get("status") != "Accepted":
                raise HttpError(400, "the local idTag was refused: %s" % info.get("status"))
            ok = app.begin(tag, info, c.id)
        else:
            raise HttpError(400, "set a local idTag or allow free charging in the settings")
        if not ok:
            raise HttpError(400, "connector %d cannot start now" % c.id)
        log("web", "start on connector %d" % c.id)

    async def stop_tx(self, d, _):
        c = self._conn(d)
        if not c.tx:
            raise HttpError(400, "no transaction on connector %d" % c.id)
        log("web", "stop on connector %d" % c.id)
        c.stop("Local")

    async def unlock(self, d, _):
        c = self._conn(d)
        c.stop("UnlockCommand")
        return {"ok": c.evse.unlock()}

    async def limit(self, d, _):
        a = d.get("amps")
        if type(a) is not int or not (a == 0 or 6 <= a <= 80):
            raise HttpError(400, "amps: 0 (no limit) or 6-80 A")
        self.app.config.set("LocalCurrentLimit", a)
        log("web", "local current limit %s" % (("%d A" % a) if a else "off"))

    async def save_settings(self, d, _):
        from . import settings
        try:
            reboot = settings.apply(self.app.config, d)
        except ValueError as e:
            raise HttpError(400, str(e))
        return {"ok": True, "reboot_required": reboot}

    async def reboot(self, d, _):
        self.app.spawn("reboot", self.app.reboot("SoftReset"))

    async def logout(self, d, token):
        self.sessions.logout(token)


_GETS = {"status": Web.status, "settings": Web.get_settings}
_POSTS = {"start": Web.start_tx, "stop": Web.stop_tx, "unlock": Web.unlock, "limit": Web.limit,
          "settings": Web.save_settings, "reboot": Web.reboot, "logout": Web.logout}


def _body(req):
    try:
        d = json.loads(req.body) if req.body else {}
    except ValueError:
        raise HttpError(400, "invalid JSON")
    if not isinstance(d, dict):
        raise HttpError(400, "JSON object expected")
    return d


def _rssi(board):
    if not getattr(board, "WIFI", False):
        return None
    try:
        import network
        return network.WLAN(network.STA_IF).status("rssi")
    except Exception:
        return None


def _tail(path, n=1000):
    """The last lines of text file PATH, up to N bytes."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            text = f.read().decode()
    except (OSError, UnicodeError):
        return []
    lines = text.split("\n")
    if size > n:
        lines = lines[1:]
    return [line for line in lines if line]
