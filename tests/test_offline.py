"""Offline operation and power cuts: no transaction message lost, none duplicated, in order."""
import os
import random
import time

import pytest

from harness import Csms, configure, connector, registered, start_session

pytestmark = pytest.mark.timeout(300)


def offline(cp):
    return cp.api.wait(lambda s: not s["ocpp"]["connected"], timeout=15)


def test_offline_session_delivered_in_order(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "AllowOfflineTxForUnknownId", "true")
    configure(csms, cp, "MeterValueSampleInterval", "1")
    first = start_session(cp, csms, "ONLINE1")
    csms.stop()
    offline(cp)
    cp.api.rfid("ONLINE1")  # stops its own transaction while offline
    cp.api.wait(lambda s: connector(s)["transaction_id"] is None and connector(s)["status"] == "Finishing")
    cp.api.ev(plug=False)
    cp.api.ev(plug=True, charge=True, max_a=10)
    cp.api.rfid("STRANGER")  # unknown card: allowed offline by AllowOfflineTxForUnknownId
    begin = connector(cp.api.wait(lambda s: connector(s)["status"] == "Charging"))["meter_wh"]
    cp.api.wait(lambda s: connector(s)["meter_wh"] >= begin + 8)
    cp.api.rfid("STRANGER")
    cp.api.wait(lambda s: connector(s)["status"] == "Finishing")

    back = Csms(port=csms.port).start()  # the same CSMS address comes back
    try:
        back.wait_for("StopTransaction", lambda p: p["idTag"] == "STRANGER", cp_id=cp.id, timeout=60)
        calls = [m for m in back.messages(cp.id, direction="in", kind="call")
                 if m.action in ("StartTransaction", "MeterValues", "StopTransaction")]
        actions = [m.action for m in calls]
        assert actions[0] == "StopTransaction" and calls[0].payload["transactionId"] == first
        assert calls[0].payload["reason"] == "Local"
        assert actions[1] == "StartTransaction" and calls[1].payload["idTag"] == "STRANGER"
        assert actions[-1] == "StopTransaction" and set(actions[2:-1]) == {"MeterValues"}
        second = back.transactions[1]["id"]
        assert all(m.payload["transactionId"] == second for m in calls[2:])
        readings = [int(sv["value"]) for m in calls[2:-1] for mv in m.payload["meterValue"]
                    for sv in mv["sampledValue"] if sv.get("measurand") == "Energy.Active.Import.Register"]
        assert readings == sorted(readings) and len(readings) >= 2
        assert calls[-1].payload["meterStop"] >= readings[-1]
        assert back.errors == []
    finally:
        back.stop()


def test_reconnects_without_a_new_boot(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    csms.wait_for("StatusNotification", lambda p: p["connectorId"] == 1, cp_id=cp.id)
    mark = csms.mark()
    csms.disconnect(cp.id)
    csms.wait_for("StatusNotification", lambda p: p["connectorId"] == 1, cp_id=cp.id, since=mark, timeout=20)
    assert csms.connects[cp.id] == 2
    assert not csms.messages(cp.id, "BootNotification", since=mark)
    assert cp.api.state()["ocpp"]["registration"] == "Accepted"


def test_dead_link_detected_by_pings(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "WebSocketPingInterval", "1")
    csms._loop.call_soon_threadsafe(time.sleep, 9)  # the CSMS hangs: no pong, no frame, no close
    cp.api.wait(lambda s: "no answer to pings" in cp.log(), timeout=20)
    mark = csms.mark()
    cp.api.wait(lambda s: csms.connects[cp.id] == 2 and s["ocpp"]["connected"], timeout=30)
    csms.wait_for("StatusNotification", lambda p: p["connectorId"] == 1, cp_id=cp.id,
                  since=mark, timeout=10)


def test_power_loss_during_transaction(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    tid = start_session(cp, csms)
    cp.api.wait(lambda s: connector(s)["meter_wh"] >= 2)
    cp.kill()
    mark = csms.mark()
    cp.restart()
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id, since=mark)
    assert stop["reason"] == "PowerLoss"
    assert 0 <= stop["meterStop"] <= connector(cp.api.state())["meter_wh"]
    assert cp.api.wait(lambda s: connector(s)["transaction_id"] is None)


def _campaign(csms, charge_point, sessions, seed):
    """Sessions with a power cut at a random instant in some of them; returns the CSMS's view."""
    rnd = random.Random(seed)
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "MeterValueSampleInterval", "1")
    for n in range(sessions):
        tag = "CUT%03d" % n
        cp.api.ev(plug=True, charge=True, max_a=rnd.choice((6, 16, 32)))
        cp.api.rfid(tag)
        if rnd.random() < 0.7:
            time.sleep(rnd.uniform(0, 2.5))  # the instant of the power cut is the point of the test
            cp.kill()
            cp.restart()
            cp.api.ev(plug=False)
        else:
            cp.api.wait(lambda s: connector(s)["status"] == "Charging", timeout=30)
            cp.api.rfid(tag)
            cp.api.wait(lambda s: connector(s)["transaction_id"] is None, timeout=30)
            cp.api.ev(plug=False)
        cp.api.wait(lambda s: connector(s)["status"] == "Available", timeout=30)
    # everything queued reaches the CSMS
    cp.api.wait(lambda s: s["ocpp"]["registration"] == "Accepted" and s["ocpp"]["connected"])
    assert csms.call(cp.id, ("GetConfiguration", {"key": ["MeterValueSampleInterval"]}))[
        "configurationKey"][0]["value"] == "1"
    return cp


def _check_exactly_once(csms, cp):
    deadline = time.monotonic() + 30
    while any(t["stop"] is None for t in csms.transactions.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    txs = csms.transactions.values()
    assert all(t["stop"] is not None for t in txs), f"a started transaction never stopped: {list(txs)}"
    stops = [m.payload["transactionId"] for m in csms.messages(cp.id, "StopTransaction", "in", "call")]
    assert len(stops) == len(set(stops)), f"a StopTransaction arrived twice: {stops}"
    tags = [t["id_tag"] for t in txs]
    assert len(tags) == len(set(tags)), f"a StartTransaction arrived twice: {tags}"
    readings = [m.payload["meterStart"] for m in csms.messages(cp.id, "StartTransaction", "in", "call")]
    assert readings == sorted(readings), f"the meter went backwards: {readings}"
    for t in txs:
        assert t["meter_stop"] >= t["meter_start"], t


@pytest.mark.soak
def test_power_cut_campaign(csms, charge_point):
    sessions = 40 if os.environ.get("UWB_SOAK") else 4
    cp = _campaign(csms, charge_point, sessions, seed=os.environ.get("UWB_SEED", 1))
    _check_exactly_once(csms, cp)
