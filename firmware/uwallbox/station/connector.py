"""One OCPP connector: its transaction, its status, and what it asks of its Evse."""
import asyncio
from micropython import const

from .. import files
from ..flash import store
from ..log import log

_TD_MAX = const(24)  # meterValues kept for transactionData
_TX_STATUSES = ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE")


class Transaction:
    """The transaction running on a connector, kept in flash (files.TX) until it stops; the
    key of each field in that file is in brackets.

    ref [ref]: its local reference, the journal sequence number of its StartTransaction; the
        CSMS's transactionId is journal.tid(ref), once the StartTransaction has been answered.
    tag [tag], parent [parent]: the idTag that started it and its parentIdTag (or None).
    start_wh [start]: the meter at the start. meter_wh [meter]: the last reading persisted, the
        meterStop if a power cut ends it.
    started [t0]: when it started, Unix seconds (the anchor of Relative charging profiles).
    allowed [ok]: it may draw energy; False once a refused idTag used up MaxEnergyOnInvalidId.
    invalid [invalid]: the CSMS refused its idTag (and StopTransactionOnInvalidId is false).
    data [td]: the meterValues kept for the StopTransaction's transactionData.
    offset [off]: Wh added to the meter's register: what a register that went backwards during
        the transaction (a swapped or reset meter) had lost, so its energy never goes negative;
        or, for a transaction that began before the meter's first answer since boot, meterStart
        less that first reading (so its energy counts from there, without a jump).
    """

    def __init__(self, ref, tag, parent, start_wh, started, data, meter_wh=None, allowed=True, invalid=False,
                 offset=0):
        self.ref = ref
        self.tag = tag
        self.parent = parent
        self.start_wh = start_wh
        self.meter_wh = start_wh if meter_wh is None else meter_wh
        self.started = started
        self.allowed = allowed
        self.invalid = invalid
        self.data = data
        self.offset = offset

    def save(self, path):
        store.save(path, {"ref": self.ref, "tag": self.tag, "parent": self.parent, "start": self.start_wh,
                          "meter": self.meter_wh, "t0": self.started, "ok": self.allowed,
                          "invalid": self.invalid, "td": self.data, "off": self.offset})

    @staticmethod
    def load(path):
        """The transaction in file PATH, or None (no file, or not one)."""
        d = store.load(path)
        try:
            return Transaction(d["ref"], d["tag"], d["parent"], d["start"], d["t0"], d["td"],
                               d["meter"], d["ok"], d.get("invalid", False), d.get("off", 0))
        except (KeyError, TypeError):
            return None


