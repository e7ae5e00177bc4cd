"""One OCPP connector: its transaction, its status, and what it asks of its Evse."""
import asyncio
from micropython import const

from .. import files
from ..flash import store
from ..log import log

_TD_MAX = const(24)  # meterValues kept for transactionData
_TX_STATUSES = ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE")


class Connector:
    def __init__(self, app, cid, evse, meter):
        self.app = app
        self.id = cid
        self.evse = evse
        self.meter = meter
        self.path = files.TX % cid
        self.tx = store.load(self.path)  # the live transaction, persisted
        self.pending = None  # (idTag, idTagInfo, deadline): authorized, waiting for a plug
        self.finishing = False
        self.plugged = evse.plugged
        self.status = None
        self.error = "NoError"
        self.meter_wh = 0
        self.power_w = 0.0
        self.next_sample = 0

    # -- what the control API and profiles read
    @property
    def transaction_id(self):
        return self.app.journal.tid(self.tx["ref"]) if self.tx else None

    @property
    def operative(self):
        return self.app.available(self.id)

    def read_meter(self):
        """(energy_wh, power_w, amps, volts) now; keeps meter_wh and power_w current."""
        r = self.meter.read()
        self.meter_wh, self.power_w = r[0], r[1]
        return r

    # -- transactions
    def start(self, tag, info, reservation_id=None):
        app = self.app
        meter = self.read_meter()[0]
        now = app.clock.now()
        ref = app.journal.new_ref()
        self.tx = {"ref": ref, "tag": tag, "parent": info.get("parentIdTag"), "start": meter,
                   "meter": meter, "t0": now, "ok": True, "td": self._stop_data("Transaction.Begin")}
        store.save(self.path, self.tx)
        req = {"connectorId": self.id, "idTag": tag, "meterStart": meter,
               "timestamp": app.clock.iso()}
        if reservation_id is not None:
            req["reservationId"] = reservation_id
        app.journal.add("StartTransaction", req, ref)
        self.pending = None
        self.finishing = False
        self.next_sample = 0
        log("tx", "connector %d: transaction %d started for %s at %d Wh" % (self.id, ref, tag, meter))
        self.apply()

    def stop(self, reason, tag=None):
        tx = self.tx
        if tx is None:
            return
        self.evse.allow = False
        meter = self.read_meter()[0]
        req = {"transactionId": 0, "meterStop": meter, "timestamp": self.app.clock.iso(),
               "reason": reason}
        if tag:
            req["idTag"] = tag
        td = tx["td"] + self._stop_data("Transaction.End")
        if td:
            req["transactionData"] = td
        self.app.journal.add("StopTransaction", req, tx["ref"])
        store.remove(self.path)
        self.tx = None
        self.finishing = self.evse.plugged
        log("tx", "connector %d: transaction %d stopped (%s) at %d Wh" % (self.id, tx["ref"], reason, meter))
        self.apply()

    def _stop_data(self, context):
        """[meterValue] of StopTxnSampledData for CONTEXT, or [] when none is configured."""
        keep = self.app.config["StopTxnSampledData"]
        return [self.app.metering.meter_value(self, keep, context)] if keep else []

    def recover(self):
        """At boot, a transaction file a power cut left: end it with reason PowerLoss and the last
        persisted meter reading, unless its StopTransaction was queued before the cut (or it never
        got as far as a StartTransaction)."""
        tx = self.tx
        if tx is None:
            return
        j, ref = self.app.journal, tx["ref"]
        if (j.tid(ref) is not None or j.queued("StartTransaction", ref)) and not j.queued(
                "StopTransaction", ref):
            j.add("StopTransaction", {"transactionId": 0, "meterStop": tx["meter"],
                                      "timestamp": self.app.clock.iso(), "reason": "PowerLoss"}, ref)
            log("tx", "connector %d: transaction %d ended by power loss at %d Wh" % (self.id, ref, tx["meter"]))
        store.remove(self.path)
        self.tx = None

    def deauthorize(self):
        """The CSMS refused the transaction's idTag: stop the transaction if so configured, else
        let it draw at most MaxEnergyOnInvalidId Wh in all."""
        if self.tx is None:
            return
        if self.app.config["StopTransactionOnInvalidId"]:
            self.stop("DeAuthorized")
        else:
            self.tx["invalid"] = True
            store.save(self.path, self.tx)
            self.cap_energy(self.meter_wh)

    def cap_energy(self, wh):
        """Stop energy (SuspendedEVSE) once a refused transaction has drawn MaxEnergyOnInvalidId."""
        tx = self.tx
        if tx.get("invalid") and tx["ok"] and wh - tx["start"] >= self.app.config["MaxEnergyOnInvalidId"]:
            tx["ok"] = False
            store.save(self.path, tx)
            self.apply()

    def save(self):
        """Persist the running transaction."""
        store.save(self.path, self.tx)

    def persist_meter(self, wh):
        if self.tx and wh != self.tx["meter"]:
            self.tx["meter"] = wh
            store.save(self.path, self.tx)

    def record(self, meter_value):
        """Keep METER_VALUE (or None: just the meter) for the StopTransaction's transactionData."""
        tx = self.tx
        if meter_value is not None:
            td = tx["td"]
            if len(td) >= _TD_MAX:  # keep Transaction.Begin and the latest samples
                td.pop(1)
            td.append(meter_value)
        tx["meter"] = self.meter_wh
        store.save(self.path, tx)

    # -- the state machine
    def apply(self):
        """Tell the Evse what is allowed now, and wake the connector task."""
        e = self.evse
        e.available = self.operative or self.tx is not None
        e.allow = bool(self.tx and self.tx["ok"])
        cfg = self.app.config  # a transaction suspended by an unplug may keep the socket locked
        e.hold_lock = bool(self.tx) and not (cfg["StopTransactionOnEVSideDisconnect"]
                                             or cfg["UnlockConnectorOnEVSideDisconnect"])
        e.changed.set()
        if self.app.smart:  # transactions start and end here: limits follow
            self.app.smart.wake.set()

    def derive(self):
        """The OCPP status that the present situation implies (EVCommunicationError is a
        warning, not a fault: OCPP 1.6 section 4.9)."""
        e = self.evse
        if e.fault and e.fault != "EVCommunicationError":
            return "Faulted"
        if self.tx:
            if e.relay:
                return "Charging"
            if not self.tx["ok"] or (e.plugged and e.offered_a < 6):
                return "SuspendedEVSE"
            if e.ready and e.plugged:
                # the EV asks, energy is offered, the contactor is about to close (RCD self-test,
                # debouncing) or has just opened as the EV leaves state C: no news yet
                return self.status if self.status in _TX_STATUSES else "Preparing"
            return "SuspendedEV"
        if not self.operative:
            return "Unavailable"
        if e.plugged:
            return "Finishing" if self.finishing else "Preparing"
        if self.pending:
            return "Preparing"
        if self.app.reserved(self.id):
            return "Reserved"
        return "Available"

    def update(self):
        e = self.evse
        cfg = self.app.config
        self.read_meter()
        if e.plugged != self.plugged:
            self.plugged = e.plugged
            if e.plugged:
                self.finishing = False
                if self.pending:
                    tag, info = self.pending[0], self.pending[1]
                    self.start(tag, info, self.app.claim(self.id, tag, info))
            elif self.tx:
                if cfg["StopTransactionOnEVSideDisconnect"]:
                    self.stop("EVDisconnected")
            else:
                self.finishing = False
        if self.pending and self.app.clock.now() > self.pending[2]:
            log("auth", "connector %d: %s timed out waiting for a plug" % (self.id, self.pending[0]))
            self.pending = None
        status = self.derive()
        error = e.fault or "NoError"
        if status == "Unavailable" and error == "EVCommunicationError":
            error = "NoError"  # the warning goes with Preparing, Suspended* or Finishing only
        if (status, error) != (self.status, self.error):
            log("stat", "connector %d: %s%s" % (self.id, status, "" if error == "NoError" else " " + error))
            self.status, self.error = status, error
            self.app.statuses.changed()

    async def run(self):
        self.apply()
        while True:
            try:
                await asyncio.wait_for_ms(self.evse.changed.wait(), 1000)
            except asyncio.TimeoutError:
                pass
            self.update()
