"""lib/ws.py under MicroPython (tests/mpy/ws_driven.py) against CPython servers.

Servers listen on 127.0.0.1 port 0 (a free port) in an asyncio loop in a background thread:
the `websockets` package where a correct server does, raw asyncio servers for malformed or
hand-checked frames. Handlers report what they saw with `srv.put`; tests read it with `srv.get`.
"""
import asyncio
import base64
import hashlib
import queue
import socket
import struct
import threading
import time
from http import HTTPStatus
from types import SimpleNamespace

import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from mpyrun import case_names, run_case
from pki import make_pki, server_context

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CASES = case_names("ws_driven")


class Servers:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.events = queue.Queue()
        self.servers = []

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def put(self, item):
        self.events.put(item)

    def get(self, timeout=5):
        """Next observation of a handler; re-raises a handler's exception."""
        item = self.events.get(timeout=timeout)
        if isinstance(item, Exception):
            raise item
        return item

    def _guard(self, handler):
        async def run(*args):
            try:
                await handler(*args)
            except Exception as e:
                self.put(e)
            finally:
                if len(args) == 2:  # raw server: (reader, writer)
                    args[1].close()
        return run

    def _url(self, server, scheme, path):
        self.servers.append(server)
        return "%s://127.0.0.1:%d%s" % (scheme, server.sockets[0].getsockname()[1], path)

    def ws(self, handler, path="/", tls=None, **kw):
        """A `websockets` server; returns its URL."""
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", None)

        async def start():
            return await serve(self._guard(handler), "127.0.0.1", 0, ssl=tls, **kw)
        return self._url(self.run(start()), "wss" if tls else "ws", path)

    def raw(self, handler, path="/"):
        """A plain asyncio server calling handler(reader, writer); returns its URL."""
        async def start():
            return await asyncio.start_server(self._guard(handler), "127.0.0.1", 0)
        return self._url(self.run(start()), "ws", path)

    def close(self):
        async def stop():
            for s in self.servers:
                s.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def srv():
    s = Servers()
    yield s
    s.close()


def mpy(name, url, tmp_path, heapsize=None, **env):
    """Run ws_driven.NAME under MicroPython with WS_URL=url and WS_<KEY>=value."""
    assert name in CASES, name
    e = {"WS_" + k.upper(): str(v) for k, v in env.items() if v is not None}
    e["WS_URL"] = url
    return run_case("ws_driven", name, tmp_path, env=e, timeout=20, heapsize=heapsize)


# -- raw protocol helpers --

async def handshake(r, w, proto="ocpp1.6", accept=None):
    """Answer the client's upgrade request; returns its header dict (lower-case names)."""
    lines = (await r.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    hdr = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            hdr[k.strip().lower()] = v.strip()
    if accept is None:
        accept = base64.b64encode(hashlib.sha1(hdr["sec-websocket-key"].encode() + GUID).digest()).decode()
    resp = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
            "Sec-WebSocket-Accept: " + accept]
    if proto:
        resp.append("Sec-WebSocket-Protocol: " + proto)
    w.write(("\r\n".join(resp) + "\r\n\r\n").encode())
    await w.drain()
    return hdr


def xor(data, key):
    n = len(data)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


def frame(op, data=b"", fin=True, rsv=0, mask=False):
    """A server frame (unmasked unless mask=True)."""
    if isinstance(data, str):
        data = data.encode()
    n = len(data)
    m = 0x80 if mask else 0
    head = bytes([(0x80 if fin else 0) | rsv | op])
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if mask:
        head += b"\x37\xfa\x21\x3d"
        data = xor(data, b"\x37\xfa\x21\x3d")
    return head + data


def close_frame(code, reason=""):
    return frame(8, struct.pack("!H", code) + reason.encode())


async def read_frame(r):
    """One client frame, unmasked; .key is None when it was not masked."""
    b0, b1 = await asyncio.wait_for(r.readexactly(2), 5)  # fail, don't hang, if none comes
    n = b1 & 0x7F
    if n == 126:
        n, = struct.unpack("!H", await r.readexactly(2))
    elif n == 127:
        n, = struct.unpack("!Q", await r.readexactly(8))
    key = await r.readexactly(4) if b1 & 0x80 else None
    data = await r.readexactly(n)
    if key:
        data = xor(data, key)
    code = struct.unpack("!H", data[:2])[0] if (b0 & 0x0F) == 8 and n >= 2 else None
    return SimpleNamespace(fin=bool(b0 & 0x80), rsv=b0 & 0x70, op=b0 & 0x0F, key=key, data=data,
                           code=code, reason=data[2:].decode() if code else None)


