# Run by tools/bench/web.py under micropython (the sim board, firmware/, lib/ and tests/mpy on MICROPYPATH), in a
# fresh folder holding web.html.gz: what the web page costs the firmware's heap; prints one JSON line.
#   resident: gc.mem_alloc() after gc.collect(), before and after the server is built (imports included)
#   per request: every byte allocated while one request is read, handled and answered, with the
#   collector off (garbage included: an upper bound of what the request needs free)
import asyncio
import gc
import json

gc.collect()
import board  # noqa: E402
from uwallbox.app import App  # noqa: E402
from uwallbox.web.auth import set_password  # noqa: E402
from memstream import Reader  # noqa: E402  (tests/mpy)

set_password("bench-password")
app = App(board)
app.connectors[0].start("BENCH001", {"status": "Accepted"})  # a transaction runs
gc.collect()
before = gc.mem_alloc()
from uwallbox import log  # noqa: E402
from uwallbox.web.server import Web  # noqa: E402

log.tail = []
web = Web(app)
gc.collect()
resident = gc.mem_alloc() - before


class Writer:
    def __init__(self):
        self.n = 0
        self.head = None

    def write(self, b):
        if self.head is None:
            self.head = b[:12] if isinstance(b, str) else bytes(b[:12]).decode()
        self.n += len(b)

    async def drain(self):
        pass

    def close(self):
        pass

    async def wait_closed(self):
        pass


async def request(raw):
    r, w = Reader(raw), Writer()
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    await web.http._client(r, w)
    used = gc.mem_alloc() - a
    gc.enable()
    return used, w


async def main():
    out = {"resident": resident}
    body = b'{"password": "bench-password"}'
    used, w = await request(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body), body))
    assert w.head.startswith("HTTP/1.1 200"), w.head
    token, csrf = next(iter(web.sessions.live.items()))
    csrf = csrf[0]
    out["login"] = used
    hdr = "Host: 192.168.1.50\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120\r\nAccept: */*\r\n" \
          "Cookie: sid=%s\r\nX-CSRF: %s\r\n" % (token, csrf)
    for name, raw in (("page", "GET / HTTP/1.1\r\n%s\r\n" % hdr),
                      ("status", "GET /api/status HTTP/1.1\r\n%s\r\n" % hdr),
                      ("limit", 'POST /api/limit HTTP/1.1\r\n%sContent-Length: 12\r\n\r\n{"amps": 10}' % hdr),
                      ("settings", "GET /api/settings HTTP/1.1\r\n%s\r\n" % hdr),
                      ("logs", "GET /api/logs HTTP/1.1\r\n%s\r\n" % hdr)):
        used, w = await request(raw.encode())
        assert w.head.startswith("HTTP/1.1 200"), (name, w.head)
        out[name] = used
        out[name + "_bytes"] = w.n
    gc.collect()
    out["resident_after"] = gc.mem_alloc() - before
    print(json.dumps(out))


asyncio.run(main())
