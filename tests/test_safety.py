"""Power-path safety end to end: the firmware in the simulator against the test CSMS.

Every fault path (docs/HARDWARE.md, "Fault codes"): the contactor opens at once, the connector
reports Faulted with the matching error code (EVCommunicationError is a warning: OCPP 1.6
section 4.9 allows it only with Preparing, SuspendedEV, SuspendedEVSE and Finishing), the
transaction is suspended, not stopped, and the connector recovers when the fault is cleared.
The 100 ms opening limit is measured by the plant on the mocked pins (relay_open_latency_ms)
while the firmware parses large OCPP payloads. UWB_SOAK=1 runs the long campaign.
"""
import os
import threading
import time

import pytest

from harness import configure, connector, online, status

pytestmark = pytest.mark.timeout(120)

SOAK = bool(os.environ.get("UWB_SOAK"))
LIMIT_MS = 100





def unplugged_ends(csms, cp, mark, tx):
    """Unplug: transaction TX stops (EVDisconnected), the connector is Available and safe again."""
    cp.api.ev(plug=False)
    stop = csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    assert (stop["transactionId"], stop["reason"]) == (tx, "EVDisconnected"), stop
    csms.wait_for("StatusNotification", status(1, "Available", error="NoError"), cp_id=cp.id, since=mark)
    safe(cp.api.state())


def charging(csms, cp, tag="CARD0001"):
    """Plug, present TAG, ask for energy: returns the CSMS's transactionId once charging."""
    mark = csms.mark()
    cp.api.ev(plug=True, charge=True, max_a=16)
    cp.api.rfid(tag)
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert start["idTag"] == tag
    csms.wait_for("StatusNotification", status(1, "Charging", error="NoError"), cp_id=cp.id, since=mark)
    c = connector(cp.api.wait(lambda s: connector(s)["relay"] and connector(s)["transaction_id"], 10))
    return c["transaction_id"]


