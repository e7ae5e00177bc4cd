"""The simulator's energy meters: what the sim board's meter(index) returns (UWB_SIM_METER).

- `plant` (default): the plant's own meter (ev.Meter) read directly: an ideal meter, no bus;
- `sdm630`, `sdm120`, `b23`: the firmware's Modbus driver (uwallbox/hw/meters.py) on
  lib/modbus.py, over a simulated RS-485 line (modbus_slave.FakeUart, 9600 8N1, a direction pin)
  on which one simulated meter per connector (address = connector id) answers real RTU frames,
  CRC included, with the plant meter's readings (its lifetime register, power, currents, volts);
- `ct`: `CtMeter` on three simulated current-transformer ADC pins per connector, driven by the
  plant's currents (a 50 Hz sine around mid-scale, AMPS_PER_UNIT);
- `estimated`: `EstimatedMeter` (the offer x the voltage, hw/estimated.py).

`Meters.fail(index, on)` makes a meter stop answering (Modbus: no answer at all; CT: the bias
point shorted to ground); `Meters.set_energy(index, wh)` sets the lifetime register (the plant's,
which the Modbus meters report). The plant's register starts at UWB_SIM_METER_START Wh on a fresh
state folder (ev.Meter).
"""
import math
import time

import machine

KINDS = ("plant", "sdm630", "sdm120", "b23", "ct", "estimated")
MODBUS = ("sdm630", "sdm120", "b23")
AMPS_PER_UNIT = 0.05   # the simulated CTs: amperes per 12-bit ADC unit
_UV_PER_UNIT = 3100000 / 4096   # the ADC mock at 11 dB: 3.1 V full scale
_TWO_PI_50 = 2 * math.pi * 50 / 1000000   # radians per microsecond at 50 Hz


def _slave_class():
    from modbus_slave import Slave

    class MeterSlave(Slave):
        """A Modbus meter whose registers are the plant meter's readings, refreshed per request."""

        def __init__(self, addr, kind, plant_meter):
            super().__init__(addr)
            self.kind = kind
            self.meter = plant_meter
            self.refresh()

        def refresh(self):
            wh, w, a, v = self.meter.read()
            if self.kind == "b23":   # holding registers, integers (hw/meters.py B23)
                t = self.holding
                self.set(t, 0x5000, "u64", wh // 10)
                for i in range(3):
                    self.set(t, 0x5B00 + 2 * i, "u32", int(v[i] * 10))
                    self.set(t, 0x5B06 + 2 * i, "u32", int(v[i] * 17.32))   # line to line
                    self.set(t, 0x5B0C + 2 * i, "u32", int(a[i] * 100))
                self.set(t, 0x5B12, "u32", 0)
                self.set(t, 0x5B14, "s32", int(w * 100))
                return
            t = self.input   # Eastron: input registers, float32, high word first
            if self.kind == "sdm630":
                for i in range(3):
                    self.set(t, 2 * i, "f32", v[i])
                    self.set(t, 6 + 2 * i, "f32", a[i])
                self.set(t, 0x34, "f32", w)
            else:
                self.set(t, 0, "f32", v[0])
                self.set(t, 6, "f32", a[0])
                self.set(t, 0x0C, "f32", w)
            self.set(t, 0x48, "f32", wh / 1000)

    return MeterSlave


class _Ct:
    """The ADC source of one simulated current transformer: phase K of a plant."""

    def __init__(self, plant, k):
        self.plant = plant
        self.k = k
        self.dead = False

    def uv(self):
        if self.dead:
            return 0
        a = self.plant.meter.amps[self.k]
        s = math.sin(_TWO_PI_50 * time.ticks_us())
        return int((2048 + a * 1.41421356 / AMPS_PER_UNIT * s) * _UV_PER_UNIT)


class Meters:
    """The meters of KIND for PLANTS (one per connector), as board.meter(index) hands them out."""

    def __init__(self, kind, plants, volts, phases):
        if kind not in KINDS:
            raise ValueError("UWB_SIM_METER: one of " + ", ".join(KINDS))
        self.kind = kind
        self.plants = plants
        self.slaves = []
        self.cts = []
        self.uart = None
        if kind == "plant":
            self.meters = [p.meter for p in plants]
        elif kind == "estimated":
            from uwallbox.hw.estimated import EstimatedMeter
            self.meters = [EstimatedMeter(i, volts, phases) for i in range(len(plants))]
        elif kind == "ct":
            from uwallbox import files
            from uwallbox.hw.meters import CtMeter
            self.meters = []
            for i, p in enumerate(plants):
                pins = []
                for k in range(3 if phases == 3 else 1):
                    pin = (i + 1) * 100 + 10 + k   # the connector's fake pins 10..12
                    ct = _Ct(p, k)
                    machine._adc_sources[pin] = ct.uv
                    self.cts.append(ct)
                    pins.append(pin)
                self.meters.append(CtMeter(pins, AMPS_PER_UNIT, volts=volts,
                                           path=files.METER % (i + 1)))
        else:
            import modbus
            from modbus_slave import FakePin, FakeUart
            from uwallbox.hw import meters
            cls = {"sdm630": meters.SDM630, "sdm120": meters.SDM120, "b23": meters.B23}[kind]
            slave = _slave_class()
            self.uart = FakeUart(9600, 10, FakePin())
            bus = modbus.Master(self.uart, 9600, self.uart.de, parity=None, stop=1)
            self.meters = []
            for i, p in enumerate(plants):
                self.slaves.append(self.uart.add(slave(i + 1, kind, p.meter)))
                self.meters.append(cls(bus, i + 1))

    def attach(self, app):
        for i, m in enumerate(self.meters):
            if self.kind == "estimated":
                m.evse = app.evses[i]
            start = getattr(m, "start", None)
            if start:
                start()

    def fail(self, index, on):
        """Meter INDEX stops answering (ON) or answers again; ValueError when it cannot."""
        if self.kind in MODBUS:
            self.slaves[index].online = not on
        elif self.kind == "ct":
            for ct in self.cts:
                if ct.plant is self.plants[index]:
                    ct.dead = on
        else:
            raise ValueError("fail: the %s meter cannot fail" % self.kind)

    def failing(self, index):
        if self.kind in MODBUS:
            return not self.slaves[index].online
        return any(ct.dead for ct in self.cts if ct.plant is self.plants[index])

    def set_energy(self, index, wh):
        """Set the lifetime register; ValueError for a meter that integrates its own energy."""
        if self.kind in ("ct", "estimated"):
            raise ValueError("energy_wh: the %s meter integrates its own energy, it has no "
                             "register to set" % self.kind)
        self.plants[index].meter.set(wh)
