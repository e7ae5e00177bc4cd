"""OCPP-J RPC over one WebSocket: CALL / CALLRESULT / CALLERROR."""
import asyncio
import json
import random
import sys
import time
from micropython import const

from ws import WebSocketError

from .. import unload
from ..errors import FORMATION, INTERNAL, CallError, Offline
from ..log import log
from . import jsonscan, routes, schema

_CALL, _RESULT, _ERROR = 2, 3, 4
_TIMEOUT = 30  # seconds to wait for the CSMS's answer
_DEPTH = const(6)  # JSON nesting opened up when a frame is sent in pieces (a MeterValues
# sampledValue list is opened too: each piece is ~100 B, never the whole ~1 KB list)
_PREVIEW = const(300)  # characters of a frame shown in the log
_RX = const(4096)  # frames up to this size are received into one preallocated buffer (a
# SendLocalList of SendLocalListMaxLength entries fits; larger frames get a buffer of their own)
# CALLs whose handler gets the payload as JSON text (a memoryview) and parses it piece by piece:
# a SendLocalList of many entries would cost several times its size as Python objects.
_RAW = ("SendLocalList",)
_INVALID = const(3)  # malformed frames on one connection that make a security event
_UID_MAX = const(36)  # characters of a message's unique id
# Modules a CALL may import and leave loaded: the Core profile answers most requests, the local
# list comes in runs of SendLocalList (loading it again for each would fragment the heap). Any
# other module a CALL imports is unloaded after its answer unless the CALL started a task (a job
# that runs on, with its module): no request leaves its code behind on the heap (about 45 KB for
# the other profiles on a 32-bit port).
_RESIDENT = ("uwallbox.profiles", "uwallbox.profiles.core", "uwallbox.profiles.localauth",
             "uwallbox.flash.cardstore", "uwallbox.ocpp._schemas")
# ... the local list's modules (and the open list, ~1.6 KB) only for a run of its CALLs: the
# next other CALL drops them (a card's lookup loads them for itself, station/auth.py)
_LIST = ("uwallbox.profiles.localauth", "uwallbox.flash.cardstore")


def _raw_call(text):
    """[2, uniqueId, action, payload text] when TEXT is a CALL of a _RAW action, else None."""
    head = bytes(text[:100])  # the action name is near the start (`in` fails on a memoryview)
    if not any(('"%s"' % a).encode() in head for a in _RAW):
        return None
    buf = memoryview(text)
    spans = list(jsonscan.elements(buf, jsonscan.skip(buf, 0)))
    if len(spans) != 4:
        return None
    msg = [json.loads(buf[a:b]) for a, b in spans[:3]]
    if msg[0] != _CALL or msg[2] not in _RAW or type(msg[1]) is not str:
        return None
    a, b = spans[3]
    return msg + [buf[a:b]]


def _gen():
    yield


_GENERATOR = type(_gen())


def _head(text):
    """[kind, uniqueId] of frame TEXT read without parsing the rest (a frame whose payload does
    not fit in the heap still gets its answer), or None."""
    try:
        buf = memoryview(text)
        for i, (a, b) in enumerate(jsonscan.elements(buf, jsonscan.skip(buf, 0))):
            if i == 0:
                kind = json.loads(buf[a:b])
            else:
                return [kind, json.loads(buf[a:b])]
    except (ValueError, MemoryError):
        pass
    return None


def _parts(obj, depth=_DEPTH):
    """The JSON text of OBJ in small pieces: containers are opened DEPTH levels deep, so no
    piece is the size of a whole message. A generator is sent as an array of what it yields:
    a handler can answer with a long list (GetConfiguration of every key) that never exists
    in RAM as a whole."""
    t = type(obj)
    if t is _GENERATOR:
        t = list
    if depth and (t is dict or t is list):
        yield "{" if t is dict else "["
        sep = ""
        for k in obj:
            if t is dict:
                yield sep + json.dumps(k) + ":"
                k = obj[k]
            elif sep:
                yield sep
            yield from _parts(k, depth - 1)
            sep = ","
        yield "}" if t is dict else "]"
    else:
        yield json.dumps(obj)


