# MicroPython unit tests of the Reservation profile, on the real App built from the sim board
# (UWB_SIM_CONNECTORS=2; _app(n) keeps the first n). Evse outputs are set by hand (no timer runs).
import json

import board
from uwallbox import clock
from uwallbox.app import App
from uwallbox.profiles.reservation import cancel_reservation, reserve_now

PYTEST = {"env": {"UWB_SIM_CONNECTORS": "2"}}  # how tests/conftest.py runs these cases

_OK = {"status": "Accepted"}


class _Board:
    """The sim board with only its first N connectors."""

    def __init__(self, n):
        self.CONNECTORS = board.CONNECTORS[:n]

    def __getattr__(self, name):
        return getattr(board, name)


def _app(n=1):
    return App(_Board(n))


def _reserve(app, rid, cid, tag="HOLDER", minutes=10, parent=None):
    p = {"connectorId": cid, "expiryDate": clock.iso(app.clock.now() + minutes * 60),
         "idTag": tag, "reservationId": rid}
    if parent:
        p["parentIdTag"] = parent
    return reserve_now(app, p)["status"]


def _statuses(app):
    return [c.derive() for c in app.connectors]


def _started(app):
    """The StartTransaction payloads queued in the journal."""
    j = app.journal
    return [m["p"] for m in (j.read(n) for n in j.names()) if m["a"] == "StartTransaction"]


def test_reserve_and_cancel():
    app = _app()
    assert _statuses(app) == ["Available"]
    assert _reserve(app, 1, 1) == "Accepted"
    assert _statuses(app) == ["Reserved"]
    assert cancel_reservation(app, {"reservationId": 2}) == {"status": "Rejected"}
    assert cancel_reservation(app, {"reservationId": 1}) == _OK
    assert _statuses(app) == ["Available"]
    assert cancel_reservation(app, {"reservationId": 1}) == {"status": "Rejected"}


def test_rejected():
    app = _app()
    assert _reserve(app, 1, 2) == "Rejected"  # no connector 2
    assert _reserve(app, 1, -1) == "Rejected"
    assert _reserve(app, 1, 1, minutes=-1) == "Rejected"  # already expired
    app.config.fixed["ReserveConnectorZeroSupported"] = False
    assert _reserve(app, 1, 0) == "Rejected"
    assert app.reservations == {}
    del app.config.fixed["ReserveConnectorZeroSupported"]
    assert _reserve(app, 1, 0) == "Accepted"


def test_faulted_unavailable_occupied():
    app = _app()
    e = app.evses[0]
    e.fault = "GroundFailure"
    assert _reserve(app, 1, 1) == "Faulted"
    assert _reserve(app, 1, 0) == "Faulted"
    e.fault = None
    app.set_available(1, False)
    assert _reserve(app, 1, 1) == "Unavailable"
    app.set_available(1, True)
    app.set_available(0, False)
    assert _reserve(app, 1, 0) == "Unavailable"
    app.set_available(0, True)
    e.plugged = True
    assert _reserve(app, 1, 1) == "Occupied"
    e.plugged = False
    assert _reserve(app, 1, 1, "A") == "Accepted"
    assert _reserve(app, 2, 1, "B") == "Occupied"  # reserved for someone else
    assert _reserve(app, 3, 1, "A") == "Occupied"  # or for the same idTag
    assert _reserve(app, 4, 0, "B") == "Occupied"
    assert list(app.reservations) == ["1"]


def test_same_id_replaces():
    app = _app(2)
    assert _reserve(app, 7, 1, "A") == "Accepted"
    assert _reserve(app, 7, 2, "B") == "Accepted"
    assert list(app.reservations) == ["7"] and app.reservations["7"]["tag"] == "B"
    assert _statuses(app) == ["Available", "Reserved"]
    app.evses[0].plugged = True
    assert _reserve(app, 7, 1, "C") == "Occupied"  # refused: the old one stays
    assert app.reservations["7"]["cid"] == 2 and _statuses(app)[1] == "Reserved"


