# MicroPython unit tests of the transaction-message journal.
import asyncio

import fakes
from fakes import FakeRpc
from uwallbox.errors import CallError
from uwallbox.flash import store
from uwallbox.ocpp.rpc import Offline
from uwallbox.station.config import Config
from uwallbox.station.journal import Journal


class FakeApp:
    def __init__(self, answers):
        self.config = Config()
        self.rpc = FakeRpc(answers)
        self.session = fakes.Session(online=True)
        self.done = []

    def delivered(self, action, ref, reply, payload):
        self.done.append((action, ref, reply))


_START = {"transactionId": 41, "idTagInfo": {"status": "Accepted"}}


async def _drain(app, j, n):
    """Run the journal until N messages are delivered (2 s at most); was its task still alive?"""
    task = asyncio.create_task(j.run())
    for _ in range(200):
        if len(app.done) >= n:
            break
        await asyncio.sleep_ms(10)
    alive = not task.done()
    task.cancel()
    return alive


async def test_order_and_transaction_id():
    app = FakeApp({"StartTransaction": _START})
    j = Journal(app)
    ref = j.seq + 1
    j.add("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "t"}, ref)
    j.add("MeterValues", {"connectorId": 1, "transactionId": 0, "meterValue": []}, ref)
    j.add("StopTransaction", {"transactionId": 0, "meterStop": 5, "timestamp": "t"}, ref)
    await _drain(app, j, 3)
    assert [a for a, p in app.rpc.sent] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert app.rpc.sent[1][1]["transactionId"] == 41
    assert app.rpc.sent[2][1]["transactionId"] == 41
    assert len(j) == 0
    assert j.tid(ref) is None  # forgotten once the stop is delivered


async def test_survives_restart():
    app = FakeApp({"StartTransaction": _START})
    j = Journal(app)
    j.add("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "t"}, 1)
    j.add("StopTransaction", {"transactionId": 0, "meterStop": 5, "timestamp": "t"}, 1)
    j2 = Journal(app)  # a reboot: the queue is read back from flash
    assert len(j2) == 2 and j2.seq == 2
    await _drain(app, j2, 2)
    assert [a for a, p in app.rpc.sent] == ["StartTransaction", "StopTransaction"]


async def test_waits_while_offline():
    app = FakeApp({"StartTransaction": _START})
    app.session.online.clear()
    j = Journal(app)
    j.add("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "t"}, 1)
    task = asyncio.create_task(j.run())
    await asyncio.sleep_ms(100)
    assert app.rpc.sent == [] and len(j) == 1
    app.session.online.set()
    for _ in range(100):
        if app.done:
            break
        await asyncio.sleep_ms(10)
    task.cancel()
    assert len(app.rpc.sent) == 1 and len(j) == 0


async def test_call_error_retried_then_dropped():
    app = FakeApp({"MeterValues": CallError("InternalError", "no")})
    app.config.change("TransactionMessageAttempts", "2")
    app.config.change("TransactionMessageRetryInterval", "0")
    j = Journal(app)
    j.ids["1"] = 7
    j.add("MeterValues", {"connectorId": 1, "transactionId": 0, "meterValue": []}, 1)
    await _drain(app, j, 1)
    assert len(app.rpc.sent) == 2 and len(j) == 0


async def test_offline_error_keeps_message():
    app = FakeApp({"StopTransaction": Offline()})
    j = Journal(app)
    j.ids["1"] = 7
    j.add("StopTransaction", {"transactionId": 0, "meterStop": 1, "timestamp": "t"}, 1)
    task = asyncio.create_task(j.run())
    await asyncio.sleep_ms(50)
    task.cancel()
    assert len(j) == 1 and app.done == []


async def test_refused_meter_values_do_not_hold_back_the_stop():
    # a CSMS that answers MeterValues with a CALLERROR: retried per TransactionMessageAttempts,
    # then dropped, without the RetryInterval waits that held the StopTransaction back minutes
    app = FakeApp({"MeterValues": CallError("FormationViolation", "no")})
    app.config.change("TransactionMessageAttempts", "3")
    app.config.change("TransactionMessageRetryInterval", "60")
    j = Journal(app)
    j.ids["1"] = 7
    j.add("MeterValues", {"connectorId": 1, "transactionId": 0, "meterValue": []}, 1)
    j.add("StopTransaction", {"transactionId": 0, "meterStop": 5, "timestamp": "t"}, 1)
    await _drain(app, j, 2)
    assert [a for a, p in app.rpc.sent] == ["MeterValues"] * 3 + ["StopTransaction"], app.rpc.sent
    assert app.done[-1][0] == "StopTransaction" and len(j) == 0


async def test_refs_are_never_given_twice():
    # with an empty queue after delivery (or a queue left by a power cut), a reboot must not
    # hand out a reference again: recovery matches a transaction file on its ref alone
    app = FakeApp({"StartTransaction": _START})
    j = Journal(app)
    a = j.new_ref()
    j.add("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "t"}, a)
    j.add("StopTransaction", {"transactionId": 0, "meterStop": 5, "timestamp": "t"}, a)
    await _drain(app, j, 2)
    assert len(j) == 0
    j2 = Journal(app)  # reboot on an empty queue
    b = j2.new_ref()
    assert b > a, (a, b)
    j2.add("StopTransaction", {"transactionId": 0, "meterStop": 5, "timestamp": "t"}, b)
    j3 = Journal(app)  # power cut, the CSMS unreachable: the Stop of b still queued
    c = j3.new_ref()
    assert c > b and Journal(app).new_ref() > c


async def test_a_repeat_keeps_its_message_id():
    # a MeterValues whose answer was lost goes out again under the id it was first sent with,
    # also after a reboot; message ids are never reused once the queue has drained
    app = FakeApp({"StartTransaction": _START, "MeterValues": asyncio.TimeoutError()})
    j = Journal(app)
    j.ids["1"] = 7
    store.save("txids.json", j.ids)
    j.add("MeterValues", {"connectorId": 1, "transactionId": 0, "meterValue": []}, 1)
    task = asyncio.create_task(j.run())
    for _ in range(300):
        if len(app.rpc.sent) >= 2:
            break
        await asyncio.sleep_ms(10)
    task.cancel()
    assert len(app.rpc.uids) >= 2 and app.rpc.uids[0] == app.rpc.uids[1], app.rpc.uids
    first = app.rpc.uids[0]
    app.rpc.answers["MeterValues"] = {}
    j2 = Journal(app)  # reboot: the same message, the same id
    await _drain(app, j2, 1)
    assert app.rpc.uids[-1] == first and len(j2) == 0
    j3 = Journal(app)
    j3.add("MeterValues", {"connectorId": 1, "transactionId": 0, "meterValue": []}, 1)
    await _drain(app, j3, 2)
    assert app.rpc.uids[-1] != first, app.rpc.uids


async def test_no_heap_to_send_keeps_the_message_and_the_task():
    # a MemoryError while a message is sent (near the heap's limit) does not end the task: the
    # message stays, and goes a second later under the same message id
    calls = []

    def answer(payload):
        calls.append(1)
        return MemoryError() if len(calls) == 1 else {}
    app = FakeApp({"StopTransaction": answer})
    j = Journal(app)
    j.no_heap_ms = 20  # 1 s on a device
    j.ids["1"] = 7
    j.add("StopTransaction", {"transactionId": 0, "meterStop": 1, "timestamp": "t"}, 1)
    assert await _drain(app, j, 1)  # the task lives on
    assert [d[0] for d in app.done] == ["StopTransaction"] and len(j) == 0
    assert len(app.rpc.uids) == 2 and app.rpc.uids[0] == app.rpc.uids[1]
