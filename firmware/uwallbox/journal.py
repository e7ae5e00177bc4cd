"""Transaction-related messages in flash: delivered in order, exactly once when answered.

Each message is one file `txq/NNNNNNNN` (sequence number), written atomically. A message that
belongs to a transaction names it by its local reference `ref`; the CSMS's transactionId for a
ref is learnt from the StartTransaction answer and kept in `txids.json` until the transaction's
StopTransaction has been delivered.
"""
import asyncio
import os

from . import store
from .errors import CallError
from .log import log
from .rpc import Offline

_DIR = "txq"
_IDS = "txids.json"


class Journal:
    def __init__(self, app):
        self.app = app
        store.mkdir(_DIR)
        for name in os.listdir(_DIR):
            if name.endswith(".tmp"):
                store.remove(_DIR + "/" + name)
        names = self.names()
        self.seq = int(names[-1]) if names else 0
        self.ids = store.load(_IDS, {})
        self.wake = asyncio.Event()

    def names(self):
        return sorted(os.listdir(_DIR))

    def __len__(self):
        return len(os.listdir(_DIR))

    def add(self, action, payload, ref):
        """Queue ACTION for transaction REF; returns its sequence number."""
        self.seq += 1
        store.save("%s/%08d" % (_DIR, self.seq), {"a": action, "p": payload, "ref": ref})
        self.wake.set()
        return self.seq

    def read(self, name):
        return store.load(_DIR + "/" + name)

    def queued(self, action, ref):
        """Is a message ACTION of transaction REF waiting to be delivered?"""
        for name in self.names():
            m = self.read(name)
            if m and m["a"] == action and m["ref"] == ref:
                return True
        return False

    def tid(self, ref):
        """The CSMS transactionId of REF, or None while unknown."""
        return self.ids.get(str(ref))

    async def run(self):
        """Deliver queued messages for ever (waits while offline)."""
        attempts = 0
        while True:
            names = self.names()
            if not names:
                self.wake.clear()
                await self.wake.wait()
                continue
            await self.app.online.wait()
            name = names[0]
            msg = self.read(name)
            if msg is None:  # unreadable: cannot be delivered
                store.remove(_DIR + "/" + name)
                continue
            action, payload, ref = msg["a"], msg["p"], msg["ref"]
            if action != "StartTransaction":
                tid = self.tid(ref)
                if tid is None:
                    log("!", "transaction %s never started at the CSMS: %s dropped" % (ref, action))
                    store.remove(_DIR + "/" + name)
                    continue
                payload["transactionId"] = tid
            try:
                reply = await self.app.rpc.call(action, payload)
            except (Offline, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            except CallError:
                attempts += 1
                cfg = self.app.config
                if attempts < cfg["TransactionMessageAttempts"]:
                    await asyncio.sleep(cfg["TransactionMessageRetryInterval"] * attempts)
                    continue
                log("!", "%s refused %d times: dropped" % (action, attempts))
                reply = None
            attempts = 0
            self._delivered(name, action, reply, ref)

    def _delivered(self, name, action, reply, ref):
        """Record the answer, then forget the message (no await: one step for a power cut)."""
        if action == "StartTransaction" and reply is not None:
            self.ids[str(ref)] = reply["transactionId"]
            store.save(_IDS, self.ids)
        store.remove(_DIR + "/" + name)
        if action == "StopTransaction" and self.ids.pop(str(ref), None) is not None:
            store.save(_IDS, self.ids)
        self.app.delivered(action, ref, reply)
