"""Reservation profile: ReserveNow / CancelReservation answers, expiry (clock jumps, reboots),
who may start on a reserved connector, connector 0, end to end (the unit cases under MicroPython:
tests/mpy/reservation_cases.py)."""
from datetime import datetime, timedelta, timezone

import pytest

from harness import connector, online, status


# -- end to end: the firmware in the simulator against the test CSMS (schemas checked) ----------

def in_s(seconds):
    """ISO 8601 UTC date-time SECONDS from now (the firmware's clock follows the CSMS's)."""
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")




def reserve(csms, cp, rid, cid, tag="HOLDER", expires_in=600, parent=None):
    p = {"connectorId": cid, "expiryDate": in_s(expires_in), "idTag": tag, "reservationId": rid}
    if parent:
        p["parentIdTag"] = parent
    return csms.call(cp.id, ("ReserveNow", p))["status"]


def cancel(csms, cp, rid):
    return csms.call(cp.id, ("CancelReservation", {"reservationId": rid}))["status"]


def reported(csms, cp, cid, *statuses, since=0, timeout=10):
    return csms.wait_for("StatusNotification", status(cid, *statuses), cp_id=cp.id, since=since,
                         timeout=timeout)


def no_start(csms, cp, since, timeout=3):
    with pytest.raises(TimeoutError):
        csms.wait_for("StartTransaction", cp_id=cp.id, since=since, timeout=timeout)


@pytest.mark.timeout(60)
def test_reserve_cancel_and_answers(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    mark = csms.mark()
    assert reserve(csms, cp, 1, 1) == "Accepted"
    reported(csms, cp, 1, "Reserved", since=mark)
    assert connector(cp.api.state())["status"] == "Reserved"
    assert reserve(csms, cp, 2, 1, "OTHER") == "Occupied"
    assert reserve(csms, cp, 3, 1, "HOLDER") == "Occupied"
    assert reserve(csms, cp, 4, 0, "OTHER") == "Occupied"  # no connector left for connector 0
    assert reserve(csms, cp, 5, 2) == "Rejected"  # no such connector
    assert reserve(csms, cp, 5, 1, expires_in=-60) == "Rejected"
    assert cancel(csms, cp, 99) == "Rejected"
    mark = csms.mark()
    assert cancel(csms, cp, 1) == "Accepted"
    reported(csms, cp, 1, "Available", since=mark)
    assert cancel(csms, cp, 1) == "Rejected"


@pytest.mark.timeout(60)
def test_faulted_unavailable_occupied(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    cp.api.fault(rcd=True)
    cp.api.wait(lambda s: connector(s)["status"] == "Faulted", 10)
    assert reserve(csms, cp, 1, 1) == "Faulted"
    assert reserve(csms, cp, 1, 0) == "Faulted"
    cp.api.fault(rcd=False)
    cp.api.wait(lambda s: connector(s)["status"] == "Available", 10)
    answer = csms.call(cp.id, ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}))
    assert answer == {"status": "Accepted"}
    cp.api.wait(lambda s: connector(s)["status"] == "Unavailable", 10)
    assert reserve(csms, cp, 1, 1) == "Unavailable"
    assert reserve(csms, cp, 1, 0) == "Unavailable"
    csms.call(cp.id, ("ChangeAvailability", {"connectorId": 0, "type": "Operative"}))
    cp.api.ev(plug=True)
    cp.api.wait(lambda s: connector(s)["status"] == "Preparing", 10)
    assert reserve(csms, cp, 1, 1) == "Occupied"
    cp.api.ev(plug=False)
    cp.api.wait(lambda s: connector(s)["status"] == "Available", 10)
    assert reserve(csms, cp, 1, 1) == "Accepted"
    mark = csms.mark()
    cp.api.fault(rcd=True)  # a fault ends the reservation
    reported(csms, cp, 1, "Faulted", since=mark)
    cp.api.fault(rcd=False)
    reported(csms, cp, 1, "Available", since=mark)
    assert cancel(csms, cp, 1) == "Rejected"


@pytest.mark.timeout(60)
def test_same_id_replaces(csms, charge_point):
    cp = charge_point(connectors=2)
    online(csms, cp, 2)
    mark = csms.mark()
    assert reserve(csms, cp, 7, 1, "A") == "Accepted"
    reported(csms, cp, 1, "Reserved", since=mark)
    mark = csms.mark()
    assert reserve(csms, cp, 7, 2, "B") == "Accepted"
    reported(csms, cp, 2, "Reserved", since=mark)
    reported(csms, cp, 1, "Available", since=mark)
    assert [c["status"] for c in cp.api.state()["connectors"]] == ["Available", "Reserved"]


