"""Remote Trigger profile: TriggerMessage for each message, with and without connectorId, end to
end (every message checked against the OCPP 1.6 schemas); the unit cases under MicroPython are
tests/mpy/trigger_cases.py."""
import pytest

from harness import connector, online, status


# -- end to end: the firmware in the simulator against the test CSMS ------------------------------

def trigger(csms, cp, message, cid=None):
    p = {"requestedMessage": message}
    if cid is not None:
        p["connectorId"] = cid
    return csms.call(cp.id, ("TriggerMessage", p))["status"]


def triggered(csms, cp, message, cid=None, predicate=None, timeout=10):
    """TriggerMessage MESSAGE: Accepted, then MESSAGE arrives after the answer; its payload."""
    mark = csms.mark()
    assert trigger(csms, cp, message, cid) == "Accepted"
    payload = csms.wait_for(message, predicate, cp_id=cp.id, since=mark, timeout=timeout)
    record = csms.messages(cp.id, since=mark)
    answered = next(i for i, m in enumerate(record) if m.action == "TriggerMessage" and m.kind == "result")
    sent = next(i for i, m in enumerate(record) if m.action == message and m.kind == "call"
                and m.direction == "in" and (predicate is None or predicate(m.payload)))
    assert answered < sent, f"{message} sent before the TriggerMessage answer"
    return payload


@pytest.mark.timeout(60)
def test_trigger_charge_point_messages(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    for cid in (None, 1):  # connectorId is not relevant to these: ignored
        boot = triggered(csms, cp, "BootNotification", cid)
        assert boot["chargePointVendor"] == "uwallbox"
        assert triggered(csms, cp, "Heartbeat", cid) == {}
        assert triggered(csms, cp, "FirmwareStatusNotification", cid) == {"status": "Idle"}
        assert triggered(csms, cp, "DiagnosticsStatusNotification", cid) == {"status": "Idle"}
    assert cp.api.state()["ocpp"]["registration"] == "Accepted"


@pytest.mark.timeout(60)
def test_bad_connector_rejected(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    mark = csms.mark()
    for message in ("StatusNotification", "MeterValues", "Heartbeat", "BootNotification"):
        assert trigger(csms, cp, message, 2) == "Rejected", message
        assert trigger(csms, cp, message, -1) == "Rejected", message
    assert triggered(csms, cp, "Heartbeat") == {}  # a barrier: nothing came before it
    calls = [m.action for m in csms.messages(cp.id, direction="in", kind="call", since=mark)]
    assert calls == ["Heartbeat"], calls


@pytest.mark.timeout(60)
def test_trigger_status_notification(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    p = triggered(csms, cp, "StatusNotification", 1)  # unchanged, sent all the same
    assert (p["connectorId"], p["status"], p["errorCode"]) == (1, "Available", "NoError")
    assert triggered(csms, cp, "StatusNotification", 0)["connectorId"] == 0
    mark = csms.mark()
    assert trigger(csms, cp, "StatusNotification") == "Accepted"  # the charge point and each connector
    csms.wait_for("StatusNotification", status(0, "Available"), cp_id=cp.id, since=mark)
    csms.wait_for("StatusNotification", status(1, "Available"), cp_id=cp.id, since=mark)
    mark = csms.mark()
    cp.api.ev(plug=True)
    csms.wait_for("StatusNotification", status(1, "Preparing"), cp_id=cp.id, since=mark)
    assert triggered(csms, cp, "StatusNotification", 1, status(1, "Preparing"))  # unchanged again


@pytest.mark.timeout(60)
def test_trigger_meter_values(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    for cid in (None, 1):
        p = triggered(csms, cp, "MeterValues", cid)
        assert p["connectorId"] == 1 and "transactionId" not in p, p
        values = p["meterValue"][0]["sampledValue"]
        assert values and all(v["context"] == "Trigger" for v in values), values
        assert values[0]["measurand"] == "Energy.Active.Import.Register", values
    cp.api.ev(plug=True)
    cp.api.rfid("TAG0001")
    csms.wait_for("StartTransaction", cp_id=cp.id)
    state = cp.api.wait(lambda s: connector(s)["transaction_id"] is not None, 10)
    tx = connector(state)["transaction_id"]
    p = triggered(csms, cp, "MeterValues", predicate=lambda p: "transactionId" in p)
    assert p["transactionId"] == tx and p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger", p


@pytest.mark.timeout(60)
def test_trigger_boot_while_pending(csms, charge_point):
    csms.boot_status, csms.interval = "Pending", 300  # the next BootNotification would be far away
    cp = charge_point()
    csms.wait_for("BootNotification", cp_id=cp.id)
    assert trigger(csms, cp, "Heartbeat") == "Rejected"  # nothing but BootNotification until Accepted
    csms.boot_status = "Accepted"
    mark = csms.mark()
    assert trigger(csms, cp, "BootNotification") == "Accepted"
    csms.wait_for("BootNotification", cp_id=cp.id, since=mark, timeout=5)
    cp.api.wait(lambda s: s["ocpp"]["registration"] == "Accepted", 10)
    csms.wait_for("StatusNotification", status(1, "Available"), cp_id=cp.id, since=mark)
