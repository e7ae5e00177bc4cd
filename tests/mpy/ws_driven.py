# MicroPython side of tests/test_ws.py: each test connects to the server at $WS_URL.
import asyncio
import os
import ssl
import time

import ws

URL = os.getenv("WS_URL")


def env_int(name, default=None):
    v = os.getenv(name)
    return default if v is None else int(v)


async def expect_closed(aw, code, reason=None):
    try:
        r = await aw
    except ws.ConnectionClosed as e:
        assert e.code == code, (e.code, e.reason)
        assert reason is None or e.reason == reason, e.reason
        return e
    raise AssertionError("no ConnectionClosed, got %r" % (r,))


async def test_subprotocol():
    c = await ws.connect(URL, subprotocols=("ocpp2.0.1", "ocpp1.6"))
    assert c.subprotocol == "ocpp1.6", c.subprotocol
    assert not c.closed
    await c.send("hello")
    assert await c.recv() == "hello"
    await c.close()
    assert c.closed


async def test_headers():
    hdr = {"Authorization": "Basic Q1AwMDE6c2VjcmV0", "X-Extra": "42"}
    c = await ws.connect(URL, headers=hdr)
    await c.send("hi")
    assert await c.recv() == "hi"
    await c.close()


async def test_handshake_rejected():
    try:
        c = await ws.connect(URL, timeout=5)
    except ws.HandshakeError as e:
        assert os.getenv("WS_EXPECT") in str(e), str(e)
        assert e.status == env_int("WS_STATUS"), e.status
        return
    raise AssertionError("connected with subprotocol %r" % c.subprotocol)


