"""Core profile: the CSMS's requests."""

from . import config as cfgmod
from .errors import CallError, PROPERTY


def change_availability(app, p):
    cid, on = p["connectorId"], p["type"] == "Operative"
    if cid and app.connector(cid) is None:
        return {"status": "Rejected"}
    busy = [c for c in app.connectors if c.tx and cid in (0, c.id)]
    app.set_available(cid, on)
    return {"status": "Scheduled" if busy and not on else "Accepted"}


def change_configuration(app, p):
    return {"status": app.config.change(p["key"], p["value"])}


def clear_cache(app, p):
    app.auth.clear()
    return {"status": "Accepted"}


# Vendor extensions: vendorId -> {messageId: fn(app, data) -> (status, data)}.
VENDORS = {}
PNC_VENDOR = "org.openchargealliance.iso15118pnc"  # ISO 15118 Plug & Charge (pnc.py)


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
    cfg = app.config
    keys = p.get("key")
    if keys is None:
        keys = cfgmod.names()
    elif len(keys) > cfg["GetConfigurationMaxKeys"]:
        raise CallError(PROPERTY, "more than GetConfigurationMaxKeys keys")
    known, unknown = [], []
    for k in keys:
        s = cfgmod.spec(k)
        if s is None or s[1] & cfgmod.SECRET:
            if "key" in p:
                unknown.append(k)
        else:
            known.append({"key": k, "readonly": bool(s[1] & cfgmod.RO or k in cfg.fixed),
                          "value": cfgmod.text(cfg[k])})
    out = {"configurationKey": known}
    if unknown:
        out["unknownKey"] = unknown
    return out


def remote_start(app, p):
    cid = p.get("connectorId", 0)
    if cid < 0 or cid > len(app.connectors):
        return {"status": "Rejected"}
    free = [c for c in app.connectors if c.tx is None and c.operative and cid in (0, c.id)]
    if not free or (cid == 0 and "chargingProfile" in p):
        return {"status": "Rejected"}
    if "chargingProfile" in p:
        from .smartcharging import acceptable
        if not acceptable(app, cid, p["chargingProfile"]):
            return {"status": "Rejected"}
    app.rpc.after(_remote_start(app, p["idTag"], cid, p.get("chargingProfile")))
    return {"status": "Accepted"}


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
    app.rpc.after(app.reboot(reason))
    return {"status": "Accepted"}


def unlock_connector(app, p):
    c = app.connector(p["connectorId"])
    if c is None:
        raise CallError(PROPERTY, "no connector %d" % p["connectorId"])
    if c.tx:
        c.stop("UnlockCommand")
    if not app.board.SOCKET:
        return {"status": "NotSupported"}
    return {"status": "Unlocked" if c.evse.unlock() else "UnlockFailed"}
