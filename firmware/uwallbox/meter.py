"""Meter values: sampled during transactions and aligned to the clock."""
import asyncio

from .log import log
from .rpc import Offline
from .errors import CallError

_PHASES = ("L1", "L2", "L3")
_VPHASES = ("L1-N", "L2-N", "L3-N")


def sampled_values(conn, measurands, context):
    """sampledValue list for CONN's meter now; MEASURANDS is a CSL."""
    wh, w, amps, volts = conn.read_meter()
    phases = conn.app.board.PHASES
    out = []
    for m in measurands.split(","):
        if m == "Energy.Active.Import.Register":
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


class Metering:
    """Every second: due periodic samples of running transactions, and clock-aligned data."""

    def __init__(self, app):
        self.app = app
        self.next_aligned = 0

    def meter_value(self, conn, measurands, context):
        """One meterValue element (timestamp + sampledValue) for CONN now."""
        return {"timestamp": self.app.clock.iso(),
                "sampledValue": sampled_values(conn, measurands, context)}

    def sample(self, conn, context, measurands):
        """One MeterValues for CONN: queued in the journal when it belongs to a transaction."""
        app = self.app
        req = {"connectorId": conn.id}
        if measurands:
            req["meterValue"] = [self.meter_value(conn, measurands, context)]
        if conn.tx:
            keep = app.config["StopTxnAlignedData" if context == "Sample.Clock" else "StopTxnSampledData"]
            conn.record(self.meter_value(conn, keep, context) if keep else None)
            if measurands:
                req["transactionId"] = 0
                app.journal.add("MeterValues", req, conn.tx["ref"])
        elif measurands and app.online.is_set():
            asyncio.create_task(self._send(req))

    async def _send(self, req):
        try:
            await self.app.rpc.call("MeterValues", req)
        except (Offline, CallError, asyncio.TimeoutError) as e:
            log("!", "MeterValues not sent: %r" % e)

    def tick(self):
        app = self.app
        cfg = app.config
        now = app.clock.now()
        interval = cfg["MeterValueSampleInterval"]
        for c in app.connectors:
            wh = c.read_meter()[0]
            if not c.tx:
                continue
            c.cap_energy(wh)
            t0 = c.tx["t0"]
            if interval and not c.next_sample:
                c.next_sample = t0 + interval
            if interval and now >= c.next_sample:
                self.sample(c, "Sample.Periodic", cfg["MeterValuesSampledData"])
                c.next_sample = t0 + ((now - t0) // interval + 1) * interval
            elif wh - c.tx["meter"] >= 100:  # keep the PowerLoss reading within 100 Wh
                c.persist_meter(wh)
        aligned = cfg["ClockAlignedDataInterval"]
        if aligned:
            if now >= self.next_aligned:
                if self.next_aligned:
                    for c in app.connectors:
                        self.sample(c, "Sample.Clock", cfg["MeterValuesAlignedData"])
                self.next_aligned = (now // aligned + 1) * aligned
        else:
            self.next_aligned = 0

    async def run(self):
        while True:
            self.tick()
            await asyncio.sleep(1)