def until(predicate, timeout=10):
    """Poll PREDICATE every 20 ms until it holds; fail after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met within %s s" % timeout
        time.sleep(0.02)


def stops(csms, cp, since):
    return csms.messages(cp.id, "StopTransaction", "in", "call", since=since)


def safe(state):
    """The plant saw no violation, and every opening it timed took less than 100 ms."""
    assert state["violations"] == [], state["violations"]
    assert all(ms < LIMIT_MS for ms in state["relay_open_latency_ms"]), state["relay_open_latency_ms"]


def test_rcd_trip_suspends_then_recovers(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    assert connector(cp.api.state())["ev"]["rcd_tests"] >= 1       # the start-up self-test
    tx = charging(csms, cp)
    mark = csms.mark()
    cp.api.fault(rcd=True)
    csms.wait_for("StatusNotification", status(1, "Faulted", error="GroundFailure"), cp_id=cp.id, since=mark)
    st = cp.api.state()
    c = connector(st)
    assert not c["relay"] and c["fault"] == "GroundFailure" and c["offered_a"] == 0, c
    assert len(st["relay_open_latency_ms"]) == 1 and st["relay_open_latency_ms"][0] < LIMIT_MS
    cp.api.fault(rcd=False)                 # latched: the EV must be unplugged first
    time.sleep(1)
    c = connector(cp.api.state())
    assert (c["status"], c["relay"], c["transaction_id"]) == ("Faulted", False, tx), c
    assert stops(csms, cp, mark) == []      # suspended, not stopped
    unplugged_ends(csms, cp, mark, tx)


def test_rcd_self_test_failure_makes_the_connector_unusable(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    cp.api.fault(rcd_broken=True)
    mark = csms.mark()
    cp.api.ev(plug=True, charge=True)
    cp.api.rfid("CARD0001")                 # the session's self-test gets no answer
    csms.wait_for("StatusNotification", status(1, "Faulted", error="GroundFailure"), cp_id=cp.id, since=mark)
    c = connector(cp.api.state())
    assert c["ev"]["rcd_tests"] >= 2 and not c["relay"] and c["offered_a"] == 0, c
    cp.api.ev(plug=False)
    csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    cp.api.fault(rcd_broken=False)          # repaired, but only a passed test tells
    time.sleep(1)
    assert connector(cp.api.state())["status"] == "Faulted"
    later = csms.mark()
    cp.api.rfid("CARD0002")                 # no transaction on a faulted connector
    csms.wait_for("Authorize", cp_id=cp.id, since=later)
    cp.api.ev(plug=True)                    # the plug-in retests
    csms.wait_for("StatusNotification", status(1, "Preparing", error="NoError"), cp_id=cp.id, since=later)
    assert [m.payload["idTag"] for m in csms.messages(cp.id, "StartTransaction", "in", "call",
                                                      since=later)] == []
    tx = charging(csms, cp, "CARD0003")
    assert tx and connector(cp.api.state())["fault"] is None
    safe(cp.api.state())


def test_welded_contactor(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    tx = charging(csms, cp)
    mark = csms.mark()
    cp.api.fault(weld=True)
    cp.api.ev(charge=False)                 # the contactor opens, its contacts do not
    csms.wait_for("StatusNotification", status(1, "Faulted", error="PowerSwitchFailure"), cp_id=cp.id,
                  since=mark)
    c = connector(cp.api.state())
    assert not c["relay"] and c["fault"] == "PowerSwitchFailure" and c["transaction_id"] == tx, c
    cp.api.ev(charge=True)
    time.sleep(0.5)
    c = connector(cp.api.state())
    assert not c["relay"] and c["pwm_duty"] == 100.0, c   # never closes onto welded contacts
    cp.api.fault(weld=False)
    unplugged_ends(csms, cp, mark, tx)


def test_lock_jam(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    mark = csms.mark()
    cp.api.ev(plug=True, charge=True)
    cp.api.fault(lock_jam=True)             # the lock will not move
    cp.api.rfid("CARD0001")
    csms.wait_for("StatusNotification", status(1, "Faulted", error="ConnectorLockFailure"), cp_id=cp.id,
                  since=mark)
    c = connector(cp.api.state())
    assert not c["relay"] and not c["locked"] and c["transaction_id"], c
    cp.api.fault(lock_jam=False)            # it follows again: the fault clears at once
    csms.wait_for("StatusNotification", status(1, "Charging", error="NoError"), cp_id=cp.id, since=mark)
    c = connector(cp.api.state())
    assert c["relay"] and c["locked"] and c["fault"] is None, c
    assert stops(csms, cp, mark) == []
    safe(cp.api.state())


def test_ev_diode_fault(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    mark = csms.mark()
    cp.api.ev(plug=True, charge=True, diode_fault=True)
    cp.api.rfid("CARD0001")                 # the PWM starts: its low level is wrong
    csms.wait_for("StatusNotification", status(1, "SuspendedEVSE", error="EVCommunicationError"),
                  cp_id=cp.id, since=mark)
    c = connector(cp.api.state())
    assert not c["relay"] and c["fault"] == "EVCommunicationError" and c["pwm_duty"] == 100.0, c
    sent = csms.messages(cp.id, "StatusNotification", "in", "call", since=mark)
    assert not [m for m in sent if m.payload["status"] == "Faulted"], "a warning, not Faulted"
    cp.api.ev(plug=False, diode_fault=False)
    csms.wait_for("StopTransaction", lambda p: p["reason"] == "EVDisconnected", cp_id=cp.id, since=mark)
    csms.wait_for("StatusNotification", status(1, "Available", error="NoError"), cp_id=cp.id, since=mark)
    charging(csms, cp, "CARD0002")          # a sound EV charges again
    safe(cp.api.state())


def test_fault_path_does_not_wait_for_the_network(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    gate = threading.Event()

    async def stalled(cp_id, payload):      # a CSMS that does not answer (until the gate opens)
        import asyncio
        while not gate.is_set():
            await asyncio.sleep(0.02)
        return {}
    try:
        charging(csms, cp)
        mark = csms.mark()
        csms.handlers["StatusNotification"] = stalled
        cp.api.ev(charge=False)             # SuspendedEV: the firmware waits for the answer
        until(lambda: csms.messages(cp.id, "StatusNotification", "in", "call", since=mark))
        cp.api.ev(charge=True)
        cp.api.wait(lambda s: connector(s)["relay"], 5)
        cp.api.fault(rcd=True)
        st = cp.api.wait(lambda s: connector(s)["status"] == "Faulted", 3)
        c = connector(st)
        assert not c["relay"] and c["fault"] == "GroundFailure", c
        assert st["relay_open_latency_ms"][-1] < LIMIT_MS
    finally:
        gate.set()
        csms.handlers.pop("StatusNotification", None)
    csms.wait_for("StatusNotification", status(1, "Faulted", error="GroundFailure"), cp_id=cp.id, since=mark)
    safe(cp.api.state())


@pytest.mark.parametrize("unlock", [False, True], ids=["locked", "unlocked"])
def test_ev_side_disconnect_suspends(csms, charge_point, unlock):
    cp = charge_point()
    online(csms, cp)
    configure(csms, cp, "StopTransactionOnEVSideDisconnect", "false")
    configure(csms, cp, "UnlockConnectorOnEVSideDisconnect", "true" if unlock else "false")
    tx = charging(csms, cp)
    mark = csms.mark()
    cp.api.ev(plug=False)
    csms.wait_for("StatusNotification", status(1, "SuspendedEV", error="NoError"), cp_id=cp.id, since=mark)
    c = connector(cp.api.wait(lambda s: connector(s)["cp"] == "A", 5))
    assert c["transaction_id"] == tx and not c["relay"] and c["locked"] is not unlock, c
    cp.api.ev(plug=True, charge=True)       # back: the same transaction charges again
    csms.wait_for("StatusNotification", status(1, "Charging", error="NoError"), cp_id=cp.id, since=mark)
    assert stops(csms, cp, mark) == []
    cp.api.ev(plug=False)
    cp.api.wait(lambda s: connector(s)["cp"] == "A" and connector(s)["locked"] is not unlock, 5)
    cp.api.rfid("CARD0001")                 # the card ends it, and frees the socket
    stop = csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    assert (stop["transactionId"], stop["reason"]) == (tx, "Local"), stop
    csms.wait_for("StatusNotification", status(1, "Available", error="NoError"), cp_id=cp.id, since=mark)
    assert not connector(cp.api.wait(lambda s: not connector(s)["locked"], 5))["relay"]
    safe(cp.api.state())


def test_suspended_ev_and_suspended_evse(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    mark = csms.mark()
    cp.api.ev(plug=True)                    # authorized, but the EV stays in B
    cp.api.rfid("CARD0001")
    csms.wait_for("StatusNotification", status(1, "SuspendedEV", error="NoError"), cp_id=cp.id, since=mark)
    tid = connector(cp.api.wait(lambda s: connector(s)["transaction_id"], 5))["transaction_id"]
    cp.api.ev(charge=True)
    csms.wait_for("StatusNotification", status(1, "Charging", error="NoError"), cp_id=cp.id, since=mark)
    profile = {"chargingProfileId": 7, "transactionId": tid, "stackLevel": 0,
               "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
               "chargingSchedule": {"chargingRateUnit": "A",
                                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0}]}}
    answer = csms.call(cp.id, ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile}))
    assert answer == {"status": "Accepted"}
    csms.wait_for("StatusNotification", status(1, "SuspendedEVSE", error="NoError"), cp_id=cp.id, since=mark)
    c = connector(cp.api.wait(lambda s: not connector(s)["relay"], 5))
    assert c["offered_a"] == 0 and c["pwm_duty"] == 100.0, c
    answer = csms.call(cp.id, ("ClearChargingProfile", {"id": 7}))
    assert answer == {"status": "Accepted"}
    later = csms.mark()
    csms.wait_for("StatusNotification", status(1, "Charging", error="NoError"), cp_id=cp.id, since=later)
    safe(cp.api.state())


def local_list(version, n):
    return {"listVersion": version, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "LOAD%05d" % i, "idTagInfo": {"status": "Accepted"}} for i in range(n)]}


@pytest.mark.soak
@pytest.mark.parametrize("offer_a", [None, 6])
def test_opening_time_while_busy_with_large_messages(csms, charge_point, offer_a):
    """The contactor opens within 100 ms of the EV leaving C while the firmware handles large
    OCPP messages back to back: GetConfiguration of every key, 40 KB DataTransfers, full
    SendLocalLists of SendLocalListMaxLength cards (written to flash). At 16 A, and at 6 A, where
    the high phase lasts 100 us and a step's budget of pilot reads may miss it (hw/evse.py)."""
    cycles = 200 if SOAK else 12
    cp = charge_point()
    online(csms, cp)
    if offer_a:
        assert csms.call(cp.id, ("SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": 9, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": offer_a}]}}}
                             )) == {"status": "Accepted"}
    charging(csms, cp)
    if offer_a:
        cp.api.wait(lambda s: connector(s)["offered_a"] == offer_a, 10)
    keys = csms.call(cp.id, ("GetConfiguration", {"key": ["SendLocalListMaxLength"]}))
    cards = int(keys["configurationKey"][0]["value"])
    stop, done, failures = threading.Event(), [], []
    blob = "x" * 40000

    def load():
        version = 0
        while not stop.is_set():
            try:
                keys = csms.call(cp.id, ("GetConfiguration", {}), timeout=10)["configurationKey"]
                data = csms.call(cp.id, ("DataTransfer", {"vendorId": "uwallbox.load", "data": blob}),
                                 timeout=10)["status"]
                version += 1
                sent = csms.call(cp.id, ("SendLocalList", local_list(version, cards)), timeout=10)
                done.append((len(keys), data, sent["status"], time.monotonic()))
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(repr(e))
                return
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        t0 = time.monotonic()
        for i in range(cycles):
            cp.api.ev(charge=False)
            cp.api.wait(lambda s: not connector(s)["relay"], 5)
            cp.api.ev(charge=True)
            cp.api.wait(lambda s: connector(s)["relay"], 5)
        t1 = time.monotonic()
    finally:
        stop.set()
        worker.join(30)
    assert failures == [], failures
    during = [d for d in done if t0 <= d[3] <= t1]
    assert len(during) >= cycles // 4, f"only {len(during)} large exchanges during {cycles} cycles"
    assert all(n > 40 and d == "UnknownVendorId" and a == "Accepted" for n, d, a, _ in done), done[:3]
    st = cp.api.state()
    lat = st["relay_open_latency_ms"]
    assert len(lat) == cycles, lat
    # the figure docs/HARDWARE.md and docs/ESP32.md give (pytest -s shows it)
    print(f"opening times at {offer_a or 16} A while busy (ms): max {max(lat):.1f}, median {sorted(lat)[len(lat) // 2]:.1f}")
    assert max(lat) < LIMIT_MS, f"opening times (ms): {sorted(lat)[-5:]}"
    safe(st)