async def wait_eof(r, srv):
    """Report 'eof' once the client has closed its end of the TCP connection.

    A client that fails the connection closes with unread data in its buffers:
    its kernel then resets the connection, which is just as closed."""
    try:
        assert await asyncio.wait_for(r.read(), 10) == b""
    except ConnectionResetError:
        pass
    srv.put("eof")


async def echo(ws):
    async for m in ws:
        await ws.send(m)


# -- handshake --

def test_subprotocol(srv, tmp_path):
    async def echo(ws):
        srv.put((ws.subprotocol, ws.request.headers["Sec-WebSocket-Protocol"]))
        async for m in ws:
            await ws.send(m)
    mpy("test_subprotocol", srv.ws(echo, subprotocols=["ocpp1.6"]), tmp_path)
    assert srv.get() == ("ocpp1.6", "ocpp2.0.1, ocpp1.6")


def test_headers(srv, tmp_path):
    async def echo(ws):
        srv.put((ws.request.path, ws.request.headers))
        async for m in ws:
            await ws.send(m)
    url = srv.ws(echo, path="/ocpp/CP001?x=1", subprotocols=["ocpp1.6"])
    mpy("test_headers", url, tmp_path)
    path, hdr = srv.get()
    assert path == "/ocpp/CP001?x=1"
    assert hdr["Authorization"] == "Basic Q1AwMDE6c2VjcmV0"
    assert hdr["X-Extra"] == "42"
    assert hdr["Host"] == url.split("/")[2]
    assert hdr["Sec-WebSocket-Version"] == "13"
    assert len(base64.b64decode(hdr["Sec-WebSocket-Key"])) == 16


def reject_401(connection, request):
    return connection.respond(HTTPStatus.UNAUTHORIZED, "who are you?\n")


@pytest.mark.parametrize("variant, expect, status", [
    ("no_subprotocol", "subprotocol None", 101),
    ("wrong_subprotocol", "subprotocol 'ocpp2.0.1'", 101),
    ("bad_accept", "Sec-WebSocket-Accept", 101),
    ("http_401", "401 Unauthorized", 401),
])
def test_handshake_rejected(srv, tmp_path, variant, expect, status):
    async def raw(r, w):
        if variant == "wrong_subprotocol":
            await handshake(r, w, proto="ocpp2.0.1")
        else:
            await handshake(r, w, accept=base64.b64encode(b"0123456789abcdefghij").decode())
        await wait_eof(r, srv)

    async def idle(ws):
        await ws.wait_closed()
    if variant == "no_subprotocol":
        url = srv.ws(idle)
    elif variant == "http_401":
        url = srv.ws(idle, subprotocols=["ocpp1.6"], process_request=reject_401)
    else:
        url = srv.raw(raw)
    mpy("test_handshake_rejected", url, tmp_path, expect=expect, status=status)
    if variant in ("wrong_subprotocol", "bad_accept"):
        assert srv.get() == "eof"  # the client closed the socket


# -- data --

def test_echo(srv, tmp_path):
    async def echo(ws):
        seen = []
        async for m in ws:
            seen.append((type(m), len(m)))
            await ws.send(m)
        srv.put(seen)
    mpy("test_echo", srv.ws(echo, subprotocols=["ocpp1.6"]), tmp_path)
    sizes = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000]
    expect = [x for n in sizes for x in ((str, n), (bytes, n))] + [(str, 190)]
    assert srv.get() == expect


def test_rxbuf(srv, tmp_path):
    async def echo(ws):
        async for m in ws:
            await ws.send(m)
    mpy("test_rxbuf", srv.ws(echo, subprotocols=["ocpp1.6"]), tmp_path)


