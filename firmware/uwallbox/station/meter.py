"""Meter values: sampled during transactions and aligned to the clock.

Samples are scheduled on the monotonic clock (time.ticks_ms): when the CSMS moves the wall clock
back or forth, periodic samples keep their pace; only their timestamps come from the wall clock.
Clock-aligned samples fall on the multiples of ClockAlignedDataInterval counted from 00:00:00 UTC
of each day, and a jump of the wall clock re-aims the next one.
"""
import asyncio
import time

from ..errors import CallError, Offline
from ..log import log

_ENERGY = "Energy.Active.Import.Register"
_PHASES = ("L1", "L2", "L3")
_VPHASES = ("L1-N", "L2-N", "L3-N")


def sampled_values(conn, measurands, context):
    """sampledValue list for CONN's meter now; MEASURANDS is a CSL."""
    wh, w, amps, volts = conn.read_meter()
    phases = conn.app.board.PHASES
    out = []
    for m in measurands.split(","):
        if m == _ENERGY:
            out.append({"value": str(wh), "context": context, "measurand": m, "unit": "Wh"})
        elif m == "Power.Active.Import":
            out.append({"value": "%.1f" % w, "context": context, "measurand": m, "unit": "W"})
        elif m == "Current.Offered":
            out.append({"value": "%.1f" % conn.evse.offered_a, "context": context, "measurand": m,
                        "unit": "A"})
        elif m in ("Current.Import", "Voltage"):
            vals, names, unit = (amps, _PHASES, "A") if m == "Current.Import" else (volts, _VPHASES, "V")
            for i in range(phases):
                out.append({"value": "%.1f" % vals[i], "context": context, "measurand": m,
                            "phase": names[i], "unit": unit})
        elif m == "Power.Offered":
            p = conn.evse.offered_a * conn.app.config["NominalVoltage"] * phases
            out.append({"value": "%.0f" % p, "context": context, "measurand": m, "unit": "W"})
    return out


def aligned_after(t, interval):
    """The first clock-aligned instant after T: a multiple of INTERVAL seconds from the start of
    T's day (UTC), or the next midnight."""
    day = t - t % 86400
    return min(day + ((t - day) // interval + 1) * interval, day + 86400)


class Metering:
    """Every second: due periodic samples of running transactions, and clock-aligned data."""

    def __init__(self, app):
        self.app = app
        self.next_aligned = 0  # wall-clock time of the next clock-aligned sample, 0: none
        self.mono = 0  # monotonic seconds since boot (ticks: immune to clock jumps)
        self._ms = 0  # milliseconds of the present second counted in mono
        self._last = time.ticks_ms()

    def meter_value(self, conn, measurands, context):
        """One meterValue element (timestamp + sampledValue) for CONN now."""
        return {"timestamp": self.app.clock.iso(),
                "sampledValue": sampled_values(conn, measurands, context)}

    def sample(self, conn, context, measurands):
        """One MeterValues for CONN: queued in the journal when it belongs to a transaction."""
        app = self.app
        req = {"connectorId": conn.id}
        mv = self.meter_value(conn, measurands, context) if measurands else None
        if mv is None or not mv["sampledValue"]:
            measurands = None  # never a MeterValues with an empty sampledValue
        else:
            req["meterValue"] = [mv]
        if conn.tx:
            keep = app.config["StopTxnAlignedData" if context == "Sample.Clock" else "StopTxnSampledData"]
            conn.record(self.meter_value(conn, keep, context) if keep else None)
            if measurands:
                req["transactionId"] = 0
                app.journal.add("MeterValues", req, conn.tx.ref)
        elif measurands and app.session.online.is_set():
            app.spawn("meter-values:%d" % conn.id, self._send(req))  # replaces one not sent yet

    async def triggered(self, cid):
        """TriggerMessage MeterValues: the latest MeterValuesSampledData of connector CID (None or
        0: of each), context Trigger, with the transactionId (sent now, not journaled)."""
        app = self.app
        for c in app.connectors:
            if cid not in (None, 0, c.id):
                continue
            mv = self.meter_value(c, app.config["MeterValuesSampledData"], "Trigger")
            if not mv["sampledValue"]:  # none of the configured measurands is measured here
                mv = self.meter_value(c, _ENERGY, "Trigger")
            req = {"connectorId": c.id, "meterValue": [mv]}
            tid = c.transaction_id
            if tid is not None:
                req["transactionId"] = tid
            await self._send(req)

    async def _send(self, req):
        try:
            await self.app.rpc.call("MeterValues", req)
        except (Offline, CallError, asyncio.TimeoutError) as e:
            log("!", "MeterValues not sent: %r" % e)

    def _advance(self):
        """Count the milliseconds since the last call into `mono` (whole seconds)."""
        t = time.ticks_ms()
        self._ms += time.ticks_diff(t, self._last)
        self._last = t
        if self._ms >= 1000:
            self.mono += self._ms // 1000
            self._ms %= 1000

    def tick(self):
        app = self.app
        cfg = app.config
        self._advance()
        mono = self.mono
        interval = cfg["MeterValueSampleInterval"]
        for c in app.connectors:
            wh = c.read_meter()[0]
            if not c.tx:
                c.next_sample = 0
                continue
            c.cap_energy(wh)
            if interval and not c.next_sample:  # a new transaction, or a new interval
                c.next_sample = mono + interval
            if interval and mono >= c.next_sample:
                if c.meter_ok:  # a silent meter's last values are no sample (PowerMeterFailure)
                    self.sample(c, "Sample.Periodic", cfg["MeterValuesSampledData"])
                c.next_sample += interval
                if c.next_sample <= mono:  # the loop was late by more than an interval
                    c.next_sample = mono + interval
            elif wh - c.tx.meter_wh >= 100:  # keep the PowerLoss reading within 100 Wh
                c.persist_meter(wh)
        aligned = cfg["ClockAlignedDataInterval"]
        if aligned:
            now = app.clock.now()
            if self.next_aligned and (now >= self.next_aligned or self.next_aligned - now > aligned):
                if now >= self.next_aligned:  # (a clock set back re-aims without a sample)
                    for c in app.connectors:
                        if c.meter_ok:
                            self.sample(c, "Sample.Clock", cfg["MeterValuesAlignedData"])
                self.next_aligned = 0
            if not self.next_aligned:
                self.next_aligned = aligned_after(now, aligned)
        else:
            self.next_aligned = 0

    async def run(self):
        while True:
            self.tick()
            await asyncio.sleep(1)
