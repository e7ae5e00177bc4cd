"""Reliability under faults and hostile input (issue 18): the link, the journal, the heap."""
import pytest

from harness import configure, connector, offline, registered, start_session

pytestmark = pytest.mark.timeout(300)

BOOT_LINE = "uwallbox "  # the firmware's first log line at each start ("uwallbox <version> on board")


def boots(cp):
    return sum(1 for line in cp.log().splitlines() if BOOT_LINE in line and " on board " in line)


def test_oversized_frames_close_the_link_but_never_crash(csms, charge_point):
    # Each 70 KB frame is over the firmware's maximum message size: it closes the link with 1009
    # while the metering, status and heartbeat tasks send. Three such crashes once tripped the
    # crash-loop guard and took the charge point out of service.
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "MeterValueSampleInterval", "1")
    configure(csms, cp, "HeartbeatInterval", "1")
    tx = start_session(cp, csms, "RELIABLE")
    for i in range(5):
        csms.send_raw(cp.id, '[2,"big%d","DataTransfer",{"vendorId":"x","data":"%s"}]' % (i, "a" * 70000))
        cp.api.wait(lambda s: csms.connects[cp.id] == i + 2 and s["ocpp"]["connected"]
                    and s["ocpp"]["registration"] == "Accepted", 30)
    assert boots(cp) == 1, "the firmware restarted"
    assert not (cp.state_dir / "crash.log").exists(), (cp.state_dir / "crash.log").read_text()
    s = cp.api.state()
    assert connector(s)["transaction_id"] == tx and connector(s)["status"] == "Charging", s
    mark = csms.mark()
    cp.api.rfid("RELIABLE")
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tx, cp_id=cp.id,
                         since=mark, timeout=30)
    assert stop["reason"] == "Local"


def test_power_cuts_with_the_csms_down_lose_no_stop(csms, charge_point):
    # The sequence that orphaned a transaction: references restarted from the queue at boot, so
    # after a cut with the CSMS down (the PowerLoss Stop of B queued) the next transaction C got
    # B's reference, and at the next cut C's Stop was taken as already queued.
    from harness import Csms
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "AllowOfflineTxForUnknownId", "true")
    start_session(cp, csms, "A")
    cp.kill()
    cp.restart()  # A ends with PowerLoss, delivered at once
    csms.wait_for("StopTransaction", lambda p: p["reason"] == "PowerLoss", cp_id=cp.id)
    cp.api.ev(plug=False)
    cp.api.wait(lambda s: connector(s)["status"] == "Available" and s["ocpp"]["queued"] == 0, 30)
    b = start_session(cp, csms, "B")
    cp.api.wait(lambda s: s["ocpp"]["queued"] == 0, 30)
    port = csms.port
    csms.stop()
    offline(cp)
    cp.kill()
    cp.restart()  # B ends with PowerLoss, queued: the CSMS is down
    cp.api.ev(plug=False)
    cp.api.wait(lambda s: connector(s)["status"] == "Available", 30)
    cp.api.ev(plug=True, charge=True, max_a=16)
    cp.api.rfid("C")
    cp.api.wait(lambda s: connector(s)["status"] == "Charging", 30)
    cp.kill()
    cp.restart()  # C ends with PowerLoss too
    back = Csms(port=port).start()
    try:
        back.wait_for("StartTransaction", lambda p: p["idTag"] == "C", cp_id=cp.id, timeout=60)
        cp.api.wait(lambda s: s["ocpp"]["queued"] == 0, 60)
        stops = back.messages(cp.id, "StopTransaction", "in", "call")
        c = [t["id"] for t in back.transactions.values() if t["id_tag"] == "C"]
        got = sorted(m.payload["transactionId"] for m in stops)
        assert len(c) == 1 and got == sorted([b, c[0]]), (got, b, c)
        assert all(m.payload["reason"] == "PowerLoss" for m in stops)
        assert back.errors == []
    finally:
        back.stop()
