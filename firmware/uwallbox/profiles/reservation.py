"""Reservation profile: ReserveNow, CancelReservation, and who may start on a reserved connector.

`app.reservations` (saved by `app.save_reservations()`) maps str(reservationId) to
{"cid", "tag", "parent", "expiry"} (expiry in Unix seconds). A reservation on connector 0 keeps
one idle connector, whichever, for its holder. A reservation ends when its holder starts a
transaction, at its expiry, or when its connector (for connector 0: the charge point) goes
Faulted or Unavailable.
"""
from .. import clock
from ..log import log


def _ended(app, cid):
    """Is connector CID (0: the charge point) out of order, which ends its reservations?"""
    if cid == 0:
        return not app.available(0)
    c = app.connector(cid)
    return c is None or c.evse.fault is not None or not c.operative


def prune(app):
    """app.reservations, without those that have ended."""
    res = app.reservations
    now = app.clock.now()
    gone = [k for k, r in res.items() if r["expiry"] <= now or _ended(app, r["cid"])]
    for k in gone:
        r = res.pop(k)
        log("resv", "reservation %s on connector %d ended" % (k, r["cid"]))
    if gone:
        app.save_reservations()
    return res


def _holder(r, tag, info):
    """Is reservation R for TAG, or for its group (INFO's parentIdTag)?"""
    from ..station.auth import same
    parent = info.get("parentIdTag")
    return same(r["tag"], tag) or same(r["tag"], parent) or same(r["parent"], tag) or same(r["parent"], parent)


def _idle(c):
    """Could anyone start on connector C now (nothing plugged, pending or running, in order)?"""
    e = c.evse
    return c.tx is None and c.pending is None and c.operative and e.fault is None and not e.plugged


def _spare(app, res):
    """(idle connectors without a reservation of their own, number of connector-0 reservations)."""
    cids = [r["cid"] for r in res.values()]
    return [c.id for c in app.connectors if _idle(c) and c.id not in cids], cids.count(0)


def held(app, cid):
    """Is connector CID kept for a reservation holder (status Reserved)?"""
    res = prune(app)
    if any(r["cid"] == cid for r in res.values()):
        return True
    idle, zero = _spare(app, res)
    return cid in idle and len(idle) <= zero


def admits(app, cid, tag, info):
    """May TAG (INFO: its idTagInfo) start on connector CID, given the reservations?"""
    res = prune(app)
    for r in res.values():
        if r["cid"] == cid:
            return _holder(r, tag, info)
    if any(r["cid"] == 0 and _holder(r, tag, info) for r in res.values()):
        return True
    idle, zero = _spare(app, res)
    return len([i for i in idle if i != cid]) >= zero


def claim(app, cid, tag, info):
    """End the reservation TAG starts a transaction with on connector CID: its id, or None."""
    res = prune(app)
    for want in (cid, 0):
        for k, r in res.items():
            if r["cid"] == want and _holder(r, tag, info):
                del res[k]
                app.save_reservations()
                log("resv", "reservation %s used by %s on connector %d" % (k, tag, cid))
                return int(k)
    return None


def _answer(statuses):
    """ReserveNow status for connectors now in STATUSES (any one Available will do)."""
    if "Available" in statuses:
        return "Accepted"
    if all(s == "Faulted" for s in statuses):
        return "Faulted"
    if all(s in ("Faulted", "Unavailable") for s in statuses):
        return "Unavailable"
    return "Occupied"


def reserve_now(app, p):
    """Rejected: no such connector (0 unless ReserveConnectorZeroSupported) or already expired."""
    cid, key = p["connectorId"], str(p["reservationId"])
    expiry = clock.parse(p["expiryDate"])
    known = app.config["ReserveConnectorZeroSupported"] if cid == 0 else app.connector(cid) is not None
    if not known or expiry <= app.clock.now():
        return {"status": "Rejected"}
    res = prune(app)
    old = res.pop(key, None)  # the same reservationId is replaced
    status = _answer([c.derive() for c in app.connectors if cid in (0, c.id)])
    if status == "Accepted":
        res[key] = {"cid": cid, "tag": p["idTag"], "parent": p.get("parentIdTag"), "expiry": expiry}
        app.save_reservations()
        log("resv", "reservation %s: connector %d for %s until %s" % (key, cid, p["idTag"], p["expiryDate"]))
    elif old:
        res[key] = old
    return {"status": status}


def cancel_reservation(app, p):
    res = prune(app)
    if res.pop(str(p["reservationId"]), None) is None:
        return {"status": "Rejected"}
    app.save_reservations()
    return {"status": "Accepted"}