@pytest.mark.timeout(60)
def test_expiry_follows_clock_jump(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    mark = csms.mark()
    assert reserve(csms, cp, 3, 1, expires_in=60) == "Accepted"
    reported(csms, cp, 1, "Reserved", since=mark)
    mark = csms.mark()
    cp.api.clock(61)
    reported(csms, cp, 1, "Available", since=mark)
    assert cancel(csms, cp, 3) == "Rejected"


@pytest.mark.timeout(60)
def test_only_holder_starts_and_ends_reservation(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    assert reserve(csms, cp, 5, 1, "HOLDER") == "Accepted"
    cp.api.ev(plug=True)
    mark = csms.mark()
    cp.api.rfid("STRANGER")
    assert csms.wait_for("Authorize", cp_id=cp.id, since=mark)["idTag"] == "STRANGER"
    no_start(csms, cp, mark)
    cp.api.ev(plug=False)
    reported(csms, cp, 1, "Reserved", since=mark)
    mark = csms.mark()
    cp.api.rfid("HOLDER")  # before the plug: the reservation holds until the transaction starts
    cp.api.ev(plug=True)
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["idTag"], start["connectorId"], start.get("reservationId")) == ("HOLDER", 1, 5), start
    assert cancel(csms, cp, 5) == "Rejected"  # ended by its transaction


@pytest.mark.timeout(60)
def test_parent_id_tag_may_use_reservation(csms, charge_point):
    def authorize(cp_id, p):  # cards FLEET-* belong to the group FLEET
        info = {"status": "Accepted"}
        if p["idTag"].startswith("FLEET-"):
            info["parentIdTag"] = "FLEET"
        return {"idTagInfo": info}

    csms.handlers["Authorize"] = authorize
    cp = charge_point()
    online(csms, cp)
    assert reserve(csms, cp, 6, 1, "FLEET-A", parent="FLEET") == "Accepted"
    cp.api.ev(plug=True)
    mark = csms.mark()
    cp.api.rfid("OUTSIDER")
    csms.wait_for("Authorize", lambda p: p["idTag"] == "OUTSIDER", cp_id=cp.id, since=mark)
    no_start(csms, cp, mark)
    cp.api.rfid("FLEET-B")
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["idTag"], start.get("reservationId")) == ("FLEET-B", 6), start
    answer = next(m.payload for m in csms.messages(cp.id, "Authorize", "out", "result", since=mark)
                  if m.payload["idTagInfo"].get("parentIdTag"))
    assert answer["idTagInfo"]["parentIdTag"] == "FLEET"


@pytest.mark.timeout(60)
def test_connector_zero_keeps_last_free_connector(csms, charge_point):
    cp = charge_point(connectors=2)
    online(csms, cp, 2)
    mark = csms.mark()
    assert reserve(csms, cp, 9, 0, "HOLDER") == "Accepted"
    cp.api.ev(connector=1, plug=True)
    cp.api.rfid("STRANGER")  # one of two free connectors may be used by someone else
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["connectorId"], start["idTag"]) == (1, "STRANGER") and "reservationId" not in start
    reported(csms, cp, 2, "Reserved", since=mark)  # the last free one is held
    assert not any(m.payload["status"] == "Reserved"
                   for m in csms.messages(cp.id, "StatusNotification", "in", "call", since=mark)
                   if m.payload["connectorId"] == 1)
    assert reserve(csms, cp, 10, 0, "OTHER") == "Occupied"
    mark = csms.mark()
    cp.api.ev(connector=2, plug=True)
    cp.api.rfid("STRANGER2")
    csms.wait_for("Authorize", lambda p: p["idTag"] == "STRANGER2", cp_id=cp.id, since=mark)
    no_start(csms, cp, mark)
    cp.api.rfid("HOLDER")
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["connectorId"], start["idTag"], start.get("reservationId")) == (2, "HOLDER", 9), start


@pytest.mark.timeout(90)
def test_reservations_survive_reboot(csms, charge_point):
    cp = charge_point(connectors=2)
    online(csms, cp, 2)
    mark = csms.mark()
    assert reserve(csms, cp, 11, 1, "LONG", expires_in=3600) == "Accepted"
    assert reserve(csms, cp, 12, 2, "SHORT", expires_in=120) == "Accepted"
    reported(csms, cp, 2, "Reserved", since=mark)
    cp.kill()  # power cut
    mark = csms.mark()
    cp.restart()
    csms.wait_for("BootNotification", cp_id=cp.id, since=mark)
    reported(csms, cp, 1, "Reserved", since=mark, timeout=30)
    reported(csms, cp, 2, "Reserved", since=mark)
    cp.api.clock(121)
    reported(csms, cp, 2, "Available", since=mark)
    assert connector(cp.api.state())["status"] == "Reserved"
    cp.api.ev(connector=1, plug=True)
    cp.api.rfid("LONG")
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["connectorId"], start.get("reservationId")) == (1, 11), start


@pytest.mark.timeout(60)
def test_remote_start_respects_reservation(csms, charge_point):
    cp = charge_point()
    online(csms, cp)
    assert reserve(csms, cp, 13, 1, "HOLDER") == "Accepted"
    cp.api.ev(plug=True)
    mark = csms.mark()
    # the connector is held for another idTag: the start cannot happen, so Rejected at once
    answer = csms.call(cp.id, ("RemoteStartTransaction", {"idTag": "STRANGER", "connectorId": 1}))
    assert answer == {"status": "Rejected"}
    no_start(csms, cp, mark)
    answer = csms.call(cp.id, ("RemoteStartTransaction", {"idTag": "HOLDER", "connectorId": 1}))
    assert answer == {"status": "Accepted"}
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["idTag"], start.get("reservationId")) == ("HOLDER", 13), start
