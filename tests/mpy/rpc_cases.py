# MicroPython unit tests of OCPP-J framing, routing, validation and configuration.
import asyncio
import json

from uwallbox import clock
from uwallbox.errors import CallError
from uwallbox.ocpp import schema
from uwallbox.ocpp.rpc import Rpc, Offline
from uwallbox.station.config import Config


class FakeConn:
    """A WebSocket stand-in: frames pushed by the test, frames sent recorded."""

    def __init__(self):
        self.inbox = []
        self.sent = []
        self.wake = asyncio.Event()
        self.got = asyncio.Event()
        self.closed = False

    def push(self, frame):
        self.inbox.append(frame if type(frame) is str else json.dumps(frame))
        self.wake.set()

    async def recv(self, raw=False):
        while not self.inbox:
            if self.closed:
                raise OSError("closed")
            self.wake.clear()
            await self.wake.wait()
        return bytearray(self.inbox.pop(0), "utf-8") if raw else self.inbox.pop(0)

    async def send_parts(self, parts):
        self.sent.append(json.loads("".join(parts)))
        self.got.set()

    async def next_sent(self):
        while not self.sent:
            self.got.clear()
            await self.got.wait()
        return self.sent.pop(0)


class FakeApp:
    def __init__(self):
        self.config = Config()


async def _serving():
    app = FakeApp()
    rpc = Rpc(app)
    conn = FakeConn()
    task = asyncio.create_task(rpc.serve(conn))
    await asyncio.sleep_ms(0)
    return app, rpc, conn, task


async def _answer(frame):
    app, rpc, conn, task = await _serving()
    conn.push(frame)
    out = await conn.next_sent()
    task.cancel()
    return out


def test_clock_roundtrip():
    for s in ("2023-11-14T22:13:20Z", "2000-02-29T00:00:00Z", "2099-12-31T23:59:59Z"):
        assert clock.iso(clock.parse(s)) == s, s
    assert clock.parse("2023-11-14T23:13:20.5+01:00") == 1700000000
    for bad in ("2023-13-01T00:00:00Z", "yesterday", "2023-11-14 22:13", "2023-11-14T22:13:20X"):
        try:
            clock.parse(bad)
            assert False, bad
        except ValueError:
            pass


def test_clock_set_and_advance():
    c = clock.Clock()
    c.set(1700000000)
    assert abs(c.now() - 1700000000) < 1
    c.advance(3600)
    assert c.iso().startswith("2023-11-14T23:13")


def _code(action, payload):
    try:
        schema.validate(action, payload)
    except CallError as e:
        return e.code
    return None


