"""Remote Trigger profile: TriggerMessage makes the charge point send a message now.

The requested message goes out after the answer. Firmware and diagnostics report
`app.firmware_status` / `app.diagnostics_status` (the firmware-management module sets them;
"Idle" while it does not).
"""
import asyncio

from ..errors import CallError, Offline
from ..log import log


async def send(app, action, payload):
    """CALL ACTION now; a failure is only logged (the CSMS may trigger it again)."""
    try:
        await app.rpc.call(action, payload)
    except (Offline, CallError, asyncio.TimeoutError) as e:
        log("!", "triggered %s not sent: %r" % (action, e))


async def _boot(app, cid):
    if app.session.registration != "Accepted":
        app.session.boot_wake.set()  # registration sends it now
        return
    try:
        await app.session.boot_notification()
    except (Offline, CallError, asyncio.TimeoutError) as e:
        log("!", "triggered BootNotification not sent: %r" % e)


async def _diagnostics(app, cid):
    await send(app, "DiagnosticsStatusNotification", {"status": getattr(app, "diagnostics_status", "Idle")})


async def _firmware(app, cid):
    await send(app, "FirmwareStatusNotification", {"status": getattr(app, "firmware_status", "Idle")})


async def _heartbeat(app, cid):
    await app.session.heartbeat()


async def _meter_values(app, cid):
    await app.metering.triggered(cid)


async def _status(app, cid):
    app.statuses.report(cid)


_SENDERS = {
    "BootNotification": _boot,
    "DiagnosticsStatusNotification": _diagnostics,
    "FirmwareStatusNotification": _firmware,
    "Heartbeat": _heartbeat,
    "MeterValues": _meter_values,
    "StatusNotification": _status,
}


def request(app, message, cid=None):
    """Send MESSAGE (for connector CID; None: all) after the answer being made (ExtendedTriggerMessage
    may reuse it).
    'Accepted', 'Rejected' (no such connector, or not registered yet) or 'NotImplemented'."""
    send = _SENDERS.get(message)
    if send is None:
        return "NotImplemented"
    if cid is not None and not 0 <= cid <= len(app.connectors):
        return "Rejected"
    if app.session.registration != "Accepted" and message != "BootNotification":
        return "Rejected"
    app.rpc.after("trigger:" + message, send(app, cid))
    return "Accepted"


def trigger_message(app, p):
    return {"status": request(app, p["requestedMessage"], p.get("connectorId"))}
