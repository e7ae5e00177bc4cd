"""Security events (OCPP 1.6 Security Whitepaper): each one is a line of the security log
(GetLog SecurityLog) and is queued in flash (files.SECURITY_QUEUE, the newest _QUEUE_MAX events) until a
SecurityEventNotification delivers it. The log is `security.log` and, once that has grown to
_LOG_MAX bytes, the `security.log.1` it was renamed to: an entry costs no RAM, however long the log.

Events this firmware detects (reported through `app.security_event`): StartupOfTheDevice,
ResetOrReboot, SettingSystemTime, ReconfigurationOfSecurityParameters,
InvalidCentralSystemCertificate, InvalidChargePointCertificate,
InvalidFirmwareSigningCertificate, InvalidFirmwareSignature, SecurityLogWasCleared, MemoryExhaustion, InvalidMessages.
Every event is sent, the critical ones and the others alike.
"""
import asyncio
import os
from micropython import const

from ..errors import CallError, Offline
from .. import files
from ..flash import store
from ..log import log

_LOG_MAX = const(4096)  # bytes of each half
_QUEUE_MAX = const(10)  # events waiting for delivery (up to 3 KB of RAM); the oldest goes first
_TYPE_MAX = const(50)
_INFO_MAX = const(255)


class SecurityLog:
    def __init__(self, app):
        self.app = app
        self.queue = store.load(files.SECURITY_QUEUE, [])  # [[type, timestamp, techInfo or None], ...]
        self.wake = asyncio.Event()

    def add(self, kind, info=None):
        """Record security event KIND (techInfo: INFO) and queue it for the CSMS."""
        kind, info = kind[:_TYPE_MAX], info and str(info)[:_INFO_MAX]
        now = self.app.clock.iso()
        log("sec", kind + (": " + info if info else ""))
        self.queue = self.queue[1 - _QUEUE_MAX:] + [[kind, now, info]]
        store.save(files.SECURITY_QUEUE, self.queue)
        self.wake.set()
        if self._append("%s %s %s\n" % (now, kind, info or "")):
            self.add("SecurityLogWasCleared", "oldest entries dropped")

    @staticmethod
    def _append(line):
        """Add LINE to the log; True when the older half had to go to make room."""
        old, new = files.SECURITY_LOGS
        try:
            size = os.stat(new)[6]
        except OSError:
            size = 0
        dropped = False
        if size + len(line) > _LOG_MAX:
            dropped = store.exists(old)
            os.rename(new, old)  # replaces the older half
        with open(new, "a") as f:  # LittleFS commits an append when the file closes
            f.write(line)
        return dropped

    async def run(self):
        """Deliver the queued events, oldest first, whenever online."""
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            await self.app.session.online.wait()
            event = self.queue[0]
            kind, when, info = event
            req = {"type": kind, "timestamp": when}
            if info:
                req["techInfo"] = info
            try:
                await self.app.rpc.call("SecurityEventNotification", req)
            except (Offline, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            except CallError as e:
                log("!", "SecurityEventNotification %s refused: %r" % (kind, e))
            if self.queue and self.queue[0] is event:  # else add() dropped it meanwhile
                self.queue.pop(0)
                store.save(files.SECURITY_QUEUE, self.queue)
