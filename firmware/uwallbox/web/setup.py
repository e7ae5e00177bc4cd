"""Setup mode: no working Wi-Fi configuration (or the board's SETUP_PIN held low at boot). The
board opens an access point and serves the setup form on WEB_PORT (80); a valid save is stored
(web/settings.py, each file atomically) and the board restarts into station mode. The pilots stay
at +12 V and the contactors open the whole time (crashguard.safe), nothing charges.

Access point: SSID "uwallbox-<board>-<last 3 bytes of machine.unique_id() in hex>", WPA2 password
the first 10 hex digits of SHA-256("uwallbox-setup:" + unique id): printed on the console at each
start of setup mode, and printable on the device's label at manufacture (tools/setup_password.py).
"""
import asyncio
import binascii
import hashlib
import json

import httpd
import machine
import network
from httpd import HttpError

from .. import files
from ..log import log
from ..system import crashguard
from . import settings

_GIVE_UP_S = 300  # with stored credentials that failed: start offline after this long


def ap_name(board, uid):
    return "uwallbox-%s-%s" % (board.NAME, binascii.hexlify(uid[-3:]).decode())


def ap_password(uid):
    return binascii.hexlify(hashlib.sha256(b"uwallbox-setup:" + uid).digest()).decode()[:10]


def held(board):
    """Is the board's setup button (SETUP_PIN, active low) held?"""
    pin = getattr(board, "SETUP_PIN", None)
    return pin is not None and machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0


class Setup:
    def __init__(self, board):
        from ..station.config import Config
        self.board = board
        self.config = Config()
        self.saved = asyncio.Event()
        self.buf = bytearray(512)

    async def handle(self, req):
        p, m = req.path, req.method
        if p == "/" and m == "GET":
            return await req.file(files.WEB_PAGE, "text/html; charset=utf-8", "Content-Encoding: gzip\r\n",
                                  self.buf)
        if p == "/api/mode" and m == "GET":
            return 200, "application/json", json.dumps({
                "setup": True, "name": self.board.NAME, "max_current": self.config["MaxCurrent"]})
        if p == "/api/scan" and m == "GET":
            nets = []
            for n in network.WLAN(network.STA_IF).scan():
                ssid = n[0].decode()
                if ssid and all(x["ssid"] != ssid for x in nets):
                    nets.append({"ssid": ssid, "dbm": n[3]})
            return 200, "application/json", json.dumps({"networks": nets})
        if p == "/api/setup" and m == "POST":
            try:
                d = json.loads(req.body)
            except ValueError:
                raise HttpError(400, "invalid JSON")
            if not isinstance(d, dict):
                raise HttpError(400, "JSON object expected")
            try:
                settings.apply(self.config, d, setup=True)
            except ValueError as e:
                raise HttpError(400, str(e))
            log("setup", "saved: restarting into station mode")
            self.saved.set()
            return 200, "application/json", '{"ok": true}'
        raise HttpError(404 if m in ("GET", "POST") else 405, "not found")

    async def run(self, retry):
        board = self.board
        uid = machine.unique_id()
        sta = network.WLAN(network.STA_IF)
        sta.active(True)  # for scan()
        ap = network.WLAN(network.AP_IF)
        ap.active(True)
        ap.config(essid=ap_name(board, uid), password=ap_password(uid), authmode=3)
        port = getattr(board, "WEB_PORT", 80)
        log("setup", "access point %s, password %s: open http://%s:%d/" % (
            ap_name(board, uid), ap_password(uid), ap.ifconfig()[0], port))
        srv = httpd.Server(self.handle, max_body=1024, max_conns=2)
        task = asyncio.create_task(srv.serve(port, getattr(board, "WEB_HOST", "0.0.0.0")))
        try:
            if retry:
                await asyncio.wait_for(self.saved.wait(), _GIVE_UP_S)
            else:
                await self.saved.wait()
            await asyncio.sleep_ms(500)  # the answer reaches the browser
        except asyncio.TimeoutError:
            log("setup", "no new settings: starting offline, the Wi-Fi keeps trying")
        task.cancel()
        srv.close()
        ap.active(False)
        return self.saved.is_set()


def run(board, retry=False):
    """Serve the setup page until a valid save, then restart. RETRY (stored credentials that did
    not join): after _GIVE_UP_S without a save, return (the application starts offline, as it
    would without the setup mode: cards in the local list still work)."""
    crashguard.safe(board, 1)
    if asyncio.run(Setup(board).run(retry)) or not retry:
        machine.reset()