def test_schema_codes():
    assert _code("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "10"}) is None
    assert _code("ChangeConfiguration", {"key": "HeartbeatInterval"}) == "OccurenceConstraintViolation"
    assert _code("ChangeConfiguration", {"key": "A", "value": "1", "x": 1}) == "OccurenceConstraintViolation"
    assert _code("ChangeConfiguration", {"key": 5, "value": "1"}) == "TypeConstraintViolation"
    assert _code("ChangeConfiguration", {"key": "k" * 51, "value": "1"}) == "TypeConstraintViolation"
    assert _code("Reset", {"type": "Medium"}) == "PropertyConstraintViolation"
    assert _code("ChangeAvailability", {"connectorId": 1.5, "type": "Operative"}) == "TypeConstraintViolation"
    assert _code("ReserveNow", {"connectorId": 1, "expiryDate": "soon", "idTag": "A", "reservationId": 1}) == "PropertyConstraintViolation"
    assert _code("GetConfiguration", {"key": ["a", 3]}) == "TypeConstraintViolation"
    assert _code("Reset", []) == "TypeConstraintViolation"
    assert _code("RemoteStartTransaction", {"idTag": "A", "chargingProfile": {"chargingProfileId": 1}}) == "OccurenceConstraintViolation"


def test_config_change_answers():
    c = Config()
    assert c.change("HeartbeatInterval", "120") == "Accepted"
    assert c["HeartbeatInterval"] == 120
    assert c.change("HeartbeatInterval", "-1") == "Rejected"
    assert c.change("HeartbeatInterval", "ten") == "Rejected"
    assert c.change("NumberOfConnectors", "2") == "Rejected"
    assert c.change("NoSuchKey", "1") == "NotSupported"
    assert c.change("LocalPreAuthorize", "TRUE") == "Accepted" and c["LocalPreAuthorize"] is True
    assert c.change("LocalPreAuthorize", "yes") == "Rejected"
    assert c.change("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage") == "Accepted"
    assert c.change("MeterValuesSampledData", "Energy.Active.Import.Register,Bogus") == "Rejected"
    assert c.change("ConnectorPhaseRotation", "0.RST,1.TSR") == "Accepted"
    assert c.change("ConnectorPhaseRotation", "1.XYZ") == "Rejected"
    assert c.change("SecurityProfile", "1") == "RebootRequired"
    assert c.change("SecurityProfile", "0") == "Rejected"  # may only be raised
    assert c.change("AuthorizationKey", "short") == "Rejected"
    assert c.change("AuthorizationKey", "0123456789abcdef") == "RebootRequired"
    from uwallbox.profiles import core
    app = FakeApp()
    app.config = c
    listed = [k["key"] for k in core.get_configuration(app, {})["configurationKey"]]
    assert "AuthorizationKey" not in listed and "HeartbeatInterval" in listed
    asked = core.get_configuration(app, {"key": ["AuthorizationKey", "LocalPreAuthorize"]})
    assert asked["unknownKey"] == ["AuthorizationKey"]
    assert asked["configurationKey"] == [{"key": "LocalPreAuthorize", "readonly": False, "value": "true"}]


def test_config_persists():
    c = Config()
    c.change("HeartbeatInterval", "77")
    c.change("MeterValueSampleInterval", "60")  # the default: not stored
    c2 = Config()
    assert c2["HeartbeatInterval"] == 77
    assert "MeterValueSampleInterval" not in c2.values


async def test_unknown_action_not_implemented():
    out = await _answer([2, "7", "Teleport", {}])
    assert out[:3] == [4, "7", "NotImplemented"], out


async def test_known_unsupported_action():
    from uwallbox.ocpp import routes
    has = routes.has
    routes.has = lambda name: name != "firmware"  # a build without the Firmware Management profile
    try:
        out = await _answer([2, "8", "GetDiagnostics", {"location": "ftp://x/"}])
    finally:
        routes.has = has
    assert out[:3] == [4, "8", "NotSupported"], out


async def test_bad_frames():
    assert (await _answer("not json"))[:3] == [4, "-1", "FormationViolation"]
    assert (await _answer({"a": 1}))[:3] == [4, "-1", "FormationViolation"]
    assert (await _answer([2, "9", "Reset"]))[:3] == [4, "9", "FormationViolation"]
    assert (await _answer([2, "9", "Reset", {}, 5]))[:3] == [4, "9", "FormationViolation"]
    assert (await _answer([7, "10", {}]))[:3] == [4, "10", "FormationViolation"]
    assert (await _answer([2, "11", "Reset", {}]))[:3] == [4, "11", "OccurenceConstraintViolation"]
    assert (await _answer([2, "12", "Reset", {"type": 1}]))[:3] == [4, "12", "TypeConstraintViolation"]


async def test_change_configuration_routed():
    out = await _answer([2, "c1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "9"}])
    assert out == [3, "c1", {"status": "Accepted"}], out


async def test_call_answers_incoming_while_waiting():
    app, rpc, conn, task = await _serving()
    rpc.accepted = True
    call = asyncio.create_task(rpc.call("Heartbeat", {}))
    sent = await conn.next_sent()
    assert sent[0] == 2 and sent[2] == "Heartbeat"
    conn.push([2, "in1", "ChangeConfiguration", {"key": "BlinkRepeat", "value": "2"}])
    assert await conn.next_sent() == [3, "in1", {"status": "Accepted"}]
    conn.push([3, "wrong-id", {"currentTime": "x"}])  # ignored
    conn.push([3, sent[1], {"currentTime": "2023-11-14T22:13:20Z"}])
    assert (await call) == {"currentTime": "2023-11-14T22:13:20Z"}
    task.cancel()


async def test_call_error_raised():
    app, rpc, conn, task = await _serving()
    rpc.accepted = True
    call = asyncio.create_task(rpc.call("Heartbeat", {}))
    sent = await conn.next_sent()
    conn.push([4, sent[1], "InternalError", "boom", {}])
    try:
        await call
        assert False
    except CallError as e:
        assert e.code == "InternalError" and e.description == "boom"
    task.cancel()


async def test_one_call_at_a_time_and_timeout():
    app, rpc, conn, task = await _serving()
    rpc.accepted = True
    first = asyncio.create_task(rpc.call("Heartbeat", {}, timeout=0.3))
    second = asyncio.create_task(rpc.call("Heartbeat", {}, timeout=5))
    s1 = await conn.next_sent()
    await asyncio.sleep_ms(100)
    assert conn.sent == []  # the second waits for the first
    try:
        await first
        assert False
    except asyncio.TimeoutError:
        pass
    s2 = await conn.next_sent()
    assert s2[1] != s1[1]
    conn.push([3, s1[1], {}])  # late answer to the first: ignored
    conn.push([3, s2[1], {"currentTime": "2023-11-14T22:13:20Z"}])
    assert (await second)["currentTime"]
    task.cancel()


async def test_no_call_before_boot_accepted():
    app, rpc, conn, task = await _serving()
    try:
        await rpc.call("Heartbeat", {})
        assert False
    except Offline:
        pass
    assert conn.sent == []
    task.cancel()


def test_parts_is_json():
    from uwallbox.ocpp.rpc import _parts
    frame = [3, "id", {"configurationKey": [{"key": "A", "readonly": True, "value": "1,2"}] * 3,
                       "unknownKey": [], "nested": {"a": [[1, 2.5], {"b": None}]}}]
    pieces = list(_parts(frame))
    assert json.loads("".join(pieces)) == frame
    assert max(len(p) for p in pieces) < 60, pieces  # opened up: no piece holds the whole list


async def test_connection_loss_fails_pending_call():
    app, rpc, conn, task = await _serving()
    rpc.accepted = True
    call = asyncio.create_task(rpc.call("Heartbeat", {}))
    await conn.next_sent()
    conn.closed = True
    conn.wake.set()
    try:
        await call
        assert False
    except Offline:
        pass


async def test_link_closing_while_sending_is_offline():
    # ws raises ConnectionClosed (1009 after an oversized frame, 1007 bad UTF-8, any close
    # mid-send), EOFError or OSError when the link goes while a frame is written: every one of
    # them is Offline to the task that sends, never an exception that reaches the crash guard
    from ws import ConnectionClosed
    for exc in (ConnectionClosed(1009, "message too big"), ConnectionClosed(1007, "bad UTF-8"),
                ConnectionClosed(1006), EOFError(), OSError(104)):
        app, rpc, conn, task = await _serving()
        rpc.accepted = True

        async def broken(parts, exc=exc):
            raise exc
        conn.send_parts = broken
        try:
            await rpc.call("MeterValues", {"connectorId": 1, "meterValue": []})
            assert False, "no exception"
        except Offline:
            pass
        # the answer to an incoming CALL on a closing link: the serving task ends, no crash
        conn.push([2, "9", "Heartbeat", {}])
        conn.closed = True
        try:
            await task
        except Offline:
            pass  # serve() ends with Offline (the app's connection task treats it as a lost link)


async def test_unique_id_longer_than_36_is_refused_and_nothing_done():
    # a Reset with a 5,000-character id once rebooted the charge point
    app, rpc, conn, task = await _serving()
    done = []
    app.reboot = lambda reason: done.append(reason)
    conn.push([2, "x" * 5000, "Reset", {"type": "Hard"}])
    reply = await conn.next_sent()
    assert reply[0] == 4 and reply[2] == "FormationViolation" and reply[1] == "x" * 36, reply[:3]
    conn.push([2, "y" * 36, "Heartbeat", {}])  # 36 is fine
    reply = await conn.next_sent()
    assert reply[0] != 4 or reply[2] != "FormationViolation", reply
    assert done == []
    task.cancel()


# -- issue 18, item 3: no request leaves state behind; a frame the heap cannot hold is answered --

def test_a_call_leaves_no_module_behind():
    # Each profile a hostile CALL named stayed imported: about 55 KB of code on a 32-bit port
    # after a few hundred frames, then MemoryError for every request and every reconnect.
    import gc
    import sys

    async def main():
        app, rpc, conn, task = await _serving()
        app.tasks = {}
        for i, (action, payload) in enumerate((("GetCompositeSchedule", {"connectorId": "x"}),
                                                ("CancelReservation", {"reservationId": 1}),
                                                ("GetInstalledCertificateIds", {"certificateType": 5}))):
            conn.push([2, "m%d" % i, action, payload])
            out = await conn.next_sent()
            assert out[0] in (3, 4) and out[1] == "m%d" % i, out
        task.cancel()
        loaded = [k for k in sys.modules if k.startswith("uwallbox.profiles.")]
        assert loaded == [], loaded
        for k in ("x509", "uwallbox.station.schedule", "uwallbox.system.transfer"):
            assert k not in sys.modules, k
        gc.collect()
    asyncio.run(main())


def test_log_view_of_a_received_frame():
    from uwallbox.ocpp.rpc import _shown
    short = bytearray(b'[3,"1",{}]')
    assert _shown(short) == ('[3,"1",{}]',)
    long = bytearray(('[2,"1","DataTransfer",{"data":"%s"}]' % ("\u00e9" * 400)).encode())
    out = "".join(_shown(long))
    assert out.startswith('[2,"1","DataTransfer",{"data":"\u00e9\u00e9')
    assert out.endswith("...(%d chars)" % len(long)) and len(out) < 300 + 20  # cut on a character
    assert _shown(bytearray(b'{"key":"AuthorizationKey","value":"x"}')) == \
        ("(38 bytes with an AuthorizationKey: not shown)",)


def test_a_frame_is_logged_in_pieces_without_a_string_of_the_line():
    # a frame's log line was joined, formatted, then formatted again with the time: ~1 KB at the
    # end of every send, the peak of a MeterValues near the frozen image's limit
    import gc

    from uwallbox import log as logmod
    pieces = ["x" * 100, "y" * 100, "z" * 100, "...(900 chars)"]
    logmod.log(">", "MeterValues ", pieces)  # warm up
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        logmod.log(">", "MeterValues ", pieces)
        used = gc.mem_alloc() - before
    finally:
        gc.enable()
    assert used < 200, used  # the time and tag, not a 330-character line (3 of them before)
    logmod.tail = []
    try:
        logmod.log(">", "MeterValues ", pieces)
        assert len(logmod.tail[0]) == 160 and logmod.tail[0].split(" MeterValues ")[1].startswith("x" * 100 + "y")
    finally:
        logmod.tail = None


def test_a_call_whose_action_is_no_string_is_logged_and_refused():
    async def main():
        app, rpc, conn, task = await _serving()
        conn.push([2, "a", 5, {}])
        assert (await asyncio.wait_for_ms(conn.next_sent(), 5000))[:3] == [4, "a", "FormationViolation"]
        assert not task.done()
        task.cancel()
    asyncio.run(main())


def test_no_heap_for_the_log_line_keeps_the_link():
    # near the limit the ~300 B log view of a frame failed and the link went down with it
    from uwallbox.ocpp import rpc as mod

    def shown(buf):
        raise MemoryError("memory allocation failed, allocating 336 bytes")

    async def main():
        app, rpc, conn, task = await _serving()
        app.tasks = {}
        real, mod._shown = mod._shown, shown
        try:
            conn.push([2, "v", "GetLocalListVersion", {}])
            assert (await asyncio.wait_for_ms(conn.next_sent(), 5000)) == [3, "v", {"listVersion": 0}]
            assert not task.done()
        finally:
            mod._shown = real
        task.cancel()
    asyncio.run(main())


def test_receive_buffer_made_once_before_the_first_connection():
    # not at boot (App build): 4 KB less at the boot's transient peak
    async def main():
        rpc = Rpc(FakeApp())
        assert rpc._rx is None
        rpc.prepare()  # Session.run, before connecting
        buf = rpc._rx
        assert type(buf) is bytearray and len(buf) == 4096
        conn = FakeConn()
        task = asyncio.create_task(rpc.serve(conn))
        await asyncio.sleep_ms(0)
        assert conn.rxbuf is buf and rpc._rx is buf
        task.cancel()
    asyncio.run(main())


def test_the_local_list_stays_for_a_run_of_its_calls_only():
    # a run of SendLocalList keeps the list's modules and the open list (~1.6 KB); the next other
    # CALL drops them, and a card's lookup loads them for itself only
    import sys
    from uwallbox.station.auth import Auth
    mods = ("uwallbox.profiles.localauth", "uwallbox.flash.cardstore")

    async def main():
        app, rpc, conn, task = await _serving()
        app.tasks = {}
        for v in (1, 2):
            entry = {"idTag": "T%d" % v, "idTagInfo": {"status": "Accepted"}}
            conn.push([2, "l%d" % v, "SendLocalList", {"listVersion": v, "localAuthorizationList": [entry],
                                                        "updateType": "Differential" if v > 1 else "Full"}])
            assert (await conn.next_sent()) == [3, "l%d" % v, {"status": "Accepted"}]
            assert all(m in sys.modules for m in mods)
        conn.push([2, "g", "GetLocalListVersion", {}])
        assert (await conn.next_sent()) == [3, "g", {"listVersion": 2}]
        assert all(m in sys.modules for m in mods)
        conn.push([2, "r", "CancelReservation", {"reservationId": "x"}])
        assert (await conn.next_sent())[:3] == [4, "r", "TypeConstraintViolation"]
        assert not any(m in sys.modules for m in mods)
        task.cancel()
        auth = Auth(app)
        assert auth.listed("t2") == {"status": "Accepted"} and auth.listed("T3") is None
        assert not any(m in sys.modules for m in mods)
    asyncio.run(main())


def test_a_call_that_starts_a_task_keeps_its_module():
    import sys

    async def job():
        await asyncio.sleep_ms(1)

    async def main():
        app, rpc, conn, task = await _serving()
        app.tasks = {}
        from uwallbox.ocpp import routes
        real = routes.route

        def route(action):  # a handler that starts a job, as GetLog does
            if action == "Job":
                import uwallbox.profiles.reservation as m
                m.job = lambda app, p: app.tasks.update(j=asyncio.create_task(job())) or {}
                return "reservation", "job"
            return real(action)
        routes.route = route
        try:
            schema_validate = schema.validate
            schema.validate = lambda a, p: None
            conn.push([2, "j", "Job", {}])
            assert (await conn.next_sent())[0] == 3
        finally:
            routes.route = real
            schema.validate = schema_validate
        task.cancel()
        assert "uwallbox.profiles.reservation" in sys.modules
    asyncio.run(main())


class BigConn(FakeConn):
    """Hands the start of a frame the heap could not hold, as ws.recv(True) does (dropped)."""
    dropped = 0

    async def recv(self, raw=False):
        text = await FakeConn.recv(self, raw)
        self.dropped = 0
        if len(text) > 200:
            self.dropped = len(text)
            return memoryview(text)[:100]
        return text


def test_a_frame_too_large_for_the_heap_is_answered_and_the_link_stays():
    async def main():
        app = FakeApp()
        app.seclog = []
        app.security_event = lambda kind, info=None: app.seclog.append(kind)
        rpc = Rpc(app)
        conn = BigConn()
        task = asyncio.create_task(rpc.serve(conn))
        await asyncio.sleep_ms(0)
        conn.push('[2,"big","DataTransfer",{"vendorId":"x","data":"%s"}]' % ("d" * 5000))
        out = await conn.next_sent()
        assert out[:3] == [4, "big", "InternalError"], out
        assert app.seclog == ["MemoryExhaustion"]
        conn.push('[3,"%s",{}]' % ("u" * 300))  # not a CALL: dropped, no answer
        conn.push([2, "small", "NoSuchAction", {}])
        out = await conn.next_sent()
        assert out[:3] == [4, "small", "NotImplemented"], out
        assert not task.done()
        task.cancel()
    asyncio.run(main())


class _Restarted(Exception):
    pass


def test_no_heap_to_stay_online_restarts_through_the_crash_guard():
    # Every reconnect failed ("allocating 526 bytes") while the watchdog kept being fed: the
    # charge point sat offline for good. Now three failures in a row by MemoryError end the
    # transactions in the journal and restart through the crash guard, the reason logged.
    import ws
    from uwallbox.ocpp.session import Session
    from uwallbox.system import crashguard

    class Conn:
        stopped = []

        def stop(self, reason):
            self.stopped.append(reason)

    app = FakeApp()
    app.rpc = Rpc(app)  # Session.run makes its receive buffer first
    app.connectors = [Conn()]
    app.board = None
    app.config.set("CentralSystemUrl", "ws://127.0.0.1:9")
    tries, crashes = [], []

    async def connect(*args):
        tries.append(1)
        raise MemoryError("memory allocation failed, allocating 526 bytes")

    def crashed(board, e):
        crashes.append(str(e))
        raise _Restarted()
    ws.connect, crashguard.crashed = connect, crashed
    try:
        asyncio.run(Session(app).run())
        assert False, "the session went on without heap"
    except _Restarted:
        pass
    assert len(tries) == 3 and Conn.stopped == ["Reboot"], (tries, Conn.stopped)
    assert len(crashes) == 1 and "526 bytes" in crashes[0], crashes


def test_a_handler_s_memory_error_lets_go_of_the_payload_before_answering():
    # a payload nested deep holds much of the heap; when its handler runs out of heap, the
    # answer needs room: the payload is dropped before the CALLERROR is made (the link went down
    # on a CertificateSigned nested 1,000 deep at a plain ESP32's heap)
    import gc
    import sys

    def free():
        gc.collect()
        return gc.mem_free()
    seen = {}

    def heavy(app, payload):
        seen["handler"] = free()
        raise MemoryError("memory allocation failed, allocating 232 bytes")

    async def main():
        app, rpc, conn, task = await _serving()
        app.tasks = {}
        app.security_event = lambda kind, info=None: seen.update(answering=free())
        from uwallbox.ocpp import routes
        real, validate = routes.route, schema.validate

        def route(action):
            if action == "Heavy":
                import uwallbox.profiles.reservation as m
                m.heavy = heavy
                return "reservation", "heavy"
            return real(action)
        routes.route, schema.validate = route, lambda a, p: None
        try:
            conn.push('[2,"h","Heavy",{"deep":%s}]' % ("[" * 300 + "]" * 300))
            out = await conn.next_sent()
        finally:
            routes.route, schema.validate = real, validate
            m = sys.modules.get("uwallbox.profiles.reservation")
            if m is not None and hasattr(m, "heavy"):
                del m.heavy
        task.cancel()
        assert out[:3] == [4, "h", "InternalError"], out
        # 300 nested lists: 32 B each on the 32-bit build, ~9.6 KB
        assert seen["answering"] - seen["handler"] > 8000, seen
    asyncio.run(main())


def test_the_frozen_schemas_are_the_files_and_a_lookup_copies_nothing():
    # a frozen image has no schema files: schema.load reads the same texts from _schemas, one
    # string constant; a lookup is a view of it (a dict of them was ~0.5 KB built for each CALL)
    import gc
    import os

    names = []
    for folder in ("", "pnc/"):
        try:
            names += [folder + n[:-5] for n in os.listdir(schema._DIR + folder) if n.endswith(".json")]
        except OSError:
            pass
    assert len(names) > 25, names
    for name in names:
        with open(schema._DIR + name + ".json") as f:
            assert bytes(schema._frozen(name)) == f.read().strip().encode(), name
    assert schema._frozen("NoSuchAction") is None
    assert schema._frozen("Reset") is not None and schema._frozen("Rese") is None
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(10):
        schema._frozen("SendLocalList")
    assert gc.mem_alloc() - before <= 10 * 96, gc.mem_alloc() - before  # the key and a view
