# MicroPython unit tests of the Remote Trigger profile, on the real App built from the sim board
# (UWB_SIM_CONNECTORS=2) with a fake Rpc that records CALLs and the work queued after the answer.
import asyncio

import board
import fakes
from uwallbox import app as app_module
from uwallbox import clock
from uwallbox.profiles.trigger import request, trigger_message

PYTEST = {"env": {"UWB_SIM_CONNECTORS": "2"}}  # how tests/conftest.py runs these cases

_NOW = "2030-01-02T03:04:05Z"


def _app():
    return fakes.app({"BootNotification": {"status": "Accepted", "currentTime": _NOW, "interval": 77},
                      "Heartbeat": {"currentTime": _NOW}})


def _trigger(app, message, cid=None):
    p = {"requestedMessage": message}
    if cid is not None:
        p["connectorId"] = cid
    return trigger_message(app, p)["status"]


async def test_nothing_sent_before_the_answer():
    app = _app()
    assert _trigger(app, "Heartbeat") == "Accepted"
    assert app.rpc.sent == [] and len(app.rpc.later) == 1
    await app.rpc.flush()
    assert app.rpc.sent == [("Heartbeat", {})]
    assert abs(app.clock.now() - clock.parse(_NOW)) < 5  # the answer's time is adopted
    assert list(app.tasks) == ["trigger:Heartbeat"]  # the job was the app's task

    # a job that raises, awaited by nobody, goes to the crash guard (which would restart the
    # charge point) through the event loop's exception handler that App.run() sets
    guard, crashes = app_module.crashguard, []
    app_module.crashguard = type("Guard", (), {"crashed": lambda board, e: crashes.append(e)})
    asyncio.get_event_loop().set_exception_handler(app.failed)
    app.rpc.answers["Heartbeat"] = RuntimeError("a bug")  # the job raises what it does not expect
    try:
        assert _trigger(app, "Heartbeat") == "Accepted"
        job = app.spawn(*app.rpc.later.pop())
        for _ in range(100):
            await asyncio.sleep_ms(1)  # the loop reports the failure after the task has ended
            if crashes:
                break
    finally:
        app_module.crashguard = guard
        asyncio.get_event_loop().set_exception_handler(None)
    assert job.done() and [str(e) for e in crashes] == ["a bug"]
    assert list(app.tasks) == ["trigger:Heartbeat"]  # the ended job left when this one came


async def test_bad_connector_rejected():
    app = _app()
    for message in ("MeterValues", "StatusNotification", "Heartbeat"):
        assert _trigger(app, message, 3) == "Rejected"
        assert _trigger(app, message, -1) == "Rejected"
    assert app.rpc.later == []


def test_unknown_message_not_implemented():
    app = _app()
    assert request(app, "SignChargePointCertificate") == "NotImplemented"
    assert app.rpc.later == []


async def test_not_registered():
    app = _app()
    app.session.registration = "Pending"
    assert _trigger(app, "Heartbeat") == "Rejected"
    assert _trigger(app, "BootNotification") == "Accepted"
    await app.rpc.flush()
    assert app.rpc.sent == [] and app.session.boot_wake.is_set()  # registration sends it at once


async def test_boot_notification():
    app = _app()
    assert _trigger(app, "BootNotification", 1) == "Accepted"  # connectorId not relevant: ignored
    await app.rpc.flush()
    action, payload = app.rpc.sent[0]
    assert action == "BootNotification" and payload["chargePointVendor"] == "uwallbox"
    assert app.config["HeartbeatInterval"] == 77


async def test_idle_status_notifications():
    app = _app()
    assert _trigger(app, "FirmwareStatusNotification") == "Accepted"
    assert _trigger(app, "DiagnosticsStatusNotification", 0) == "Accepted"
    await app.rpc.flush()
    assert app.rpc.sent == [("FirmwareStatusNotification", {"status": "Idle"}),
                            ("DiagnosticsStatusNotification", {"status": "Idle"})]
    app.firmware_status = "Downloading"  # what the firmware-management module will set
    _trigger(app, "FirmwareStatusNotification")
    await app.rpc.flush()
    assert app.rpc.sent[-1] == ("FirmwareStatusNotification", {"status": "Downloading"})


async def test_meter_values():
    app = _app()
    assert _trigger(app, "MeterValues", 2) == "Accepted"
    await app.rpc.flush()
    assert len(app.rpc.sent) == 1
    action, p = app.rpc.sent[0]
    assert action == "MeterValues" and p["connectorId"] == 2 and "transactionId" not in p
    values = p["meterValue"][0]["sampledValue"]
    # the default MeterValuesSampledData: what a dashboard needs
    assert [(v["measurand"], v["context"]) for v in values] == [
        ("Energy.Active.Import.Register", "Trigger"), ("Power.Active.Import", "Trigger")] + [
        ("Current.Import", "Trigger")] * board.PHASES + [("Current.Offered", "Trigger")] + [
        ("Voltage", "Trigger")] * board.PHASES
    assert len(app.journal) == 0  # not a transaction message


async def test_meter_values_every_connector_with_transaction():
    app = _app()
    app.config.set("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage")
    c = app.connectors[0]
    app.evses[0].plugged = True
    c.start("TAG", {"status": "Accepted"})
    app.journal.ids[str(c.tx.ref)] = 42  # the CSMS's transactionId
    queued = len(app.journal)
    assert _trigger(app, "MeterValues") == "Accepted"
    await app.rpc.flush()
    assert [p["connectorId"] for a, p in app.rpc.sent] == [1, 2]
    assert app.rpc.sent[0][1]["transactionId"] == 42 and "transactionId" not in app.rpc.sent[1][1]
    measurands = [v["measurand"] for v in app.rpc.sent[0][1]["meterValue"][0]["sampledValue"]]
    assert measurands == ["Energy.Active.Import.Register"] + ["Voltage"] * board.PHASES, measurands
    assert len(app.journal) == queued


async def test_meter_values_falls_back_to_energy():
    app = _app()
    app.config.set("MeterValuesSampledData", "Temperature")  # not measured here
    _trigger(app, "MeterValues", 1)
    await app.rpc.flush()
    values = app.rpc.sent[0][1]["meterValue"][0]["sampledValue"]
    assert [v["measurand"] for v in values] == ["Energy.Active.Import.Register"]


async def _sent(app, n):
    """The first N CALLs sent (waits up to 2 s for them)."""
    for _ in range(100):
        if len(app.rpc.sent) >= n:
            break
        await asyncio.sleep_ms(20)
    return app.rpc.sent[:n]


async def test_status_notification_even_if_unchanged():
    app = _app()
    app.session.online.set()
    for c in app.connectors:
        c.update()
    task = asyncio.create_task(app.statuses.run())
    app.statuses.changed()
    assert [p["connectorId"] for a, p in await _sent(app, 3)] == [0, 1, 2]
    app.rpc.sent.clear()
    assert _trigger(app, "StatusNotification", 2) == "Accepted"
    await app.rpc.flush()
    assert [(p["connectorId"], p["status"]) for a, p in await _sent(app, 1)] == [(2, "Available")]
    app.rpc.sent.clear()
    _trigger(app, "StatusNotification")
    await app.rpc.flush()
    assert [p["connectorId"] for a, p in await _sent(app, 3)] == [0, 1, 2]
    task.cancel()
