"""Core profile: the CSMS's requests."""
from .. import transient
from ..errors import PROPERTY, CallError
from ..ocpp.routes import PNC_VENDOR


def change_availability(app, p):
    cid, on = p["connectorId"], p["type"] == "Operative"
    if cid and app.connector(cid) is None:
        return {"status": "Rejected"}
    busy = [c for c in app.connectors if c.tx and cid in (0, c.id)]
    app.set_available(cid, on)
    return {"status": "Scheduled" if busy and not on else "Accepted"}


def change_configuration(app, p):
    with transient():  # the rules of the keys, for this request only
        from ..station import keyrules
        key = keyrules.canonical(p["key"])
        return {"status": app.config.change(key, p["value"]) if key else "NotSupported"}


def clear_cache(app, p):
    app.auth.clear()
    return {"status": "Accepted"}


# Vendor extensions: vendorId -> {messageId: fn(app, data) -> (status, data)}.
VENDORS = {}


def data_transfer(app, p):
    vendor = p["vendorId"]
    msgs = VENDORS.get(vendor)
    if vendor == PNC_VENDOR and app.config["ISO15118PnCEnabled"]:  # pnc.py loads only when on
        from .pnc import MESSAGES as msgs
    if msgs is None:
        return {"status": "UnknownVendorId"}
    fn = msgs.get(p.get("messageId"))
    if fn is None:
        return {"status": "UnknownMessageId"}
    status, data = fn(app, p.get("data"))
    return {"status": status, "data": data} if data is not None else {"status": status}


def get_configuration(app, p):
    # the rules of the keys, for this request only (the stream of every key keeps the module
    # object until it ends)
    with transient():
        from ..station import keyrules as cfgmod
        return _configuration(app.config, p.get("key"), cfgmod)


def _configuration(cfg, keys, cfgmod):
    if not keys:  # an empty list asks for every key, as an omitted one does: streamed, one
        return {"configurationKey": _every_key(cfg, cfgmod)}  # entry at a time (rpc._parts)
    if len(keys) > cfg["GetConfigurationMaxKeys"]:
        raise CallError(PROPERTY, "more than GetConfigurationMaxKeys keys")
    known, unknown = [], []
    for k in keys:
        k = cfgmod.canonical(k) or k  # keys are CiStrings: heartbeatinterval is HeartbeatInterval
        s = cfgmod.spec(k)
        if s is None or s[1] & cfgmod.SECRET:
            unknown.append(k)
        else:
            known.append(_entry(cfg, k, s, cfgmod))
    out = {"configurationKey": known}
    if unknown:
        out["unknownKey"] = unknown
    return out


def _entry(cfg, k, s, cfgmod):
    return {"key": k, "readonly": bool(s[1] & cfgmod.RO or k in cfg.fixed),
            "value": cfgmod.text(cfg.get(k, s[2]))}


def _every_key(cfg, cfgmod):
    for k in cfgmod.names():
        s = cfgmod.spec(k)
        if not s[1] & cfgmod.SECRET:
            yield _entry(cfg, k, s, cfgmod)


def remote_start(app, p):
    # connectorId, when given, names a connector (> 0); absent, the charge point chooses
    cid = p.get("connectorId")
    if cid is not None and not 1 <= cid <= len(app.connectors):
        return {"status": "Rejected"}
    cid = cid or 0
    tag = p["idTag"]
    info = app.auth.local(tag) or {}  # its group, if known here, for a reservation's holder
    free = [c for c in app.connectors if c.tx is None and c.operative and not c.evse.fault
            and cid in (0, c.id) and _may_start(app, c.id, tag, info)]
    if not free or (cid == 0 and "chargingProfile" in p):
        return {"status": "Rejected"}  # no connector where the start could happen
    if "chargingProfile" in p:
        from .smartcharging import acceptable
        if not acceptable(app, cid, p["chargingProfile"]):
            return {"status": "Rejected"}
    app.rpc.after("remote-start:%d" % cid, _remote_start(app, p["idTag"], cid, p.get("chargingProfile")))
    return {"status": "Accepted"}


def _may_start(app, cid, tag, info):
    """May TAG start on connector CID, as far as its reservations tell now?"""
    if app.admits(cid, tag, info):
        return True
    # a card unknown here may belong to a reserving group: its Authorize will tell
    return not info and any(r["parent"] for r in app.reservations.values())


async def _remote_start(app, tag, cid, profile):
    if app.config["AuthorizeRemoteTxRequests"]:
        info = await app.auth.authorize(tag)
        if info.get("status") != "Accepted":
            return
    else:
        info = {"status": "Accepted"}
    if app.begin(tag, info, cid) and profile:
        from .smartcharging import remote_profile
        remote_profile(app, cid, profile)


def remote_stop(app, p):
    for c in app.connectors:
        if c.tx and c.transaction_id == p["transactionId"]:
            c.stop("Remote")
            return {"status": "Accepted"}
    return {"status": "Rejected"}


def reset(app, p):
    reason = "HardReset" if p["type"] == "Hard" else "SoftReset"
    app.rpc.after("reset", app.reboot(reason))
    return {"status": "Accepted"}


def unlock_connector(app, p):
    c = app.connector(p["connectorId"])
    if c is None or not app.board.SOCKET:
        # no such connector, or a tethered cable with no lock to open: nothing is done (a
        # running transaction goes on)
        return {"status": "NotSupported"}
    if c.tx:
        c.stop("UnlockCommand")
    return {"status": "Unlocked" if c.evse.unlock() else "UnlockFailed"}