def _shown(buf):
    """The log's view of received frame BUF (UTF-8 bytes): its pieces, the start cut on a
    character boundary; a frame that shows an AuthorizationKey is not shown. (One string made
    from a view of BUF, printed as it is: each copy would be another ~300 B of the heap for
    every frame.)"""
    k = min(len(buf), _PREVIEW)
    while 0 < k < len(buf) and buf[k] & 0xC0 == 0x80:
        k -= 1
    try:
        head = str(memoryview(buf)[:k], "utf-8")
    except UnicodeError:
        head = "(not UTF-8)"
    if "AuthorizationKey" in head:
        return ("(%d bytes with an AuthorizationKey: not shown)" % len(buf),)
    return (head,) if k == len(buf) else (head, "...(%d chars)" % len(buf))


def _log_frame(buf, what):
    """Log received frame BUF after WHAT: a line the heap has no room for is cut short, it never
    takes the link down (the frame's handler answers on its own, InternalError at worst)."""
    try:
        log("<", what, _shown(buf))
    except MemoryError:
        log("<", what)


class Rpc:
    """Sends our CALLs one at a time and routes the CSMS's CALLs to handlers."""

    def __init__(self, app):
        self.app = app
        self.conn = None
        self.accepted = False  # BootNotification accepted on this boot
        self._lock = asyncio.Lock()
        self._id = None
        self._action = None  # of the CALL awaiting its answer
        self._reply = None
        self._got = asyncio.Event()
        self._seq = random.getrandbits(24)
        self._rx = None  # the receive buffer (prepare)
        self._after = []
        self._invalid = 0  # FormationViolation answers on this connection
        self.last_ms = None  # ticks_ms of the last frame received (the web page shows its age)

    def prepare(self):
        """Make the receive buffer, once, before the first connection (Session.run): after the
        transient peak of the boot (4 KB less at it), before the heap fragments. Without the
        heap for it, frames get a buffer of their own (ws) and the next connection tries again."""
        if self._rx is None:
            try:
                self._rx = bytearray(_RX)
            except MemoryError:
                log("!", "no heap for the receive buffer")

    async def _send(self, frame, action):
        """Stream FRAME to the CSMS in pieces and log its start under ACTION."""
        if self.conn is None:
            raise Offline()
        # the pieces that start the frame (_PREVIEW characters), for the log, which prints them
        # one by one once the frame has gone: no string of them is made (joined, then formatted
        # into the line, they were ~1 KB at the end of every send, the peak of a MeterValues),
        # and the frame's length
        seen, n = [], [0]

        def pieces():
            for p in _parts(frame):
                left = _PREVIEW - n[0]
                if left > 0:
                    seen.append(p if len(p) <= left else p[:left])
                n[0] += len(p)
                yield p
        try:
            await self.conn.send_parts(pieces())
        except (OSError, EOFError, WebSocketError) as e:
            # the link closed under us (a close frame, 1009 after an oversized frame, a reset): any
            # loss of the link is "offline" to the task that sends, never a crash
            log("net", "send failed: %r" % (e,))
            raise Offline()
        try:
            if n[0] > _PREVIEW:
                seen.append("...(%d chars)" % n[0])
            log(">", action + " ", seen)
        except MemoryError:  # no heap for the log line: the frame has gone all the same
            log(">", action)

    async def call(self, action, payload, timeout=_TIMEOUT, uid=None):
        """Send a CALL; return the CALLRESULT payload, raise CallError, Offline or TimeoutError.
        UID: the message id (a journaled message keeps its own on every attempt)."""
        async with self._lock:
            if self.conn is None or not (self.accepted or action == "BootNotification"):
                raise Offline()
            self._seq += 1
            self._id = uid or str(self._seq)
            self._action = action
            self._got.clear()
            try:
                await self._send([_CALL, self._id, action, payload], action)
                await asyncio.wait_for(self._got.wait(), timeout)
            finally:
                self._id = None
            reply = self._reply
            self._reply = None
            if reply is None:
                raise Offline()
            if reply[0] == _ERROR:
                raise CallError(reply[2], reply[3], reply[4] if len(reply) > 4 else None)
            return reply[2]

    def after(self, name, coro):
        """Run CORO as task NAME of app.spawn once the answer to the CALL being handled has
        been sent (a task of that name still running is replaced)."""
        self._after.append((name, coro))

    async def serve(self, conn):
        """Read frames from CONN until it closes."""
        self.conn = conn
        self.prepare()
        conn.rxbuf = self._rx
        self._invalid = 0
        try:
            while True:
                text = await conn.recv(True)  # UTF-8 bytes: no str copy of large messages
                if getattr(conn, "dropped", 0):  # no heap to hold it: only its start came
                    await self._too_large(text, conn.dropped)
                else:
                    await self._frame(text)
                text = None
        finally:
            self.conn = None
            self.accepted = False
            if self._id is not None:
                self._reply = None
                self._got.set()

    async def _frame(self, text):
        self.last_ms = time.ticks_ms()
        try:
            msg = _raw_call(text) or json.loads(text)
        except ValueError:
            msg = None
        except MemoryError:  # a payload too large for the heap as objects: answer, keep the link
            return await self._too_large(text, len(text))
        if type(msg) is not list or len(msg) < 3 or type(msg[1]) is not str:
            _log_frame(text, "bad frame ")
            uid = msg[1] if type(msg) is list and len(msg) > 1 and type(msg[1]) is str else "-1"
            return await self._error(uid, CallError(FORMATION, "not an OCPP-J frame"))
        kind, uid = msg[0], msg[1]
        if len(uid) > _UID_MAX:  # OCPP-J: a unique id is at most 36 characters; act on nothing
            log("<", "bad frame: a unique id of %d characters" % len(uid))
            return await self._error(uid[:_UID_MAX], CallError(FORMATION, "unique id longer than 36"))
        if kind == _CALL:
            return await self._incoming(msg, text)
        if kind in (_RESULT, _ERROR):
            if uid == self._id and (kind == _RESULT and len(msg) == 3 and type(msg[2]) is dict
                                    or kind == _ERROR and len(msg) >= 4):
                _log_frame(text, "%s " % self._action)
                self._reply = msg
                self._id = None
                self._got.set()
            else:
                log("<", "ignored answer " + uid)
            return
        await self._error(uid, CallError(FORMATION, "unknown message type"))

    async def _too_large(self, text, n):
        """Frame TEXT (or its start) of N bytes does not fit in the heap: a CALL is answered
        InternalError, anything else dropped; the link stays up."""
        msg = _head(text)
        log("!", "no heap for a frame of %d bytes" % n)
        self.app.security_event("MemoryExhaustion", "frame of %d bytes" % n)
        if msg and msg[0] == _CALL and type(msg[1]) is str and len(msg[1]) <= _UID_MAX:
            await self._error(msg[1], CallError(INTERNAL, "MemoryError: a frame of %d bytes" % n))

    async def _incoming(self, msg, text):
        uid = msg[1]
        _log_frame(text, "%s " % (msg[2],))
        if len(msg) != 4 or type(msg[2]) is not str:
            return await self._error(uid, CallError(FORMATION, "a CALL has 4 elements"))
        action, payload = msg[2], msg[3]
        raw = type(payload) is memoryview  # a _RAW action: its handler validates the text
        before = tasks = None
        try:
            name, fn = routes.route(action)
            if name != "localauth" and _LIST[0] in sys.modules:  # a run of the list's CALLs ended
                unload([k for k in sys.modules if k not in _LIST])
            if "uwallbox.profiles." + name not in sys.modules:  # loaded for this CALL only
                before = list(sys.modules)
                tasks = list(getattr(self.app, "tasks", {}).values())
            handler = getattr(__import__("uwallbox.profiles." + name, None, None, (fn,)), fn)
            if not raw:
                schema.validate(action, payload)
            result = handler(self.app, payload)
            if hasattr(result, "send"):
                result = await result
        except CallError as e:
            self._after.clear()
            self._release(before, tasks)
            return await self._error(uid, e)
        except Exception as e:  # a handler bug must not kill the connection
            msg[3] = payload = None  # most likely what filled the heap: the answer needs room
            self._after.clear()
            self._release(before, tasks)
            log("!", "%s failed: %r" % (action, e))
            if isinstance(e, MemoryError):
                self.app.security_event("MemoryExhaustion", action)
            return await self._error(uid, CallError(INTERNAL, repr(e)[:200]))
        try:
            await self._send([_RESULT, uid, result], action)
        finally:
            result = None
            if self._after:
                before = None
            self._release(before, tasks)
        while self._after:
            self.app.spawn(*self._after.pop(0))

    def _release(self, before, tasks):
        """Unload what a CALL imported (BEFORE: the modules loaded until then) unless it started a
        task (TASKS: those running until then)."""
        if before is None:
            return
        for t in getattr(self.app, "tasks", {}).values():
            if t not in tasks:
                return
        unload(before, _RESIDENT)

    async def _error(self, uid, e):
        if e.code == FORMATION:
            self._invalid += 1
            if self._invalid == _INVALID:
                self.app.security_event("InvalidMessages", "%d malformed frames" % _INVALID)
        await self._send([_ERROR, uid, e.code, e.description, e.details], "CALLERROR")
