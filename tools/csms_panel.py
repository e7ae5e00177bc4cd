"""The central-system panel of the bundled CSMS (tools/csms.py): a web page for the operator.

    panel = CsmsPanel(csms).start()     # panel.url: http://127.0.0.1:PORT/
    python tools/csms.py --panel 8100   # the same from the command line

The page (tools/panel/csms.html, plain HTML/JS) polls GET /api/state and sends what an operator
does as POST /api/call:

    GET  /api/state?since=N  {"stations": [{"id", "connected", "connectors": {cid: status}}],
                              "transactions": [{"id", "cp_id", "connector_id", "id_tag", "meter_start",
                              "meter_stop", "energy_wh", "start", "stop", "reason", "active"}],
                              "messages": [frames from index N], "next": N', "errors": [...]}
    POST /api/call {"cp": ID, "action": "RemoteStopTransaction", "payload": {...}}
                             -> {"ok": true, "result": {...}} or 400 {"error": ...}
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PAGE = Path(__file__).resolve().parent / "panel" / "csms.html"
_ENERGY = "Energy.Active.Import.Register"


def frames(csms, since, cp_id=None):
    ms = csms.messages(since=since)
    out = [{"i": since + k, "t": round(m.time, 3), "cp": m.cp_id, "dir": m.direction, "kind": m.kind,
            "action": m.action, "payload": m.payload}
           for k, m in enumerate(ms) if cp_id is None or m.cp_id == cp_id]
    return out, since + len(ms)


def _energy_reading(payload):
    """The Energy.Active.Import.Register reading (Wh) of a MeterValues payload, or None."""
    value = None
    for mv in payload.get("meterValue", ()):
        for sv in mv.get("sampledValue", ()):
            if sv.get("measurand", _ENERGY) == _ENERGY and sv.get("phase") is None:
                try:
                    v = float(sv["value"])
                except (KeyError, ValueError):
                    continue
                value = v * 1000 if sv.get("unit") == "kWh" else v
    return value


def overview(csms):
    """Stations with their connector statuses, and transactions with their energy so far."""
    statuses, seen, last_wh = {}, [], {}
    for m in csms.messages(direction="in", kind="call"):
        if m.cp_id not in seen:
            seen.append(m.cp_id)
        if m.action == "StatusNotification":
            statuses.setdefault(m.cp_id, {})[str(m.payload.get("connectorId"))] = m.payload.get("status")
        elif m.action == "MeterValues" and "transactionId" in m.payload:
            wh = _energy_reading(m.payload)
            if wh is not None:
                last_wh[m.payload["transactionId"]] = wh
    stations = [{"id": i, "connected": csms.connected(i), "connectors": statuses.get(i, {})} for i in seen]
    txs = []
    for t in sorted(csms.transactions.values(), key=lambda t: -t["id"]):
        end = t["meter_stop"] if t["meter_stop"] is not None else last_wh.get(t["id"])
        txs.append(dict(t, active=t["stop"] is None,
                        energy_wh=None if end is None else round(end - t["meter_start"])))
    return stations, txs


class CsmsPanel:
    def __init__(self, csms, host="127.0.0.1", port=0):
        self.csms = csms
        panel = self

        class Handler(_Handler):
            owner = panel
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        threading.Thread(target=self.server.serve_forever, name="csms-panel", daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def state(self, since):
        stations, txs = overview(self.csms)
        msgs, nxt = frames(self.csms, since)
        return {"stations": stations, "transactions": txs, "messages": msgs, "next": nxt,
                "errors": list(self.csms.errors)}

    def call(self, body):
        cp, action, payload = body.get("cp"), body.get("action"), body.get("payload", {})
        if not isinstance(cp, str) or not isinstance(action, str) or not isinstance(payload, dict):
            raise ValueError("cp, action (strings) and payload (object) expected")
        return {"ok": True, "result": self.csms.call(cp, (action, payload), timeout=20)}


class _Handler(BaseHTTPRequestHandler):
    owner = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlsplit(self.path)
        if u.path == "/":
            return self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
        if u.path == "/api/state":
            try:
                since = max(0, int(parse_qs(u.query).get("since", ["0"])[0]))
            except ValueError:
                since = 0
            return self._send(200, self.owner.state(since))
        self._send(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if urlsplit(self.path).path != "/api/call":
            return self._send(404, {"error": "not found"})
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("JSON object expected")
            self._send(200, self.owner.call(body))
        except Exception as e:   # CallErrorResponse, TimeoutError, not connected, a bad request
            self._send(400, {"error": f"{type(e).__name__}: {e}"})
