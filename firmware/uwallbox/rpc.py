"""OCPP-J RPC over one WebSocket: CALL / CALLRESULT / CALLERROR."""
import asyncio
import json
import random

from . import actions, schema
from .errors import CallError, FORMATION, INTERNAL
from .log import log

_CALL, _RESULT, _ERROR = 2, 3, 4
_TIMEOUT = 30  # seconds to wait for the CSMS's answer


class Offline(Exception):
    """No connection (or no accepted registration) to send a CALL on."""


def _redact(action, payload):
    if action == "ChangeConfiguration" and payload.get("key") == "AuthorizationKey":
        return {"key": "AuthorizationKey", "value": "***"}
    return payload


class Rpc:
    """Sends our CALLs one at a time and routes the CSMS's CALLs to handlers."""

    def __init__(self, app):
        self.app = app
        self.conn = None
        self.accepted = False  # BootNotification accepted on this boot
        self._lock = asyncio.Lock()
        self._id = None
        self._reply = None
        self._got = asyncio.Event()
        self._seq = random.getrandbits(24)
        self._after = []

    async def _send(self, frame):
        if self.conn is None:
            raise Offline()
        try:
            await self.conn.send(json.dumps(frame))
        except OSError:
            raise Offline()

    async def call(self, action, payload, timeout=_TIMEOUT):
        """Send a CALL; return the CALLRESULT payload, raise CallError, Offline or TimeoutError."""
        async with self._lock:
            if self.conn is None or not (self.accepted or action == "BootNotification"):
                raise Offline()
            self._seq += 1
            self._id = str(self._seq)
            self._got.clear()
            log(">", "%s %s" % (action, json.dumps(payload)))
            try:
                await self._send([_CALL, self._id, action, payload])
                await asyncio.wait_for(self._got.wait(), timeout)
            finally:
                self._id = None
            reply = self._reply
            self._reply = None
            if reply is None:
                raise Offline()
            if reply[0] == _ERROR:
                log("<", "%s CALLERROR %s %s" % (action, reply[2], reply[3]))
                raise CallError(reply[2], reply[3], reply[4] if len(reply) > 4 else None)
            log("<", "%s %s" % (action, json.dumps(reply[2])))
            return reply[2]

    def after(self, coro):
        """Run CORO once the answer to the CALL being handled has been sent."""
        self._after.append(coro)

    async def serve(self, conn):
        """Read frames from CONN until it closes."""
        self.conn = conn
        try:
            while True:
                text = await conn.recv()
                await self._frame(text)
        finally:
            self.conn = None
            self.accepted = False
            if self._id is not None:
                self._reply = None
                self._got.set()

    async def _frame(self, text):
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if type(msg) is not list or len(msg) < 3 or type(msg[1]) is not str:
            log("<", "bad frame " + str(text)[:80])
            uid = msg[1] if type(msg) is list and len(msg) > 1 and type(msg[1]) is str else "-1"
            return await self._error(uid, CallError(FORMATION, "not an OCPP-J frame"))
        kind, uid = msg[0], msg[1]
        if kind == _CALL:
            return await self._incoming(msg)
        if kind in (_RESULT, _ERROR):
            if uid == self._id and (kind == _RESULT and len(msg) == 3 and type(msg[2]) is dict
                                    or kind == _ERROR and len(msg) >= 4):
                self._reply = msg
                self._id = None
                self._got.set()
            else:
                log("<", "ignored answer " + uid)
            return
        await self._error(uid, CallError(FORMATION, "unknown message type"))

    async def _incoming(self, msg):
        uid = msg[1]
        if len(msg) != 4 or type(msg[2]) is not str:
            return await self._error(uid, CallError(FORMATION, "a CALL has 4 elements"))
        action, payload = msg[2], msg[3]
        log("<", "%s %s" % (action, json.dumps(_redact(action, payload) if type(payload) is dict else payload)))
        try:
            handler = actions.handler(action)
            schema.validate(action, payload)
            result = handler(self.app, payload)
            if hasattr(result, "send"):
                result = await result
        except CallError as e:
            self._after.clear()
            return await self._error(uid, e)
        except Exception as e:  # a handler bug must not kill the connection
            self._after.clear()
            log("!", "%s failed: %r" % (action, e))
            return await self._error(uid, CallError(INTERNAL, repr(e)[:200]))
        log(">", "%s %s" % (action, json.dumps(result)))
        await self._send([_RESULT, uid, result])
        while self._after:
            asyncio.create_task(self._after.pop(0))

    async def _error(self, uid, e):
        log(">", "CALLERROR %s %s" % (e.code, e.description))
        await self._send([_ERROR, uid, e.code, e.description, e.details])
