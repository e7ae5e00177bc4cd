#!/usr/bin/env python3
"""The bundled demo central system (CSMS) for uwallbox, built on the `ocpp` package.

Run it:  python tools/csms.py --port 9000 [--host 127.0.0.1] [--blocked TAG ...]
         charge points connect to ws://HOST:PORT/<chargePointId> (subprotocol ocpp1.6)

Use it from tests (it runs in a background thread with its own asyncio loop):

    csms = Csms().start()                        # port 0: a free port; csms.url
    boot = csms.wait_for("BootNotification")     # blocks; returns the payload
    csms.call("CP001", ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "2"}))
    csms.stop()

The `ocpp` package validates every CALL a charge point sends (and every answer to our CALLs)
against the OCA JSON schemas. Violations are answered with a CALLERROR as usual and also
collected in `csms.errors`, which a test asserts to be empty.
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import inspect
import itertools
import json
import logging
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import unquote

from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, validate_payload
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidHeader
from websockets.headers import parse_authorization_basic

ERROR_CODES = {  # OCPP-J 1.6 CALLERROR codes (sic: Formation, Occurence)
    "NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
    "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
    "TypeConstraintViolation", "GenericError"}

_quiet = logging.getLogger("uwallbox.csms.ocpp")  # we log and record everything ourselves
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compact(obj, limit=1000):
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Message:
    """One frame on the wire, as recorded by the CSMS."""
    time: float          # time.time() when recorded
    cp_id: str
    direction: str       # "in": charge point -> CSMS, "out": CSMS -> charge point
    kind: str            # "call", "result", "error", or "invalid" (not an OCPP-J frame)
    action: str | None   # for a result/error: the action of the CALL it answers (None if unknown)
    unique_id: str | None
    payload: object      # dict; for an error {"errorCode", "errorDescription", "errorDetails"}
    text: str            # the frame exactly as sent
    raw: bool = False    # sent by send_raw(), or a reply to no call() of ours


class CallErrorResponse(Exception):
    """The charge point answered our CALL with a CALLERROR."""

    def __init__(self, code, description, details):
        super().__init__(f"{code}: {description} {compact(details)}")
        self.code, self.description, self.details = code, description, details


def parse_frame(text):
    """(kind, unique_id, action, payload) of an OCPP-J frame; kind "invalid" if it is none."""
    try:
        f = json.loads(text)
        if isinstance(f, list) and len(f) >= 3 and isinstance(f[1], str):
            if f[0] == 2 and len(f) == 4 and isinstance(f[2], str) and isinstance(f[3], dict):
                return "call", f[1], f[2], f[3]
            if f[0] == 3 and len(f) == 3 and isinstance(f[2], dict):
                return "result", f[1], None, f[2]
            if (f[0] == 4 and len(f) == 5 and isinstance(f[2], str) and isinstance(f[3], str)
                    and isinstance(f[4], dict)):
                return "error", f[1], None, dict(zip(("errorCode", "errorDescription", "errorDetails"), f[2:]))
    except ValueError:
        pass
    return "invalid", None, None, text


class Station(ChargePoint):
    """One connected charge point, as the CSMS sees it. Handlers answer like a simple CSMS;
    `csms.handlers[action] = fn(cp_id, payload) -> reply dict` overrides one."""

    def __init__(self, cp_id, connection, csms):
        super().__init__(cp_id, connection, logger=_quiet)
        self.csms = csms
        self._calls_in = {}    # unique id -> action of a CALL from the charge point, until answered
        self._calls_out = {}   # unique id -> action of a CALL we sent, until answered
        self._pending = {}     # unique id -> future of a send_call() waiting for its answer
        self._payload = None   # camelCase payload of the CALL being handled
        for action, route in self.route_map.items():
            route["_on_action"] = self._hooked(action, route["_on_action"])

    def _hooked(self, action, default):
        async def handler(**kw):
            try:
                custom = self.csms.handlers.get(action)
                if custom is None:
                    reply = default(**kw)
                    return await reply if inspect.isawaitable(reply) else reply
                reply = custom(self.id, self._payload)
                reply = await reply if inspect.isawaitable(reply) else reply
                return getattr(call_result, action)(**camel_to_snake_case(reply))
            except OCPPError:
                raise  # a deliberate CALLERROR from a custom handler
            except Exception as e:
                self.csms._error(self.id, f"CSMS handler for {action} failed: {e!r}")
                raise
        return handler

    # -- the wire --------------------------------------------------------------------------------

    def _note(self, direction, text, raw=False):
        kind, uid, action, payload = parse_frame(text)
        calls, answered = self._calls_in, self._calls_out
        if direction == "out":
            calls, answered = answered, calls
        if kind == "call":
            calls[uid] = action
        elif kind != "invalid":
            action = answered.pop(uid, None)
            raw = raw or (direction == "in" and uid not in self._pending)
        return self.csms._record(Message(time.time(), self.id, direction, kind, action, uid, payload, text, raw))

    async def _send(self, text):
        self._note("out", text)
        await self._connection.send(text)

    async def send_raw(self, text):
        self._note("out", text, raw=True)
        await self._connection.send(text)

    async def route_message(self, text):
        m = self._note("in", text)
        if m.kind == "invalid":
            self.csms._error(self.id, f"not an OCPP-J frame: {compact(text, 300)}")
        elif m.kind == "call":
            if len(m.unique_id) > 36:
                self.csms._error(self.id, f"{m.action}: uniqueId longer than 36 characters")
            self._payload, self._uid = m.payload, m.unique_id
            msg = Call(m.unique_id, m.action, m.payload)
            try:
                await self._handle_call(msg)  # validates the payload, runs the @on handler, answers
            except OCPPError as e:
                self.csms._error(self.id, f"{m.action}: {e}")
                await self._send(msg.create_call_error(e).to_json())
        else:
            if m.kind == "error" and m.payload["errorCode"] not in ERROR_CODES:
                self.csms._error(self.id, f"CALLERROR code {m.payload['errorCode']!r} is not an OCPP 1.6 code")
            future = self._pending.get(m.unique_id)
            if future and not future.done():
                future.set_result(m)

    async def send_call(self, action, payload, timeout):
        """CALL the charge point; return the CALLRESULT payload or raise CallErrorResponse."""
        call = Call(str(uuid.uuid4()), action, payload)
        text = call.to_json()
        await validate_payload(call, "1.6")  # a bad request from a test fails here, not in the firmware
        async with self._call_lock:  # one CALL outstanding at a time
            future = self._pending[call.unique_id] = asyncio.get_running_loop().create_future()
            try:
                await self._send(text)
                m = await asyncio.wait_for(future, timeout)
            finally:
                del self._pending[call.unique_id]
        if m.kind == "error":
            raise CallErrorResponse(*m.payload.values())
        try:
            await validate_payload(CallResult(m.unique_id, m.payload, action), "1.6")
        except OCPPError as e:
            self.csms._error(self.id, f"{action} response: {e}")
            raise
        return m.payload

    # -- answers to the charge point's CALLs ------------------------------------------------------

    @on("BootNotification")
    def on_boot_notification(self, **_):
        return call_result.BootNotification(
            current_time=now_iso(), interval=self.csms.interval, status=self.csms.next_boot_status())

    @on("Heartbeat")
    def on_heartbeat(self, **_):
        return call_result.Heartbeat(current_time=now_iso())

    @on("StatusNotification")
    def on_status_notification(self, **_):
        return call_result.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_tag, **_):
        return call_result.Authorize(id_tag_info=self.csms.id_tag_info(id_tag))

    @on("StartTransaction")
    def on_start_transaction(self, connector_id, id_tag, meter_start, timestamp, **_):
        # a repeat (the same message id: our answer was lost) gets the transactionId it got first
        key = (self.id, self._uid)
        tx = self.csms.starts.get(key)
        if tx is None:
            tx = self.csms.starts[key] = self.csms._new_transaction(
                self.id, connector_id, id_tag, meter_start, timestamp)
        return call_result.StartTransaction(transaction_id=tx, id_tag_info=self.csms.id_tag_info(id_tag))

    @on("MeterValues")
    def on_meter_values(self, **_):
        return call_result.MeterValues()

    @on("StopTransaction")
    def on_stop_transaction(self, transaction_id, meter_stop, timestamp, id_tag=None, reason=None, **_):
        self.csms._end_transaction(transaction_id, meter_stop, timestamp, reason)
        info = self.csms.id_tag_info(id_tag) if id_tag else None
        return call_result.StopTransaction(id_tag_info=info)

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id, **_):
        known = vendor_id in self.csms.vendors
        return call_result.DataTransfer(status="Accepted" if known else "UnknownVendorId")

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status_notification(self, **_):
        return call_result.DiagnosticsStatusNotification()

    @on("FirmwareStatusNotification")
    def on_firmware_status_notification(self, **_):
        return call_result.FirmwareStatusNotification()

    @on("SecurityEventNotification")
    def on_security_event_notification(self, **_):
        return call_result.SecurityEventNotification()

    @on("SignCertificate")
    def on_sign_certificate(self, **_):
        return call_result.SignCertificate(status="Accepted")

    @on("LogStatusNotification")
    def on_log_status_notification(self, **_):
        return call_result.LogStatusNotification()

    @on("SignedFirmwareStatusNotification")
    def on_signed_firmware_status_notification(self, **_):
        return call_result.SignedFirmwareStatusNotification()


class Csms:
    """A demo CSMS in a background thread, with synchronous helpers for tests.

    Settings (plain attributes, may be changed while running):
      interval     BootNotification interval (heartbeat, or retry while Pending/Rejected), s
      boot_status  "Accepted"/"Pending"/"Rejected", or a list consumed one per BootNotification
                   (the last entry stays)
      blocked      idTags answered Blocked (others Accepted)
      groups       {idTag: parentIdTag}: the group each idTag's idTagInfo names
      vendors      DataTransfer vendorIds answered Accepted (others UnknownVendorId)
      auth         None, or {cp_id: password}: HTTP Basic auth required (else 401)
      handlers     {action: fn(cp_id, payload) -> reply dict}: custom answers
    Results: errors (list of str), transactions ({id: dict}), messages(), raw_replies().
    """

    def __init__(self, host="127.0.0.1", port=0, *, interval=300, boot_status="Accepted", blocked=(),
                 vendors=("uwallbox",), auth=None, ssl_context=None, ping_interval=None,
                 log=lambda line: print(line, flush=True)):
        self.host, self.port = host, port
        self.interval = interval
        self.boot_status = boot_status
        self.blocked = set(blocked)
        self.groups = {}
        self.vendors = set(vendors)
        self.auth = auth
        self.ssl_context = ssl_context
        self.ping_interval = ping_interval
        self.handlers = {}
        self.errors = []
        self.transactions = {}
        self.connects = {}     # cp_id -> number of accepted connections so far
        self.closes = {}       # cp_id -> the close code the charge point sent at each disconnect (None: none)
        self.starts = {}       # (cp_id, message id) -> transactionId of each StartTransaction
        self.down = False      # an outage (set_down): connections refused (503), records kept
        self._log = log
        self._records = []
        self._stations = {}
        self._cond = threading.Condition()
        self._tx_ids = itertools.count(1)
        self._loop = self._thread = self._stopping = None

    @property
    def url(self):
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self):
        """Start serving in a background thread; returns (self) once listening."""
        ready, failed = threading.Event(), []

        def run():
            try:
                asyncio.run(self._main(ready))
            except Exception as e:  # could not listen
                failed.append(e)
                ready.set()

        self._thread = threading.Thread(target=run, name="csms", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            self._thread = None
            raise failed[0]
        return self

    def stop(self):
        """Close every connection and stop the server thread."""
        if self._thread:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(15)
            self._thread = None

    async def _main(self, ready):
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        async with serve(self._connection, self.host, self.port, subprotocols=["ocpp1.6"],
                         process_request=self._check_request, ssl=self.ssl_context,
                         ping_interval=self.ping_interval, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._print("-", f"CSMS listening on {self.url}/<chargePointId>")
            ready.set()
            await self._stopping.wait()

    @staticmethod
    def _cp_id(path):
        return unquote(path.split("?")[0].rstrip("/").rsplit("/", 1)[-1])

    def _check_request(self, connection, request):
        cp_id = self._cp_id(request.path)
        if not cp_id:
            return connection.respond(HTTPStatus.NOT_FOUND, "connect to /<chargePointId>\n")
        if self.down:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "outage\n")
        if self.auth is None:
            return None
        try:
            user, password = parse_authorization_basic(request.headers["Authorization"])
        except (KeyError, InvalidHeader):
            user = password = None
        expected = self.auth.get(cp_id)
        if user == cp_id and expected is not None and hmac.compare_digest(
                password.encode(errors="surrogateescape"), expected.encode()):
            return None
        self._print(cp_id, "refused: HTTP Basic auth " + ("missing" if user is None else "wrong") + " (401)")
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="uwallbox"'
        return response

    async def _connection(self, ws):
        cp_id = self._cp_id(ws.request.path)
        if ws.subprotocol != "ocpp1.6":
            self._print(cp_id, "refused: subprotocol ocpp1.6 not requested")
            await ws.close(1002, "subprotocol ocpp1.6 required")
            return
        station = Station(cp_id, ws, self)
        with self._cond:
            old = self._stations.get(cp_id)
            self._stations[cp_id] = station
            self.connects[cp_id] = self.connects.get(cp_id, 0) + 1
            self._cond.notify_all()
        self._print(cp_id, f"connected from {ws.remote_address[0]}")
        if old:
            await old._connection.close(1000, "replaced by a new connection")
        try:
            await station.start()
        except ConnectionClosed as e:
            self.closes.setdefault(cp_id, []).append(e.rcvd.code if e.rcvd else None)
            self._print(cp_id, f"disconnected ({e.rcvd.code if e.rcvd else 'no close frame'})")
        finally:
            with self._cond:
                if self._stations.get(cp_id) is station:
                    del self._stations[cp_id]
                self._cond.notify_all()
            for future in station._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{cp_id} disconnected"))

    def wait_closes(self, cp_id, n, timeout=10):
        """The close codes of CP_ID's disconnects (`closes`) once there are N of them; TimeoutError
        after TIMEOUT seconds. (A disconnect is recorded by the server's thread, maybe after the
        charge point has gone.)"""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.closes.get(cp_id, ())) >= n, timeout):
                raise TimeoutError(f"{cp_id}: {len(self.closes.get(cp_id, ()))} disconnects, not {n}")
            return list(self.closes[cp_id])

    # -- records and log -------------------------------------------------------------------------

    def _print(self, cp_id, text):
        if self._log:
            self._log(f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} {cp_id} {text}")

    def _record(self, m):
        with self._cond:
            self._records.append(m)
            self._cond.notify_all()
        arrow = "->" if m.direction == "in" else "<-"
        if m.kind == "invalid" or (m.raw and m.direction == "out"):
            self._print(m.cp_id, f"{arrow} raw {compact(m.text)}")
        else:
            name = (m.action or "?") + {"call": "", "result": ".conf", "error": ".error"}[m.kind]
            self._print(m.cp_id, f"{arrow} {name} {compact(m.payload)}")
        return m

    def _error(self, cp_id, text):
        with self._cond:
            self.errors.append(f"{cp_id}: {text}")
            self._cond.notify_all()
        self._print(cp_id, f"!! {text}")

    def next_boot_status(self):
        s = self.boot_status
        if isinstance(s, list):
            return s.pop(0) if len(s) > 1 else s[0]
        return s

    def id_tag_info(self, id_tag):
        return IdTagInfo(status="Blocked" if id_tag in self.blocked else "Accepted",
                         parent_id_tag=self.groups.get(id_tag))

    def _new_transaction(self, cp_id, connector_id, id_tag, meter_start, timestamp):
        with self._cond:
            tx = next(self._tx_ids)
            self.transactions[tx] = dict(id=tx, cp_id=cp_id, connector_id=connector_id, id_tag=id_tag,
                                         meter_start=meter_start, start=timestamp,
                                         meter_stop=None, stop=None, reason=None)
        return tx

    def _end_transaction(self, tx, meter_stop, timestamp, reason):
        with self._cond:
            if tx in self.transactions:
                self.transactions[tx].update(meter_stop=meter_stop, stop=timestamp, reason=reason or "Local")

    # -- synchronous helpers for tests -----------------------------------------------------------

    def mark(self):
        """Position in the record now: pass as `since=` to only look at later messages."""
        with self._cond:
            return len(self._records)

    def messages(self, cp_id=None, action=None, direction=None, kind=None, since=0):
        """Recorded frames (Message) in order, filtered."""
        with self._cond:
            return [m for m in self._records[since:]
                    if (cp_id is None or m.cp_id == cp_id) and (action is None or m.action == action)
                    and (direction is None or m.direction == direction) and (kind is None or m.kind == kind)]

    def _wait(self, match, since, timeout):
        """(index, message) of the first recorded message from `since` on that matches, waiting
        up to `timeout` s for it; (None, None) on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(since, len(self._records)):
                    if match(self._records[i]):
                        return i, self._records[i]
                since = len(self._records)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, None
                self._cond.wait(left)

    def wait_for(self, action, predicate=None, timeout=30, cp_id=None, since=0):
        """Block until a charge point has sent a CALL `action` whose payload satisfies `predicate`
        and the CSMS has answered it; return that payload. Messages received before the call count
        too, unless `since` (a mark()) excludes them. Raises TimeoutError listing the last messages."""
        deadline = time.monotonic() + timeout
        i, m = self._wait(lambda m: m.direction == "in" and m.kind == "call" and m.action == action
                          and (cp_id is None or m.cp_id == cp_id)
                          and (predicate is None or predicate(m.payload)), since, timeout)
        if m is None:
            recent = "\n".join(f"  {m.cp_id} {'->' if m.direction == 'in' else '<-'} {m.action}"
                               f"{'' if m.kind == 'call' else '.' + m.kind} {compact(m.payload, 200)}"
                               for m in self.messages(cp_id)[-15:])
            raise TimeoutError(f"no matching {action} from {cp_id or 'any charge point'} within "
                               f"{timeout} s; last messages:\n{recent or '  (none)'}")
        self._wait(lambda a: a.direction == "out" and a.kind in ("result", "error") and a.cp_id == m.cp_id
                   and a.unique_id == m.unique_id, i, max(0, deadline - time.monotonic()))
        return m.payload

    def connected(self, cp_id):
        with self._cond:
            return cp_id in self._stations

    def wait_connected(self, cp_id, timeout=30):
        with self._cond:
            if not self._cond.wait_for(lambda: cp_id in self._stations, timeout):
                raise TimeoutError(f"{cp_id} did not connect within {timeout} s")

    def _station(self, cp_id):
        with self._cond:
            station = self._stations.get(cp_id)
        if station is None:
            raise ConnectionError(f"{cp_id} is not connected")
        return station

    def _run(self, coro, timeout):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, cp_id, request, timeout=30):
        """Send a CALL to a connected charge point: `request` is an `ocpp.v16.call.X(...)` object or
        an (action, payload) pair. Returns the CALLRESULT payload (camelCase dict); raises
        CallErrorResponse on a CALLERROR, TimeoutError without an answer."""
        if isinstance(request, tuple):
            action, payload = request
        else:
            action = type(request).__name__
            payload = remove_nones(snake_to_camel_case(serialize_as_dict(request)))
        return self._run(self._station(cp_id).send_call(action, payload, timeout), timeout + 5)

    def send_raw(self, cp_id, text, timeout=None):
        """Send `text` as it is in one websocket text frame. With a timeout, wait for the next reply
        (a CALLRESULT/CALLERROR answering none of our call()s) and return it as a parsed list,
        or None if none came."""
        since = self.mark()
        self._run(self._station(cp_id).send_raw(text), 10)
        if timeout is None:
            return None
        _, m = self._wait(lambda m: m.raw and m.direction == "in" and m.cp_id == cp_id, since, timeout)
        return json.loads(m.text) if m else None

    def raw_replies(self, cp_id=None):
        """Replies (parsed lists) that answered none of our call()s, e.g. to send_raw() frames."""
        return [json.loads(m.text) for m in self.messages(cp_id, direction="in") if m.raw]

    def set_down(self, down):
        """An outage of the central system (DOWN true: every connection closed, new ones refused
        with 503) or its end; unlike stop(), the records, transactions and port stay."""
        self.down = down
        if down:
            with self._cond:
                stations = list(self._stations.values())
            for st in stations:
                try:
                    self._run(st._connection.close(1001, "outage"), 10)
                except Exception:
                    pass

    def disconnect(self, cp_id):
        """Close the charge point's connection from the CSMS side."""
        self._run(self._station(cp_id)._connection.close(1001, "closed by the CSMS"), 10)


def main(argv=None):
    p = argparse.ArgumentParser(description="uwallbox demo CSMS (OCPP 1.6J)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--interval", type=int, default=300, help="heartbeat interval in BootNotification")
    p.add_argument("--blocked", nargs="+", action="extend", default=[], metavar="TAG",
                   help="idTags answered Blocked")
    p.add_argument("--auth", action="append", default=[], metavar="ID:PASSWORD",
                   help="require HTTP Basic auth (security profile 1)")
    p.add_argument("--panel", type=int, metavar="PORT",
                   help="serve the operator's web page (tools/csms_panel.py) on PORT (0: a free one)")
    args = p.parse_args(argv)
    auth = dict(a.split(":", 1) for a in args.auth) or None
    csms = Csms(args.host, args.port, interval=args.interval, blocked=args.blocked, auth=auth)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    csms.start()
    if args.panel is not None:
        from csms_panel import CsmsPanel
        print(f"central-system panel: {CsmsPanel(csms, port=args.panel).start().url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        csms.stop()


if __name__ == "__main__":
    main()
