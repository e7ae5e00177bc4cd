"""The main charging session end to end (boot, heartbeat, card, charge, unplug): the firmware in
the simulator (sim/launch.py) against the test CSMS.

What these tests expect of the firmware and the sim board:
- the control API (GET /state) answers within 30 s of launch; BootNotification within 30 s;
- the sim board is rated 32 A and the cable is tethered, so a charging EV is offered 32 A
  (53.33 % duty) whatever its own `max_a`; before authorization the relay stays open;
- ChangeConfiguration of HeartbeatInterval and MeterValueSampleInterval is Accepted and applies
  at once (heartbeats / samples every 2 s from then on);
- transaction-related MeterValues carry the transactionId and Energy.Active.Import.Register;
- unplugging stops the transaction with reason EVDisconnected (StopTransactionOnEVSideDisconnect
  defaults to true); Finishing is optional on the way back to Available.
Every message the firmware sends must pass the OCPP 1.6 schemas (the csms fixture checks).
"""
import pytest

from harness import check_pilot, configure, connector, energy_wh, registered, status

pytestmark = pytest.mark.timeout(180)

def test_boot_and_status(csms, charge_point):
    cp = charge_point()
    boot = csms.wait_for("BootNotification", cp_id=cp.id)
    assert boot["chargePointVendor"] and boot["chargePointModel"]
    registered(cp, csms)
    for connector_id in (0, 1):
        p = csms.wait_for("StatusNotification", status(connector_id, "Available"), cp_id=cp.id)
        assert p["errorCode"] == "NoError", p
    c = connector(cp.api.state())
    assert (c["status"], c["cp"], c["relay"], c["transaction_id"]) == ("Available", "A", False, None), c


def test_heartbeat(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "HeartbeatInterval", "2")
    mark = csms.mark()
    csms.wait_for("Heartbeat", cp_id=cp.id, since=mark, timeout=10)
    csms.wait_for("Heartbeat", cp_id=cp.id, since=csms.mark(), timeout=10)
    first, second = [m.time for m in csms.messages(cp.id, "Heartbeat", "in", "call", since=mark)][:2]
    assert 1 <= second - first <= 6, f"heartbeats {second - first:.1f} s apart with HeartbeatInterval 2"


def test_charging_session(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    csms.wait_for("StatusNotification", status(1, "Available"), cp_id=cp.id)
    configure(csms, cp, "MeterValueSampleInterval", "2")

    cp.api.ev(plug=True)
    csms.wait_for("StatusNotification", status(1, "Preparing"), cp_id=cp.id)
    c = connector(cp.api.wait(lambda s: connector(s)["cp"] == "B", 10))
    assert not c["relay"] and c["transaction_id"] is None, c
    check_pilot(c)

    mark = csms.mark()
    cp.api.rfid("TAG0001")
    assert csms.wait_for("Authorize", cp_id=cp.id, since=mark)["idTag"] == "TAG0001"
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["idTag"], start["connectorId"]) == ("TAG0001", 1), start
    assert isinstance(start["meterStart"], int), start
    tx = next(t["id"] for t in csms.transactions.values() if t["cp_id"] == cp.id)
    calls = [m.action for m in csms.messages(cp.id, direction="in", kind="call", since=mark)]
    assert calls.index("Authorize") < calls.index("StartTransaction"), calls

    cp.api.ev(charge=True, max_a=16)
    csms.wait_for("StatusNotification", status(1, "Charging"), cp_id=cp.id, since=mark)
    c = connector(cp.api.wait(lambda s: connector(s)["cp"] == "C" and connector(s)["relay"], 15))
    check_pilot(c)
    assert c["offered_a"] == 32 and c["pwm_duty"] == pytest.approx(53.33, abs=0.1), c
    assert c["transaction_id"] == tx and c["status"] == "Charging", c

    readings, since = [], mark
    for _ in range(3):
        p = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tx and energy_wh(p) is not None,
                          cp_id=cp.id, since=since, timeout=15)
        readings.append(energy_wh(p))
        since = csms.mark()
    assert readings == sorted(readings) and readings[-1] > readings[0] >= start["meterStart"], readings

    mark = csms.mark()
    cp.api.ev(charge=False)
    c = connector(cp.api.wait(lambda s: connector(s)["cp"] == "B" and not connector(s)["relay"], 10))
    check_pilot(c)
    cp.api.ev(plug=False)
    stop = csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    assert (stop["transactionId"], stop["reason"]) == (tx, "EVDisconnected"), stop
    assert stop["meterStop"] >= max(readings[-1], start["meterStart"]), (stop, readings)
    csms.wait_for("StatusNotification", status(1, "Available"), cp_id=cp.id, since=mark)
    seen = [m.payload["status"] for m in csms.messages(cp.id, "StatusNotification", "in", "call", since=mark)
            if m.payload["connectorId"] == 1]
    assert set(seen) <= {"SuspendedEV", "Finishing", "Available"} and seen[-1] == "Available", seen
    state = cp.api.wait(lambda s: connector(s)["transaction_id"] is None, 10)
    c = connector(state)
    assert (c["status"], c["relay"]) == ("Available", False), c
    assert state.get("violations", []) == [], state["violations"]


def test_blocked_card_starts_nothing(csms, charge_point):
    csms.blocked.add("BLOCKED1")
    cp = charge_point()
    registered(cp, csms)
    cp.api.ev(plug=True)
    csms.wait_for("StatusNotification", status(1, "Preparing"), cp_id=cp.id)
    mark = csms.mark()
    cp.api.rfid("BLOCKED1")
    assert csms.wait_for("Authorize", cp_id=cp.id, since=mark)["idTag"] == "BLOCKED1"
    cp.api.ev(charge=True, max_a=16)
    with pytest.raises(TimeoutError):
        csms.wait_for("StartTransaction", cp_id=cp.id, since=mark, timeout=4)
    c = connector(cp.api.state())
    assert (c["transaction_id"], c["relay"]) == (None, False), c
    assert c["status"] != "Charging", c
    check_pilot(c)


def test_boot_pending_then_accepted(csms, charge_point):
    csms.boot_status, csms.interval = "Pending", 2
    cp = charge_point()
    csms.wait_for("BootNotification", cp_id=cp.id)
    # while Pending the CSMS may talk to the charge point, and it must answer
    answer = csms.call(cp.id, ("GetConfiguration", {"key": ["HeartbeatInterval"]}))
    assert [k["key"] for k in answer.get("configurationKey", [])] == ["HeartbeatInterval"], answer
    csms.wait_for("BootNotification", cp_id=cp.id, since=csms.mark(), timeout=10)  # retried after interval
    assert cp.api.state()["ocpp"]["registration"] == "Pending"

    csms.boot_status = "Accepted"
    registered(cp, csms)
    csms.wait_for("StatusNotification", status(1, "Available"), cp_id=cp.id)
    record = csms.messages(cp.id)
    accepted = next(i for i, m in enumerate(record) if m.action == "BootNotification"
                    and m.kind == "result" and m.payload["status"] == "Accepted")
    before = {m.action for m in record[:accepted] if m.direction == "in" and m.kind == "call"}
    assert before == {"BootNotification"}, f"CALLs before BootNotification was Accepted: {before}"
