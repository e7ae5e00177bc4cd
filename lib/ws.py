# WebSocket client (RFC 6455, client side) for MicroPython asyncio streams.
#
#   conn = await ws.connect("ws://host:port/path", subprotocols=("ocpp1.6",))
#   await conn.send("text") / await conn.send(b"binary")
#   msg = await conn.recv()      # str or bytes; raises ConnectionClosed(code, reason)
#   await conn.close()
#
# Only one task may be in recv() at a time; pings are answered and pongs noted only while
# one is. send(), ping() and close() may be called from any task. Once the connection is
# closed or lost (code 1006), recv() and send() raise ConnectionClosed. Cancelling a
# send() in the middle of a frame kills the connection (the stream would be out of step).
#
# TLS (wss://): `ssl` is an ssl.SSLContext used as given; to authenticate the server load
# a CA (this port's load_verify_locations wants DER) and set verify_mode = CERT_REQUIRED:
# the URL's host is sent as SNI and checked against the certificate. ssl=None uses
# ssl.SSLContext(PROTOCOL_TLS_CLIENT) as the port makes it, which on MicroPython 1.29 does
# NOT verify the server; ssl=False asks for CERT_NONE explicitly.
#
# The opening handshake is module wsopen (with tcp), imported by connect(): a program that
# connects rarely may drop both from sys.modules afterwards; this module holds the connection.
import asyncio
import os
import struct
import time
from micropython import const

_CONT = const(0)
_KEEP = const(512)  # bytes of a message kept in rxbuf when the heap has no room for all of it
_TEXT = const(1)
_BINARY = const(2)
_CLOSE = const(8)
_PING = const(9)
_PONG = const(10)
_CHUNK = const(512)  # payload bytes masked and written at a time (a multiple of 4)
_CLOSE_WAIT = const(2)  # seconds to wait for the peer's close frame / end of stream


class WebSocketError(Exception):
    pass


class HandshakeError(WebSocketError):
    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.status = status  # HTTP status code of the response, None if not HTTP