async def test_echo():
    c = await ws.connect(URL, max_size=100000)
    for n in (0, 1, 125, 126, 127, 1000, 65535, 65536, 70000):
        t = ("0123456789abcdefghijklmnopqrstuvwxyz" * (n // 36 + 1))[:n]
        await c.send(t)
        r = await c.recv()
        assert type(r) is str and r == t, n
        b = (bytes(range(256)) * (n // 256 + 1))[:n]
        await c.send(b)
        r = await c.recv()
        assert type(r) is bytes and r == b, n
    t = "zażółć gęślą jaźń €" * 10  # multi-byte UTF-8: the length field counts bytes
    await c.send(t)
    assert await c.recv() == t
    await c.close()


async def test_send_parts():
    # a message sent in pieces arrives whole, whatever the piece sizes and UTF-8 boundaries
    c = await ws.connect(URL, max_size=100000)
    pieces = ["[", "\"é\"" * 300, ",", "x" * 1500, "]"] + ["ż"] * 600
    await c.send_parts(iter(pieces))
    assert await c.recv() == "".join(pieces)
    await c.send_parts([])  # an empty message is one final frame
    assert await c.recv() == ""
    await c.close()


async def test_rxbuf():
    # messages that fit the preallocated buffer are received into it; larger ones are not
    c = await ws.connect(URL, max_size=100000)
    c.rxbuf = bytearray(1000)
    for n in (10, 1000, 1001, 5000):
        t = "é" * (n // 2)
        await c.send(t)
        r = await c.recv(True)
        assert bytes(r) == t.encode(), n
        assert (type(r) is memoryview) == (len(t.encode()) <= 1000), (n, type(r))
        await c.send(t)
        assert await c.recv() == t, n
    await c.close()


async def round_trip(c, i, n):
    m = chr(48 + i) * n
    await c.send(m)
    assert await c.recv() == m
    m = bytes([i]) * n
    await c.send(m)
    assert await c.recv() == m


async def test_small_heap():
    # run with a small heap: round trips of $WS_SIZE-byte messages, nothing retained
    import gc

    c = await ws.connect(URL)
    n = env_int("WS_SIZE")
    for i in range(10):  # warm-up: the GC scans the stack conservatively, and on a 32-bit build
        await round_trip(c, i, n)  # a stale word there may keep one old message alive
    gc.collect()
    free = gc.mem_free()
    for i in range(10, 40):
        await round_trip(c, i, n)
    gc.collect()
    # 30 more round trips leave at most the one message a stale stack word may keep alive:
    # nothing accumulates (a leak of one message per round trip would be 30 of them)
    assert free - gc.mem_free() < n + 1024, (free, gc.mem_free())
    await c.close()


async def test_concurrent_send():
    # frames written by several tasks at once must not interleave or corrupt each other
    c = await ws.connect(URL, max_size=100000)
    big, small = "b" * 70000, "small"
    await asyncio.gather(c.send(big), c.send(small), c.send(b"\x01" * 600), c.ping(b"p"))
    got = []
    for _ in range(3):
        got.append(await c.recv())
    assert sorted(got, key=len) == [small, b"\x01" * 600, big], [len(m) for m in got]
    await c.close()


async def test_masking():
    c = await ws.connect(URL)
    await c.send("abc")
    await c.send(b"\x00" * 300)
    await c.send("x" * 70000)
    await expect_closed(c.recv(), 1000, "seen")
    assert c.closed


async def test_fragments_and_ping():
    c = await ws.connect(URL)
    assert await c.recv() == "Héllo, wörld"
    assert await c.recv() == b"\x00\x01\x02\x03\x04"
    await expect_closed(c.recv(), 1000)


async def test_max_size():
    c = await ws.connect(URL, max_size=1000)
    assert await c.recv() == "x" * 1000  # exactly max_size is fine
    await expect_closed(c.recv(), 1009)
    assert c.closed
    await expect_closed(c.recv(), 1009)


async def test_server_close():
    c = await ws.connect(URL)
    await expect_closed(c.recv(), 4001, "bye")
    assert c.closed
    await expect_closed(c.recv(), 4001, "bye")
    await expect_closed(c.send("late"), 4001)


async def test_client_close():
    c = await ws.connect(URL)
    code = env_int("WS_CODE")
    t = time.ticks_ms()
    if code is None:
        await c.close()
    else:
        await c.close(code, os.getenv("WS_REASON"))
    assert time.ticks_diff(time.ticks_ms(), t) < 1500  # got the echo, did not time out
    assert c.closed
    await expect_closed(c.send("late"), 1000 if code is None else code)


async def test_close_while_receiving():
    c = await ws.connect(URL)
    reader = asyncio.create_task(c.recv())
    await asyncio.sleep(0)  # let it block in recv()
    t = time.ticks_ms()
    await c.close(4003, "shutdown")
    assert time.ticks_diff(time.ticks_ms(), t) < 1500
    await expect_closed(reader, 4003, "shutdown")  # the server's echo
    assert c.closed


async def test_close_timeout():
    c = await ws.connect(URL)
    reader = asyncio.create_task(c.recv()) if os.getenv("WS_READER") else None
    await asyncio.sleep(0)
    t = time.ticks_ms()
    await c.close(4004, "no answer")
    dt = time.ticks_diff(time.ticks_ms(), t)
    assert 1900 <= dt < 3000, dt  # waited ~2 s for the peer's close, then gave up
    assert c.closed
    if reader:  # woken up by the stream's closing
        await expect_closed(asyncio.wait_for(reader, 1), 4004, "no answer")
    await expect_closed(c.recv(), 4004)


async def test_ping_pong():
    c = await ws.connect(URL)
    t0 = c.last_pong
    await asyncio.sleep_ms(5)  # so that a new timestamp differs
    await c.ping(b"hb")
    assert c.last_pong == t0  # no pong processed yet: nobody called recv()
    assert await c.recv() == "after pong"
    assert time.ticks_diff(c.last_pong, t0) >= 5
    assert time.ticks_diff(c.last_rx, c.last_pong) >= 0
    await c.close()


async def test_protocol_error():
    c = await ws.connect(URL)
    await expect_closed(c.recv(), env_int("WS_CODE"))
    assert c.closed


async def test_eof():
    c = await ws.connect(URL)
    await expect_closed(c.recv(), 1006)
    assert c.closed
    await expect_closed(c.send("x"), 1006)
    await c.close()  # no-op on a dead connection


async def test_timeout():
    t = time.ticks_ms()
    try:
        await ws.connect(URL, timeout=1)
    except asyncio.TimeoutError:
        assert time.ticks_diff(time.ticks_ms(), t) < 1500
        c = await ws.connect(URL, timeout=3)  # answered once the first socket is closed
        await c.close()
        return
    raise AssertionError("connected")


async def test_refused():
    try:
        await ws.connect(URL, timeout=5)
    except OSError:
        return
    raise AssertionError("connected")


def tls_context():
    ca = os.getenv("WS_CA")
    if ca is None:
        return False if os.getenv("WS_INSECURE") else None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with open(ca, "rb") as f:
        ctx.load_verify_locations(cadata=f.read())  # DER: this port rejects PEM
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def test_wss():
    c = await ws.connect(URL, ssl=tls_context(), max_size=100000, timeout=5)
    assert c.subprotocol == "ocpp1.6"
    for m in ("x" * 3000, b"\x01\x02" * 35000):
        await c.send(m)
        assert await c.recv() == m
    await c.close()


async def test_wss_rejected():
    t = time.ticks_ms()
    try:
        await ws.connect(URL, ssl=tls_context(), timeout=5)
    except asyncio.TimeoutError:
        raise AssertionError("timed out instead of failing")
    except Exception as e:
        assert time.ticks_diff(time.ticks_ms(), t) < 4000
        print("rejected:", repr(e))
        return
    raise AssertionError("connected")