def test_send_parts(srv, tmp_path):
    async def raw(r, w):
        await handshake(r, w)
        ops, texts = [], []
        for _ in range(2):  # two messages, each in fragments
            parts = []
            while True:
                f = await read_frame(r)
                ops.append((f.fin, f.op))
                parts.append(f.data)
                if f.fin:
                    break
            texts.append(b"".join(parts).decode())
            w.write(frame(1, texts[-1].encode()))
        srv.put((ops, texts))
        await wait_eof(r, srv)
    mpy("test_send_parts", srv.raw(raw), tmp_path)
    ops, texts = srv.get()
    assert len(texts[0].encode()) == 2 + 300 * 4 + 1 + 1500 + 600 * 2
    first = ops[:ops.index((True, 0)) + 1]
    assert first[0] == (False, 1) and all(op == (False, 0) for op in first[1:-1]), first
    assert len(first) == -(-len(texts[0].encode()) // 512)  # 512-byte fragments
    assert ops[len(first):] == [(True, 1)] and texts[1] == ""


# The unix port's heap is fragmented by compiling the test module (and, on the 64-bit port, by
# 64-bit objects):
# a round trip of an n-byte text needs about 3 n contiguous bytes (the caller's str, the
# receive buffer, the received str). These sizes pass with some margin.
@pytest.mark.parametrize("heap, size", [("96k", 4000), ("160k", 12000)])
def test_small_heap(srv, tmp_path, heap, size):
    mpy("test_small_heap", srv.ws(echo, subprotocols=["ocpp1.6"]), tmp_path, heapsize=heap, size=size)


def test_concurrent_send(srv, tmp_path):
    mpy("test_concurrent_send", srv.ws(echo, subprotocols=["ocpp1.6"]), tmp_path)


def test_masking(srv, tmp_path):
    async def raw(r, w):
        await handshake(r, w)
        frames = [await read_frame(r) for _ in range(3)]
        w.write(close_frame(1000, "seen"))
        frames.append(await read_frame(r))
        srv.put(frames)
        await wait_eof(r, srv)
    mpy("test_masking", srv.raw(raw), tmp_path)
    frames = srv.get()
    assert [(f.op, f.fin, f.rsv) for f in frames] == [(1, True, 0), (2, True, 0), (1, True, 0), (8, True, 0)]
    assert all(f.key is not None for f in frames), "client frames must be masked"
    assert len({f.key for f in frames}) == 4, "a fresh masking key per frame"
    assert [f.data for f in frames[:3]] == [b"abc", b"\x00" * 300, b"x" * 70000]
    assert (frames[3].code, frames[3].reason) == (1000, "seen")  # the close is echoed
    assert srv.get() == "eof"


def test_fragments_and_ping(srv, tmp_path):
    text = "Héllo, wörld".encode()  # split inside the two-byte 'é'
    async def raw(r, w):
        await handshake(r, w)
        w.write(frame(1, text[:2], fin=False) + frame(9, "are you there?")
                + frame(0, text[2:6], fin=False) + frame(0, text[6:]))
        w.write(frame(2, b"\x00\x01", fin=False) + frame(0, b"\x02", fin=False) + frame(9)
                + frame(10, b"unsolicited") + frame(0, b"\x03\x04"))
        pongs = [await read_frame(r), await read_frame(r)]
        w.write(close_frame(1000))
        srv.put((pongs, await read_frame(r)))
    mpy("test_fragments_and_ping", srv.raw(raw), tmp_path)
    pongs, close = srv.get()
    assert [(p.op, p.data) for p in pongs] == [(10, b"are you there?"), (10, b"")]
    assert all(p.key for p in pongs)
    assert (close.op, close.code) == (8, 1000)


@pytest.mark.parametrize("fragmented", [False, True])
def test_max_size(srv, tmp_path, fragmented):
    async def big(ws):
        await ws.send("x" * 1000)
        await ws.send([b"a" * 600, b"b" * 600] if fragmented else "y" * 1001)
        try:
            await ws.recv()
        except ConnectionClosed as e:
            srv.put(e.rcvd and e.rcvd.code)
    mpy("test_max_size", srv.ws(big, subprotocols=["ocpp1.6"]), tmp_path)
    assert srv.get() == 1009


# -- closing --

def test_server_close(srv, tmp_path):
    async def bye(ws):
        await ws.close(4001, "bye")
        srv.put((ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason))
    mpy("test_server_close", srv.ws(bye, subprotocols=["ocpp1.6"]), tmp_path)
    assert srv.get() == (4001, "bye")  # the client echoed the close


async def record_close(ws, srv):
    try:
        await ws.recv()
    except ConnectionClosed as e:
        srv.put((e.rcvd.code, e.rcvd.reason))


@pytest.mark.parametrize("code, reason", [(None, None), (4002, "done")])
def test_client_close(srv, tmp_path, code, reason):
    url = srv.ws(lambda ws: record_close(ws, srv), subprotocols=["ocpp1.6"])
    mpy("test_client_close", url, tmp_path, code=code, reason=reason)
    assert srv.get() == (code or 1000, reason or "")


def test_close_while_receiving(srv, tmp_path):
    url = srv.ws(lambda ws: record_close(ws, srv), subprotocols=["ocpp1.6"])
    mpy("test_close_while_receiving", url, tmp_path)
    assert srv.get() == (4003, "shutdown")


@pytest.mark.parametrize("reader", [False, True])
def test_close_timeout(srv, tmp_path, reader):
    async def deaf(r, w):  # never answers the client's close
        await handshake(r, w)
        srv.put(await read_frame(r))
        await wait_eof(r, srv)
    mpy("test_close_timeout", srv.raw(deaf), tmp_path, reader=1 if reader else None)
    f = srv.get()
    assert (f.op, f.code, f.reason) == (8, 4004, "no answer")
    assert srv.get() == "eof"


def test_ping_pong(srv, tmp_path):
    async def raw(r, w):
        await handshake(r, w)
        ping = await read_frame(r)
        w.write(frame(10, ping.data) + frame(1, "after pong"))
        close = await read_frame(r)
        w.write(close_frame(close.code))
        srv.put((ping, close))
    mpy("test_ping_pong", srv.raw(raw), tmp_path)
    ping, close = srv.get()
    assert (ping.op, ping.data, ping.fin) == (9, b"hb", True) and ping.key
    assert (close.op, close.code) == (8, 1000)


@pytest.mark.parametrize("bad, code", [
    (frame(1, "hi", mask=True), 1002),
    (frame(1, "hi", rsv=0x40), 1002),
    (frame(3, "hi"), 1002),
    (frame(9, "x", fin=False), 1002),
    (frame(9, b"x" * 126), 1002),
    (frame(0, "hi"), 1002),
    (frame(1, "a", fin=False) + frame(1, "b"), 1002),
    (frame(1, b"ok \xff\xfe"), 1007),
    (frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
    (close_frame(999), 1002),
    (frame(8, b"\x03"), 1002),
], ids=["masked", "rsv1", "opcode3", "fragmented_ping", "long_ping", "lone_continuation",
        "interleaved", "bad_utf8", "bad_utf8_close_reason", "bad_close_code", "short_close"])
def test_protocol_error(srv, tmp_path, bad, code):
    async def raw(r, w):
        await handshake(r, w)
        w.write(bad)
        f = await read_frame(r)
        srv.put(f)
        w.write(close_frame(f.code or 1000))  # answer the close and hang up, as servers do
    t = time.monotonic()
    mpy("test_protocol_error", srv.raw(raw), tmp_path, code=code)
    assert time.monotonic() - t < 1.5  # the client did not wait for a timeout
    f = srv.get()
    assert (f.op, f.code) == (8, code) and f.key


def test_eof(srv, tmp_path):
    async def raw(r, w):
        await handshake(r, w)
        w.close()
    mpy("test_eof", srv.raw(raw), tmp_path)


# -- connecting --

def test_timeout(srv, tmp_path):
    first = []
    closed = asyncio.Event()

    async def mute(r, w):
        if not first:  # first connection: never answer, see the client close it
            first.append(w)
            await r.readuntil(b"\r\n\r\n")
            await wait_eof(r, srv)
            closed.set()
        else:  # the client's second connection succeeds only once the first is closed
            await asyncio.wait_for(closed.wait(), 5)
            await handshake(r, w)
            w.write(close_frame((await read_frame(r)).code))
    mpy("test_timeout", srv.raw(mute), tmp_path)
    assert srv.get() == "eof"


def test_refused(tmp_path):
    with socket.socket() as s:  # bound, not listening: connection refused
        s.bind(("127.0.0.1", 0))
        mpy("test_refused", "ws://127.0.0.1:%d/" % s.getsockname()[1], tmp_path)


# -- TLS --

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_echo(srv, certs, name):
    async def echo_once(ws):
        await echo(ws)
        srv.put("closed")
    return srv.ws(echo_once, tls=server_context(certs, name), subprotocols=["ocpp1.6"])


# "default" (ssl=None) documents that the port's default client context does not verify:
# if a MicroPython update changes that, ws.py's header comment must change too.
@pytest.mark.parametrize("mode", ["verified", "insecure", "default"])
def test_wss(srv, tmp_path, certs, mode):
    url = tls_echo(srv, certs, "server")
    mpy("test_wss", url, tmp_path, ca=certs / "ca.der" if mode == "verified" else None,
        insecure=1 if mode == "insecure" else None)
    assert srv.get() == "closed"


@pytest.mark.parametrize("ca, server", [("other_ca", "server"), ("ca", "wrong_host")])
def test_wss_rejected(srv, tmp_path, certs, ca, server):
    url = tls_echo(srv, certs, server)
    r = mpy("test_wss_rejected", url, tmp_path, ca=certs / (ca + ".der"))
    assert "rejected: ValueError" in r.stdout, r.stdout  # mbedtls verify error, on this port