class ConnectionClosed(WebSocketError):
    def __init__(self, code, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def _mask(b, start, n, key):
    # XOR B[start:start+n] with the repeated KEY in place: 0 B allocated (a big-int XOR
    # allocated 3,296 B per 512 B chunk on the 32-bit build, in blocks a fragmented heap may lack)
    k0, k1, k2, k3 = key
    end = start + n
    i = start
    while i + 4 <= end:
        b[i] ^= k0
        b[i + 1] ^= k1
        b[i + 2] ^= k2
        b[i + 3] ^= k3
        i += 4
    j = 0
    while i < end:
        b[i] ^= key[j]
        i += 1
        j += 1


async def connect(url, subprotocols=("ocpp1.6",), headers=None, ssl=None, max_size=65536, timeout=10):
    """Open a connection. Raises OSError (network), ValueError (TLS certificate rejected,
    on this port), HandshakeError, asyncio.TimeoutError (after `timeout` seconds)."""
    from wsopen import handshake
    return await asyncio.wait_for(handshake(url, subprotocols, headers, ssl, max_size, HandshakeError,
                                            Connection), timeout)


class Connection:
    def __init__(self, reader, writer, subprotocol, max_size):
        self._r = reader
        self._w = writer
        self.subprotocol = subprotocol
        self.max_size = max_size
        self.closed = False  # True once a close frame was sent or the stream is gone
        self.last_rx = self.last_pong = time.ticks_ms()
        self._lock = asyncio.Lock()  # one frame written at a time
        self._wbuf = bytearray(14 + _CHUNK)  # frame header + a chunk of masked payload
        self._pbuf = None  # a fragment being filled by send_parts()
        self.rxbuf = None  # optional bytearray that messages are received into when they fit
        self.dropped = 0  # size of the last message recv(True) could not hold (only its start came)
        self._hbuf = bytearray(8)  # incoming frame header / extended length
        self._sent = None  # ConnectionClosed(code, reason) of the close frame we sent
        self._cc = None  # ConnectionClosed to raise once the stream is closed
        self._reading = False  # a task is reading frames (recv() or close())
        self._done = asyncio.Event()  # set once the stream is closed

    # -- writing --

    async def _emit(self, op, mv, fin=True):
        """Write one frame of payload MV (the write lock is held)."""
        n = len(mv)
        key = os.urandom(4)
        b = self._wbuf
        b[0] = (0x80 if fin else 0) | op
        if n < 126:
            b[1] = 0x80 | n
            h = 2
        elif n < 65536:
            b[1] = 0xFE
            struct.pack_into("!H", b, 2, n)
            h = 4
        else:
            b[1] = 0xFF
            struct.pack_into("!Q", b, 2, n)
            h = 10
        b[h : h + 4] = key
        h += 4
        off = 0
        while True:  # header + first chunk, then the next chunks
            m = min(n - off, _CHUNK)
            b[h : h + m] = mv[off : off + m]
            _mask(b, h, m, key)
            off += m
            self._w.write(memoryview(b)[: h + m])
            await self._w.drain()
            h = 0
            if off >= n:
                break

    async def _locked(self, op, write):
        """Run coroutine WRITE holding the write lock; a failure mid-frame loses the stream."""
        async with self._lock:  # _wbuf is shared: fill it only while holding the lock
            if self._cc or (self._sent and op != _CLOSE):
                raise self._cc or self._sent
            try:
                await write
            except BaseException as e:  # OSError, or cancelled mid-frame: the stream is unusable
                await self._lost(e)
                if isinstance(e, OSError):
                    raise self._cc
                raise

    async def _write(self, op, data):
        await self._locked(op, self._emit(op, memoryview(data)))  # a str is its UTF-8 bytes: no copy

    async def _fragments(self, parts):
        buf = self._pbuf
        if buf is None:
            buf = self._pbuf = bytearray(_CHUNK)
        op, n = _TEXT, 0
        for part in parts:
            mv = memoryview(part)
            while len(mv):
                k = min(len(mv), _CHUNK - n)
                buf[n : n + k] = mv[:k]
                n += k
                mv = mv[k:]
                if n == _CHUNK:
                    await self._emit(op, memoryview(buf), False)
                    op, n = _CONT, 0
        await self._emit(op, memoryview(buf)[:n])

    async def send_parts(self, parts):
        """Send one text message made of the str PARTS (an iterable), in fragments of up to
        _CHUNK bytes: the whole message never has to exist in RAM at once."""
        await self._locked(_TEXT, self._fragments(parts))

    async def send(self, data):
        """Send one message: str as a text frame, bytes-like as a binary frame."""
        await self._write(_TEXT if isinstance(data, str) else _BINARY, data)

    async def ping(self, data=b""):
        await self._write(_PING, data)

    async def _send_close(self, code, reason):
        if self._sent or self._cc:
            return
        self._sent = ConnectionClosed(code, reason)
        self.closed = True
        try:
            await self._write(_CLOSE, b"" if code == 1005 else struct.pack("!H", code) + reason.encode()[:123])
        except WebSocketError:
            pass

    # -- reading --

    async def _fill(self, mv):
        got = 0
        while got < len(mv):
            k = await self._r.readinto(mv[got:])
            if k == 0:
                raise EOFError
            got += k or 0  # None: TLS record not complete yet

    async def _frame(self):
        """Read and check a frame header -> (fin, opcode, payload length)."""
        hb = memoryview(self._hbuf)
        await self._fill(hb[:2])
        self.last_rx = time.ticks_ms()
        b0, b1 = hb[0], hb[1]
        op, n = b0 & 0x0F, b1 & 0x7F
        if b0 & 0x70 or b1 & 0x80 or op not in (0, 1, 2, 8, 9, 10):
            await self._fail(1002, "bad frame header")
        if op & 8 and (n > 125 or not b0 & 0x80):
            await self._fail(1002, "bad control frame")
        if n == 126:
            await self._fill(hb[:2])
            n = struct.unpack_from("!H", hb)[0]
        elif n == 127:
            await self._fill(hb)
            n = struct.unpack_from("!Q", hb)[0]
        return b0 & 0x80, op, n

    async def _drain(self, n, kept):
        """Read N payload bytes: into rxbuf from KEPT up to _KEEP bytes, the rest dropped (read
        into the tail of rxbuf). Returns the bytes kept."""
        rx = memoryview(self.rxbuf)
        while n:
            if kept < _KEEP:
                k = min(n, _KEEP - kept)
                await self._fill(rx[kept : kept + k])
                kept += k
            else:
                k = min(n, len(rx) - _KEEP)
                await self._fill(rx[_KEEP : _KEEP + k])
            n -= k
        return kept

    async def _payload(self, n):
        buf = bytearray(n)
        await self._fill(memoryview(buf))
        return buf

    async def _control(self, op, n):
        """Handle a control frame; True if it was the peer's close (then the stream is closed)."""
        p = await self._payload(n)
        if op == _PING:
            if not self._sent:
                await self._write(_PONG, p)
        elif op == _PONG:
            self.last_pong = time.ticks_ms()
        else:
            code, reason = 1005, ""
            if n:
                code = struct.unpack_from("!H", p)[0] if n >= 2 else 0
                try:
                    reason = str(p[2:], "utf-8")
                except UnicodeError:
                    await self._fail(1007, "bad close reason")
                if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
                    await self._fail(1002, "bad close code")
            await self._send_close(code, reason)  # echo, unless we sent ours first
            await self._shutdown(ConnectionClosed(code, reason))
            return True
        return False

    async def recv(self, raw=False):
        """Next message as str (text) or bytes (binary); raises ConnectionClosed. With RAW, the
        message comes back as the buffer it was received in, UTF-8 unchecked, without a copy:
        a memoryview of `rxbuf` when it fits there (valid until the next recv()), else a
        bytearray. json.loads reads both."""
        if self._cc:
            raise self._cc
        self._reading = True
        try:
            mop, msg, got = None, None, 0  # msg: the message when it does not fit rxbuf
            kept = -1  # >= 0: no heap for the message: its first KEPT bytes are in rxbuf, the rest dropped
            rx = self.rxbuf
            self.dropped = 0
            while True:
                fin, op, n = await self._frame()
                if op & 8:
                    if await self._control(op, n):
                        raise self._cc
                    continue
                if (op == _CONT) != (mop is not None):
                    await self._fail(1002, "unexpected continuation" if mop is None else "expected continuation")
                if got + n > self.max_size:
                    await self._fail(1009, "message too big")
                if mop is None:
                    mop = op
                if kept >= 0:
                    kept = await self._drain(n, kept)
                elif msg is None and rx is not None and got + n <= len(rx):
                    await self._fill(memoryview(rx)[got : got + n])
                else:
                    part = None
                    try:
                        if msg is None:
                            msg = bytearray(rx[:got]) if got else bytearray()
                        part = bytearray(n)
                        await self._fill(memoryview(part))
                        msg += part
                    except MemoryError:  # read on, keep the start in rxbuf: the link stays usable
                        if rx is None or len(rx) <= _KEEP:
                            raise
                        start, msg = msg, None
                        kept = min(got, _KEEP)
                        if start is not None and kept:  # the start as received so far
                            rx[:kept] = memoryview(start)[:kept]
                        start = None
                        if part is None:  # the payload is still on the wire
                            kept = await self._drain(n, kept)
                        elif kept < _KEEP:
                            k = min(_KEEP - kept, n)
                            rx[kept : kept + k] = memoryview(part)[:k]
                            kept += k
                        part = None
                got += n
                if fin:
                    break
            if kept >= 0:
                self.dropped = got
                if not raw:
                    raise MemoryError("message of %d bytes" % got)
                return memoryview(rx)[:kept]
            if msg is None:
                msg = memoryview(rx)[:got]
            if raw:
                return msg
            try:  # rebinding msg drops the buffer early
                msg = str(msg, "utf-8") if mop == _TEXT else bytes(msg)
            except UnicodeError:
                await self._fail(1007, "invalid UTF-8")
            return msg
        except (OSError, EOFError) as e:
            await self._lost(e)
            raise self._cc
        finally:
            self._reading = False

    # -- closing --

    async def _shutdown(self, cc):
        if not self._cc:
            self._cc = cc
            self.closed = True
            try:
                self._w.close()
                await self._w.wait_closed()
            except OSError:
                pass
            self._done.set()

    async def _lost(self, e):
        await self._shutdown(ConnectionClosed(1006, "connection lost: %r" % e))

    async def _fail(self, code, reason):
        # The stream may be out of step: discard what comes until the peer closes (bounded),
        # as closing with unread data makes the kernel reset the connection, and a reset can
        # destroy our close frame before the peer reads it.
        await self._send_close(code, reason)
        try:
            await asyncio.wait_for(self._discard(), _CLOSE_WAIT)
        except Exception:
            pass
        await self._shutdown(ConnectionClosed(code, reason))
        raise self._cc

    async def _discard(self):
        buf = bytearray(256)
        while await self._r.readinto(buf) != 0:  # None: TLS record not complete yet
            pass

    async def _await_close(self):
        if self._reading:  # the reading task will see the peer's close
            await self._done.wait()
            return
        self._reading = True
        try:
            while True:
                fin, op, n = await self._frame()
                if op & 8:
                    if await self._control(op, n):
                        return
                elif n > self.max_size:
                    return
                else:
                    await self._payload(n)  # data after our close: discard
        finally:
            self._reading = False

    async def close(self, code=1000, reason=""):
        """Close handshake: send close, wait (bounded) for the peer's, close the stream."""
        if self._cc:
            return
        await self._send_close(code, reason)
        try:
            await asyncio.wait_for(self._await_close(), _CLOSE_WAIT)
        except Exception:  # timeout, protocol error or stream lost: just close
            pass
        await self._shutdown(ConnectionClosed(code, reason))