def test_expiry_with_clock_jump_and_reboot():
    app = _app()
    assert _reserve(app, 3, 1, minutes=5) == "Accepted"
    app2 = _app()  # reboot: the reservation is in flash
    assert _statuses(app2) == ["Reserved"]
    app2.clock.advance(5 * 60 + 1)
    assert _statuses(app2) == ["Available"]
    assert json.load(open("resv.json")) == {}
    assert _reserve(app2, 4, 1, minutes=1) == "Accepted"
    app3 = _app()  # reboot; the expiry passes meanwhile
    assert _statuses(app3) == ["Reserved"]
    app3.clock.advance(5 * 60 + 1 + 61)
    assert _statuses(app3) == ["Available"] and app3.reservations == {}


def test_fault_or_unavailable_ends_reservation():
    app = _app()
    assert _reserve(app, 1, 1) == "Accepted"
    app.evses[0].fault = "GroundFailure"
    app.connectors[0].update()  # Faulted: status_changed ends the reservation
    assert app.reservations == {}
    app.evses[0].fault = None
    assert _reserve(app, 2, 1) == "Accepted"
    app.set_available(1, False)
    assert app.reservations == {}
    app.set_available(1, True)
    assert _reserve(app, 3, 0) == "Accepted"
    app.set_available(0, False)
    assert app.reservations == {}


def test_only_holder_or_group_may_start():
    app = _app()
    assert _reserve(app, 5, 1, "HOLDER", parent="FLEET") == "Accepted"
    app.evses[0].plugged = True
    assert not app.begin("STRANGER", {"status": "Accepted"})
    assert not app.begin("OTHER", {"status": "Accepted", "parentIdTag": "ELSEWHERE"})
    assert app.connectors[0].tx is None and app.reserved(1)
    assert app.begin("COLLEAGUE", {"status": "Accepted", "parentIdTag": "FLEET"})
    start = _started(app)
    assert start[0]["idTag"] == "COLLEAGUE" and start[0]["reservationId"] == 5, start
    assert app.reservations == {} and not app.reserved(1)


def test_holder_waits_for_plug():
    app = _app()
    assert _reserve(app, 6, 1, "HOLDER") == "Accepted"
    assert app.begin("HOLDER", {"status": "Accepted"})
    c = app.connectors[0]
    assert c.pending and app.reservations  # kept until the transaction starts
    app.evses[0].plugged = True
    c.update()
    assert c.tx and _started(app)[0]["reservationId"] == 6
    assert app.reservations == {}


def test_reservation_id_only_with_reservation():
    app = _app()
    app.evses[0].plugged = True
    assert app.begin("ANYONE", {"status": "Accepted"})
    assert "reservationId" not in _started(app)[0]


def test_connector_zero_keeps_last_free_connector():
    app = _app(2)
    assert _reserve(app, 9, 0, "HOLDER") == "Accepted"
    assert _statuses(app) == ["Available", "Available"]  # two free: neither is held yet
    app.evses[0].plugged = True
    assert app.begin("STRANGER", {"status": "Accepted"})  # may take one
    assert "reservationId" not in _started(app)[0]
    assert _statuses(app)[1] == "Reserved"  # the last free one is held
    assert _reserve(app, 10, 0, "OTHER") == "Occupied"
    app.evses[1].plugged = True
    assert not app.begin("STRANGER2", {"status": "Accepted"})
    assert app.begin("HOLDER", {"status": "Accepted"})
    assert _started(app)[1]["connectorId"] == 2 and _started(app)[1]["reservationId"] == 9
    assert app.reservations == {}


def test_connector_zero_single_connector():
    app = _app()
    assert _reserve(app, 11, 0, "HOLDER") == "Accepted"
    assert _statuses(app) == ["Reserved"]
    app.evses[0].plugged = True
    assert not app.begin("STRANGER", {"status": "Accepted"})
    assert app.begin("HOLDER", {"status": "Accepted"})
    assert _started(app)[0]["reservationId"] == 11
