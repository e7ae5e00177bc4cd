"""Transaction-related messages in flash: delivered in order, exactly once when answered.

Each message is one file `txq/NNNNNNNN` (sequence number), written atomically. A message that
belongs to a transaction names it by its local reference `ref`; the CSMS's transactionId for a
ref is learnt from the StartTransaction answer and kept in `txids.json` until the transaction's
StopTransaction has been delivered.

Identities last for the life of the flash: a transaction's `ref` comes from a counter in
`journal.json` written before the ref is used, so a reference is never given twice (a reused
ref once let recovery after a power cut mistake a new transaction for an old one and skip its
StopTransaction). Each message is sent under the OCPP message id `t<seq>` on every attempt, so a
CSMS can recognise a repeat after a lost answer; `seq` never goes back either (the counter is
saved before the queue is emptied).
"""
import asyncio
import os

from .. import files
from ..errors import CallError, Offline
from ..flash import store
from ..log import log

_DIR = files.JOURNAL


class Journal:
    no_heap_ms = 1000  # the pause after a MemoryError (a test shortens it)

    def __init__(self, app):
        self.app = app
        store.mkdir(_DIR)
        for name in os.listdir(_DIR):
            if name.endswith(".tmp"):
                store.remove(_DIR + "/" + name)
        names = self.names()
        self.ids = store.load(files.TX_IDS, {})
        c = store.load(files.JOURNAL_COUNTERS, {})
        self.seq = max(int(names[-1]) if names else 0, c.get("seq", 0))
        # a flash from before the counter: no reference below one still in use
        self.ref = max([c.get("ref", 0)] + [int(k) for k in self.ids])
        if names:
            m = self.read(names[-1])
            self.ref = max(self.ref, m["ref"] if m else 0)
        self.wake = asyncio.Event()

    def _save_counters(self):
        store.save(files.JOURNAL_COUNTERS, {"ref": self.ref, "seq": self.seq})

    def new_ref(self):
        """A transaction reference never used before on this flash, saved before it is returned."""
        self.ref += 1
        self._save_counters()
        return self.ref

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
            await self.app.session.online.wait()
            name = names[0]
            try:
                msg = self.read(name)
            except MemoryError:
                await self._no_heap("read")
                continue
            if msg is None:  # unreadable: cannot be delivered
                self._forget(name)
                continue
            action, payload, ref = msg["a"], msg["p"], msg["ref"]
            if action != "StartTransaction":
                tid = self.tid(ref)
                if tid is None:
                    log("!", "transaction %s never started at the CSMS: %s dropped" % (ref, action))
                    self._forget(name)
                    continue
                payload["transactionId"] = tid
            try:
                reply = await self.app.rpc.call(action, payload, uid="t%d" % int(name))
            except (Offline, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            except MemoryError:  # the message stays, and keeps its message id
                payload = msg = None
                await self._no_heap(action)
                continue
            except CallError as e:
                attempts += 1
                cfg = self.app.config
                if attempts < cfg["TransactionMessageAttempts"]:
                    # a refused MeterValues is tried again at once: waiting would hold back the
                    # StartTransaction / StopTransaction behind it
                    if action != "MeterValues":
                        await asyncio.sleep(cfg["TransactionMessageRetryInterval"] * attempts)
                    continue
                log("!", "%s of transaction %s refused %d times (%s): dropped" % (
                    action, ref, attempts, e.code))
                reply = None
            attempts = 0
            self._delivered(name, action, reply, ref, payload)

    async def _no_heap(self, what):
        """No heap to read or send a message now: the task lives on and tries again in a second
        (a MemoryError would otherwise end it, and the crash guard would restart the firmware)."""
        try:
            log("!", "journal: MemoryError (%s), again in %d ms" % (what, self.no_heap_ms))
        except MemoryError:
            pass
        await asyncio.sleep_ms(self.no_heap_ms)

    def _forget(self, name):
        """Remove message NAME from the queue."""
        if len(os.listdir(_DIR)) == 1:  # the queue empties: its numbers must not be given again
            self._save_counters()
        store.remove(_DIR + "/" + name)

    def _delivered(self, name, action, reply, ref, payload):
        """Record the answer, then forget the message (no await: one step for a power cut)."""
        if action == "StartTransaction" and reply is not None:
            self.ids[str(ref)] = reply["transactionId"]
            store.save(files.TX_IDS, self.ids)
        self._forget(name)
        if action == "StopTransaction" and self.ids.pop(str(ref), None) is not None:
            store.save(files.TX_IDS, self.ids)
        self.app.delivered(action, ref, reply, payload)