class Connector:
    def __init__(self, app, cid, evse, meter):
        self.app = app
        self.id = cid
        self.evse = evse
        self.meter = meter
        self.path = files.TX % cid
        self.tx = Transaction.load(self.path)  # the transaction running, or None
        self.pending = None  # (idTag, idTagInfo, deadline): authorized, waiting for a plug
        self.finishing = False
        self.plugged = evse.plugged
        self.status = None
        self.error = "NoError"
        self.meter_wh = 0
        self.power_w = 0.0
        self.next_sample = 0
        self.raw_wh = None  # the meter's register at its last good reading (None: none yet)
        self.backwards = False  # the register went backwards: reported until the next start
        self.amps = (0.0, 0.0, 0.0)  # of the last read_meter()
        self._read = None  # the meter's last read(), and its `polls` then
        self._polls = None
        self.phases = None  # phases_in_use at the last update (smart charging follows a change)

    # -- what the control API and profiles read
    @property
    def transaction_id(self):
        return self.app.journal.tid(self.tx.ref) if self.tx else None

    @property
    def operative(self):
        return self.app.available(self.id)

    @property
    def meter_ok(self):
        """The meter answers (a meter without `ok`, like the estimated one, always does)."""
        m = self.meter
        ready = getattr(m, "ready", None)
        return getattr(m, "ok", True) and (ready is None or ready.is_set())

    def read_meter(self):
        """(energy_wh, power_w, amps, volts) now; keeps meter_wh and power_w current. The energy
        is the meter's register (plus the transaction's offset, if it went backwards during it);
        while the meter does not answer, its last good reading (a driver keeps it). A polled
        meter (hw/meters.py, `polls`) is decoded once per good poll, not per call: read() allocates."""
        m = self.meter
        n = getattr(m, "polls", None)
        r = self._read
        if r is None or n is None or n != self._polls:
            r = self._read = m.read()
            self._polls = n
        self.amps = r[2]
        if not self.meter_ok:
            return (self.meter_wh, r[1], r[2], r[3])
        raw = r[0]
        last = self.raw_wh
        tx = self.tx
        if last is not None and raw < last:
            log("!", "connector %d: meter went backwards from %d to %d Wh" % (self.id, last, raw))
            self.backwards = True
            if tx:
                tx.offset += last - raw
                self.save()
        elif last is None and tx and not tx.offset:
            # the first reading since boot, in a transaction that started without one (the meter
            # did not answer): it continues from its meterStart, never jumps by the whole register
            log("!", "connector %d: first meter reading %d Wh, the transaction began at %d Wh" % (
                self.id, raw, tx.start_wh))
            tx.offset = tx.start_wh - raw
            self.save()
        self.raw_wh = raw
        wh = raw + tx.offset if tx else raw
        self.meter_wh, self.power_w = wh, r[1]
        return (wh, r[1], r[2], r[3])

    @property
    def phases_in_use(self):
        """How many phases the EV draws on, as the meter measures it (None: the meter does not
        tell, or does not answer): the currents of the last read_meter() above the meter's
        threshold_a (what its own phases_in_use counts, without another read)."""
        m = self.meter
        if not hasattr(type(m), "phases_in_use") or not self.meter_ok:  # (no property call)
            return None
        t = getattr(m, "threshold_a", 0.5)
        a = self.amps
        return (a[0] > t) + (a[1] > t) + (a[2] > t)

    # -- transactions
    def start(self, tag, info, reservation_id=None):
        app = self.app
        meter = self.read_meter()[0]
        now = app.clock.now()
        ref = app.journal.new_ref()
        self.backwards = False  # the new register is the reference from now on
        self.tx = Transaction(ref, tag, info.get("parentIdTag"), meter, now,
                              self._stop_data("Transaction.Begin"))
        self.save()
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
        td = tx.data + self._stop_data("Transaction.End")
        if td:
            req["transactionData"] = td
        self.app.journal.add("StopTransaction", req, tx.ref)
        store.remove(self.path)
        self.tx = None
        self.backwards = False
        self.finishing = self.evse.plugged
        log("tx", "connector %d: transaction %d stopped (%s) at %d Wh" % (self.id, tx.ref, reason, meter))
        self.apply()

    def _stop_data(self, context):
        """[meterValue] of StopTxnSampledData for CONTEXT, or [] when none is configured."""
        keep = self.app.config["StopTxnSampledData"]
        return [self.app.metering.meter_value(self, keep, context)] if keep else []

    def deauthorize(self):
        """The CSMS refused the transaction's idTag: stop the transaction if so configured, else
        let it draw at most MaxEnergyOnInvalidId Wh in all."""
        if self.tx is None:
            return
        if self.app.config["StopTransactionOnInvalidId"]:
            self.stop("DeAuthorized")
        else:
            self.tx.invalid = True
            self.save()
            self.cap_energy(self.meter_wh)

    def cap_energy(self, wh):
        """Stop energy (SuspendedEVSE) once a refused transaction has drawn MaxEnergyOnInvalidId."""
        tx = self.tx
        if tx.invalid and tx.allowed and wh - tx.start_wh >= self.app.config["MaxEnergyOnInvalidId"]:
            tx.allowed = False
            self.save()
            self.apply()

    def save(self):
        """Persist the running transaction (files.TX)."""
        self.tx.save(self.path)

    def persist_meter(self, wh):
        if self.tx and wh != self.tx.meter_wh:
            self.tx.meter_wh = wh
            self.save()

    def record(self, meter_value):
        """Keep METER_VALUE (or None: just the meter) for the StopTransaction's transactionData."""
        tx = self.tx
        if meter_value is not None:
            td = tx.data
            if len(td) >= _TD_MAX:  # keep Transaction.Begin and the latest samples
                td.pop(1)
            td.append(meter_value)
        tx.meter_wh = self.meter_wh
        self.save()

    # -- the state machine
    def apply(self):
        """Tell the Evse what is allowed now, and wake the connector task."""
        e = self.evse
        e.available = self.operative or self.tx is not None
        e.allow = bool(self.tx and self.tx.allowed)
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
            # no offer for want of a cable (socket boards: the PP says none) is the EV leaving
            # while the pilot still shows it, not the EVSE suspending: SuspendedEV below
            if not self.tx.allowed or (e.plugged and e.offered_a < 6
                                       and (e.pp is None or e.cable_a is not None)):
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
        # (meter_wh and power_w are kept current by the metering task's tick, every second)
        e = self.evse
        cfg = self.app.config
        n = self.phases_in_use  # (of the tick's last read_meter())
        if n != self.phases:
            self.phases = n
            if self.app.smart:  # a limit in W follows the phases the EV draws on
                self.app.smart.wake.set()
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
        error = e.fault or ("NoError" if self.meter_ok and not self.backwards else "PowerMeterFailure")
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
