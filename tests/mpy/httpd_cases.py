# MicroPython unit tests of lib/httpd.py: parsing limits, answers to bad requests, a handler that
# raises, streaming a file in chunks, the connection limit. Requests come from an in-memory reader.
import asyncio

import httpd
from memstream import Reader


class Writer:
    def __init__(self):
        self.out = bytearray()
        self.writes = 0
        self.closed = False

    def write(self, b):
        self.out += b.encode() if isinstance(b, str) else bytes(b)
        self.writes += 1

    async def drain(self):
        pass

    def close(self):
        self.closed = True

    async def wait_closed(self):
        pass

    def status(self):
        return int(bytes(self.out[9:12]))

    def body(self):
        return bytes(self.out[self.out.find(b"\r\n\r\n") + 4 :])


seen = []


async def handler(req):
    seen.append(req)
    if req.path == "/boom":
        raise ValueError("handler bug")
    if req.path == "/file":
        return await req.file("f.bin", "application/octet-stream")
    if req.path == "/missing":
        return await req.file("nope.bin", "text/plain")
    return 200, "text/plain", "got %s %s %r %r" % (req.method, req.path, req.query, req.body)


async def ask(srv, raw, gate=None):
    w = Writer()
    await srv._client(Reader(raw, gate), w)
    assert w.closed
    return w


async def test_request_parsed():
    srv = httpd.Server(handler, headers=("cookie",))
    w = await ask(srv, b"POST /a/b?x=1 HTTP/1.1\r\nCookie: sid=42\r\nX-Other: 1\r\nContent-Length: 3\r\n\r\nabc")
    assert w.status() == 200, w.out
    assert w.body() == b"got POST /a/b 'x=1' b'abc'", w.body()
    assert seen[-1].headers == {"cookie": "sid=42"}  # only the headers asked for
    assert b"Content-Length: %d\r\n" % len(w.body()) in w.out and b"Connection: close" in w.out


async def test_bad_requests_get_4xx():
    srv = httpd.Server(handler, max_body=100)
    cases = (
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / FTP/1.0\r\n\r\n", 400),
        (b"GET /" + b"a" * 600 + b" HTTP/1.1\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nX: " + b"b" * 600 + b"\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 40 + b"\r\n", 413),
        (b"GET / HTTP/1.1\r\nnocolon\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n" + b"x" * 101, 413),
        (b"\xff\xfe / HTTP/1.1\r\n\r\n", 400),
    )
    n = len(seen)
    for raw, code in cases:
        w = await ask(srv, raw)
        assert w.status() == code, (raw[:40], w.out)
    assert len(seen) == n  # the handler never saw one of them


async def test_handler_error_is_500_and_serving_goes_on():
    srv = httpd.Server(handler)
    w = await ask(srv, b"GET /boom HTTP/1.1\r\n\r\n")
    assert w.status() == 500 and w.body() == b"internal error"
    assert (await ask(srv, b"GET /ok HTTP/1.1\r\n\r\n")).status() == 200
    assert srv.conns == 0


async def test_file_streamed_in_chunks():
    data = bytes(range(256)) * 5  # 1280 bytes: three 512-byte chunks
    with open("f.bin", "wb") as f:
        f.write(data)
    srv = httpd.Server(handler)
    w = await ask(srv, b"GET /file HTTP/1.1\r\n\r\n")
    assert w.status() == 200 and w.body() == data
    assert b"Content-Length: 1280\r\n" in w.out
    assert w.writes == 1 + 3, w.writes  # the head, then three chunks
    assert (await ask(srv, b"GET /missing HTTP/1.1\r\n\r\n")).status() == 404


async def test_connection_limit():
    srv = httpd.Server(handler, max_conns=2)
    gate = asyncio.Event()
    held = [asyncio.create_task(ask(srv, b"GET /ok HTTP/1.1\r\n\r\n", gate)) for _ in range(2)]
    await asyncio.sleep_ms(10)
    assert srv.conns == 2
    w = await ask(srv, b"GET /ok HTTP/1.1\r\n\r\n")
    assert w.status() == 503
    gate.set()
    for t in held:
        assert (await t).status() == 200
    assert srv.conns == 0
