# MicroPython unit tests of the transaction-message journal.
import asyncio

from fakes import FakeRpc
from uwallbox.config import Config
from uwallbox.errors import CallError
from uwallbox.journal import Journal
from uwallbox.rpc import Offline


class FakeApp:
    def __init__(self, answers):
        self.config = Config()
        self.rpc = FakeRpc(answers)
        self.online = asyncio.Event()
        self.online.set()
        self.done = []

    def delivered(self, action, ref, reply):
        self.done.append((action, ref, reply))


_START = {"transactionId": 41, "idTagInfo": {"status": "Accepted"}}


async def _drain(app, j, n):
    task = asyncio.create_task(j.run())
    for _ in range(200):
        if len(app.done) >= n:
            break
        await asyncio.sleep_ms(10)
    task.cancel()


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
    app.online.clear()
    j = Journal(app)
    j.add("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "t"}, 1)
    task = asyncio.create_task(j.run())
    await asyncio.sleep_ms(100)
    assert app.rpc.sent == [] and len(j) == 1
    app.online.set()
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
