"""Classroom mode (host side, CPython): the charger panels of the simulator and the link cutter.

    panels = ChargerPanels(chargers, csms=csms).start()   # http://127.0.0.1:PORT/  (panels.url)
    panels.url_of("CP001")                                 # http://127.0.0.1:PORT/cp/CP001/

One HTTP server serves a panel per simulated charger (sim/panel/charger.html, plain HTML/SVG/JS,
no build step) and its JSON API:

    GET  /cp/ID/api/state?since=N  {"id", "state": GET /state of the firmware (null while it is
                                    down), "link": {"up", "outage_s"}, "power": {"cuts"},
                                    "messages": [the bundled CSMS's frames of ID from index N on],
                                    "next": N', "cards": [[name, idTag], ...], "csms_panel": URL}
    POST /cp/ID/api/ev | rfid | fault | clock   forwarded to the firmware's control API
    POST /cp/ID/api/power-cut                   kill the firmware, restart it on the same flash
    POST /cp/ID/api/outage {"seconds": N}       drop the CSMS link for N seconds

The firmware reaches its CSMS through a Link (a TCP relay owned by the launcher): an outage
closes the relayed connections and refuses new ones until it ends, whatever the CSMS.
"""
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from csms_panel import frames  # tools/csms_panel.py (tools/ is on the path of sim/launch.py)

PANEL = Path(__file__).resolve().parent / "panel"
# the cards of a classroom: (name, idTag); the bundled CSMS answers Blocked for the last one
CARDS = (("Alice", "04A1B2C3"), ("Bob", "04B0B0B0"), ("Teacher", "7EAC4E12"), ("Stolen", "BAD00001"))
BLOCKED = ("BAD00001",)
_MAX_OUTAGE_S = 3600


class Link:
    """A TCP relay from 127.0.0.1:port to (host, port) that can be cut for a while."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.until = 0.0
        self.pairs = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, name="link", daemon=True).start()

    @property
    def up(self):
        return time.monotonic() >= self.until

    def outage_left(self):
        return max(0.0, self.until - time.monotonic())

    def cut(self, seconds):
        """Drop the connections now and refuse new ones for SECONDS."""
        with self.lock:
            self.until = time.monotonic() + seconds
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            _close(a)
            _close(b)

    def close(self):
        self.closed = True
        _close(self.sock)
        self.cut(0)

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if not self.up:
                _close(client)   # the network is down: the connection attempt fails
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self.lock:
                self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)
            with self.lock:
                self.pairs = [p for p in self.pairs if src not in p]


def _close(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class Charger:
    """What a panel drives: the firmware process (sim/launch.py's Firmware), its control API
    (simapi.SimApi) and its Link."""

    def __init__(self, id, fw, api, link=None):
        self.id, self.fw, self.api, self.link = id, fw, api, link


class ChargerPanels:
    def __init__(self, chargers, csms=None, csms_panel=None, host="127.0.0.1", port=0):
        self.chargers = {c.id: c for c in chargers}
        self.csms = csms
        self.csms_panel = csms_panel
        panels = self

        class Handler(_Handler):
            owner = panels
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def url_of(self, cp_id):
        return f"{self.url}cp/{cp_id}/"

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, name="panels", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- the API
    def state(self, c, since):
        try:
            st = c.api.state()
        except Exception:   # down: power cut, restarting
            st = None
        msgs, nxt = frames(self.csms, since, c.id) if self.csms else ([], since)
        return {"id": c.id, "state": st, "messages": msgs, "next": nxt,
                "link": {"up": c.link.up if c.link else True,
                         "outage_s": round(c.link.outage_left(), 1) if c.link else 0},
                "power": {"cuts": c.fw.cuts}, "cards": CARDS,
                "csms_panel": self.csms_panel.url if self.csms_panel else None}

    def post(self, c, what, body):
        if what in ("ev", "rfid", "fault", "clock"):
            return c.api.request("POST", "/" + what, body)
        if what == "power-cut":
            c.fw.power_cut()
            return {"ok": True}
        if what == "outage":
            s = body.get("seconds")
            if c.link is None:
                raise ValueError("no link to cut (the firmware talks to its CSMS directly)")
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= _MAX_OUTAGE_S:
                raise ValueError(f"seconds: number 0-{_MAX_OUTAGE_S} expected")
            c.link.cut(s)
            return {"ok": True}
        raise LookupError(what)

    def index(self):
        rows = "".join(f'<li><a href="cp/{i}/">{i}</a></li>' for i in self.chargers)
        csms = f'<p><a href="{self.csms_panel.url}">central system</a></p>' if self.csms_panel else ""
        return (f"<!doctype html><meta charset=utf-8><title>uwallbox classroom</title>"
                f"<h1>uwallbox classroom</h1>{csms}<ul>{rows}</ul>")


class _Handler(BaseHTTPRequestHandler):
    owner = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _route(self):
        u = urlsplit(self.path)
        if u.path == "/":
            return None, "index", parse_qs(u.query)
        m = re.fullmatch(r"/cp/([^/]+)/(?:api/([a-z-]+))?", u.path)
        if not m or m.group(1) not in self.owner.chargers:
            return None, None, None
        return self.owner.chargers[m.group(1)], m.group(2) or "panel", parse_qs(u.query)

    def do_GET(self):
        c, what, q = self._route()
        if what == "index":
            return self._send(200, self.owner.index(), "text/html; charset=utf-8")
        if what == "panel":
            return self._send(200, (PANEL / "charger.html").read_bytes(), "text/html; charset=utf-8")
        if what == "state":
            try:
                since = int(q.get("since", ["0"])[0])
            except ValueError:
                since = 0
            return self._send(200, self.owner.state(c, max(0, since)))
        self._send(404, {"error": "not found"})

    def do_POST(self):
        c, what, _ = self._route()
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if c is None or what in (None, "panel", "state", "index"):
            return self._send(404, {"error": "not found"})
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("JSON object expected")
            self._send(200, self.owner.post(c, what, body))
        except LookupError:
            self._send(404, {"error": "unknown action " + what})
        except Exception as e:   # SimApiError, ValueError, the firmware down
            self._send(400, {"error": str(e)})
