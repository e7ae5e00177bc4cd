"""The simulated plant of one connector: EV, cable, contactor, RCD, lock and energy meter.

It talks to the firmware only through the `machine` mock (sim/mpy/machine.py): it serves the
pilot and proximity ADC pins (`machine._adc_sources`), listens to the output pins
(`machine._listeners`) and drives the feedback inputs (`machine._drive`). All inputs are active-high:
relay_fb 1 = contacts closed, rcd_trip 1 = tripped, lock_fb 1 = locked.

EV model (docs/HARDWARE.md, "IEC 61851 in brief"): unplugged -> A (12 V); plugged -> B (9 V); it asks for energy
(C 6 V, or D 3 V with `ventilation`) only when `charge` is true and the pilot oscillates with a duty
of 8-97 % (an analog current offer; 5 % = digital communication is not an offer); `pilot_short`
-> E (0 V). The low level is -12 V, except with `diode_fault` (EV plugged) where the EV's resistor
also loads the negative half: low = -(high level). A steady -12 V from the EVSE reads -12 V.
The EV draws min(offered, max_a) A on min(phases, board PHASES) phases while the contacts are
closed (commanded, or stuck with `weld`) and it is in C/D.

What the EV does (the EV_FIELDS) is kept in `sim_ev<connector id>.json` in the cwd (the state
folder): a firmware restart (Reset, a power cut) does not unplug the car.

Faults: `rcd` holds the RCD trip input asserted; the RCD self-test output (rcd_test high) asserts
the trip input while it is high, unless `rcd_broken` (a dead RCD: the self-test must then fail);
`weld` holds the relay feedback closed (and the contacts conduct); `lock_jam` freezes the lock
feedback where it is. `rcd_tests` counts the self-test pulses.

Checks (for the safety tests), on every output change of the connector:
- `violations` (module level, all connectors): dicts {"connector", "t_us", "time", "what"} whenever
  the relay output is closed while the EV is not in C (or D with the board's VENTILATION), the
  pilot does not oscillate, the RCD trip input is asserted, the socket (when it has a lock) is
  not locked, or `authorized` (optional fn() -> bool, set by the control API: the OCPP side holds
  an authorized transaction) says no; when the relay closes without a passed RCD self-test since
  the EV was plugged in (boards with rcd_test); when the PWM offers more than the board's rating
  or the cable's while plugged; also when the relay opens more than 100 ms after the EV left C/D
  (or is still closed 100 ms later, noticed by `check()`).
- `relay_open_latency_ms` (module level, and per Ev `latency_ms`): the time from the moment the EV
  left C/D (plug/charge/ventilation/pilot_short changed by `update()`; D counts as C only with the
  board's VENTILATION) or `rcd` was injected while the relay was closed, to the relay output
  opening. The snapshot's `left_ms` is that time so far while the relay is still closed (None
  otherwise): the firmware has 100 ms to notice, a snapshot may fall within them.
"""
import time

import machine
from uwallbox.flash import store

violations = []
relay_open_latency_ms = []

_PP_OHMS = {13: 1500, 20: 680, 32: 220, 63: 100}
_NUM = (int, float)
EV_FIELDS = ("plug", "charge", "max_a", "phases", "diode_fault", "ventilation", "cable_a")
FAULT_FIELDS = ("rcd", "weld", "lock_jam", "pilot_short", "rcd_broken")
_LATENCY_LIMIT_MS = 100


def _is_bool(v):
    return v is True or v is False


def _amps_for(duty_u16):
    """The current an EV reads from a duty cycle (duty_u16), None if no analog offer."""
    d = duty_u16 * 100 / 65535
    if d < 7.95 or d > 97.05:
        return None
    if d < 10:
        return 6.0
    if d <= 85:
        return d * 0.6
    if d <= 96:
        return (d - 64) * 2.5
    return 80.0


class Ev:
    def __init__(self, index, pins, pilot_cal, pp_cal=None, ventilation_ok=False, phases=3,
                 volts=230, rating_a=32):
        self.id = index + 1
        self.pins = pins
        self._cal = pilot_cal
        self._pp_cal = pp_cal
        self._vent_ok = ventilation_ok
        self._board_phases = phases
        self._rating_a = rating_a
        self.volts = volts
        # EV and cable
        self.plug = False
        self.charge = False
        self.max_a = 32.0
        self.phases = 3
        self.diode_fault = False
        self.ventilation = False
        self.cable_a = 32
        # injected faults
        self.rcd = False
        self.weld = False
        self.lock_jam = False
        self.pilot_short = False
        self.rcd_broken = False
        # checks
        self.authorized = None
        self.rcd_tests = 0
        self._tested = False     # a passed RCD self-test since the EV was plugged in
        self._answered = False   # the RCD answered the running self-test pulse
        self.latency_ms = []
        self._left_us = None
        self._left_flagged = False
        self._p_pwm = pins.get("pilot_pwm")
        self._p_relay = pins.get("relay")
        self._p_lock = pins.get("lock")
        self._p_test = pins.get("rcd_test")
        self._p_lock_fb = pins.get("lock_fb")
        self._p_trip = pins.get("rcd_trip")
        self._socket = pins.get("pp_adc") is not None and pp_cal is not None
        self.meter = Meter(self)
        self._path = "sim_ev%d.json" % self.id   # what the EV does, kept across restarts
        for k, v in (store.load(self._path) or {}).items():
            if k in EV_FIELDS:
                setattr(self, k, v)
        self._levels()
        if pins.get("pilot_adc") is not None:
            machine._adc_sources[pins["pilot_adc"]] = self._pilot_uv
        if pins.get("pp_adc") is not None and pp_cal is not None:
            machine._adc_sources[pins["pp_adc"]] = self._pp_uv
        machine._listeners.append(self._on_output)
        self._drive_inputs()

    # -- what the EVSE outputs
    def _out(self, pin):
        return pin is not None and machine._pins_out.get(pin, 0) == 1

    def duty_u16(self):
        s = machine._pwm_state(self._p_pwm)
        if s is None:
            return 65535 if self._out(self._p_pwm) else 0
        return s[1]

    def pwm_duty(self):
        return self.duty_u16() * 100 / 65535

    def oscillating(self):
        return 0 < self.duty_u16() < 65535

    def offered_a(self):
        return _amps_for(self.duty_u16()) or 0.0

    def relay_out(self):
        return self._out(self._p_relay)

    def contacts_closed(self):
        return self.relay_out() or self.weld

    # -- the EV
    def state(self):
        if not self.plug:
            return "A"
        if self.pilot_short:
            return "E"
        if self.charge and _amps_for(self.duty_u16()) is not None:
            return "D" if self.ventilation else "C"
        return "B"

    def high_mv(self):
        return {"A": 12000, "B": 9000, "C": 6000, "D": 3000, "E": 0}[self.state()]

    def amps(self):
        if not self.contacts_closed() or self.state() not in ("C", "D"):
            return 0.0
        return min(self.offered_a(), self.max_a)

    def phases_used(self):
        return min(self.phases, self._board_phases)

    # -- ADC sources (levels cached by _levels() on every change: the reads allocate nothing).
    # An Evse step (a scheduled callback) may run in the middle of update(): the checks judge
    # `_st`, the state the pilot levels show, stored together with them (the VM runs scheduled
    # callbacks at jumps, and there is none between the three stores).
    def _levels(self):
        st = self.state()
        if self.plug and self.pilot_short:
            hi = lo = 0
        else:
            hi = self.high_mv()
            lo = -hi if (self.plug and self.diode_fault) else -12000
        c0, c1 = self._cal
        uv_hi = c0 + (hi + 12000) * (c1 - c0) // 24000
        uv_lo = c0 + (lo + 12000) * (c1 - c0) // 24000
        self._st, self._uv_hi, self._uv_lo = st, uv_hi, uv_lo

    def _pilot_uv(self):
        if machine._pwm_high(self._p_pwm):
            return self._uv_hi
        return self._uv_lo

    def _pp_uv(self):
        pullup, supply = self._pp_cal
        if not self.plug:
            return supply
        r = _PP_OHMS[self.cable_a]
        return supply * r // (r + pullup)

    # -- inputs the plant drives
    def _drive_inputs(self):
        # The firmware's Evse step (a scheduled callback) may run between reading the outputs
        # here and driving an input, and drive the inputs itself: a level read before it must not
        # stay (a feedback left closed after the relay opened reads as a weld), so the inputs are
        # driven again until the outputs read after driving them are those they were driven from.
        for _ in range(5):
            if not self._drive_once():
                return
        raise RuntimeError("plant: the outputs change every time the inputs are driven")

    def _drive_once(self):
        """Drive the inputs from the outputs; True if an output changed meanwhile."""
        p = self.pins
        relay = self.relay_out()
        test = self._out(self._p_test)
        lock = self._out(self._p_lock)
        if p.get("relay_fb") is not None:
            machine._drive(p["relay_fb"], relay or self.weld)
        if p.get("rcd_trip") is not None:
            machine._drive(p["rcd_trip"], self.rcd or (test and not self.rcd_broken))
        if p.get("lock_fb") is not None and not self.lock_jam:
            machine._drive(p["lock_fb"], lock)
        return relay != self.relay_out() or test != self._out(self._p_test) or lock != self._out(self._p_lock)

    # -- the firmware changed an output
    def _on_output(self, pin, value, t_us):
        if pin not in (self._p_pwm, self._p_relay, self._p_lock, self._p_test):
            return
        self.meter.integrate(t_us)
        if pin == self._p_test:
            if value:
                self.rcd_tests += 1
                self._answered = not self.rcd_broken
            elif self._answered and not self.rcd:
                self._tested = True
        if pin == self._p_relay and not value and self._left_us is not None:
            ms = time.ticks_diff(t_us, self._left_us) / 1000
            self._left_us = None
            self.latency_ms.append(ms)
            relay_open_latency_ms.append(ms)
            if ms > _LATENCY_LIMIT_MS and not self._left_flagged:
                self._violation(t_us, "relay opened %.1f ms after the EV left C/D" % ms)
        self._levels()
        self._drive_inputs()
        self.meter.update()
        self._check(t_us, pin, value)

    def rating(self):
        """The most the EVSE may offer: the board's rating, and the cable's on socket boards."""
        return min(self._rating_a, self.cable_a) if self._socket else self._rating_a

    def _check(self, t_us, pin, value):
        if pin == self._p_pwm and self.plug and self.offered_a() > self.rating() + 0.05:
            self._violation(t_us, "offered %.2f A over the %d A rating"
                            % (self.offered_a(), self.rating()))
        if not self.relay_out():
            return
        st = self._st
        if not (st == "C" or (st == "D" and self._vent_ok)):
            self._violation(t_us, "relay closed in state %s" % st)
        elif not self.oscillating():
            self._violation(t_us, "relay closed without PWM")
        if machine._level(self._p_trip) if self._p_trip is not None else self.rcd:
            self._violation(t_us, "relay closed with RCD tripped")
        if self._p_lock is not None and not self.lock_closed():
            self._violation(t_us, "relay closed with the socket unlocked")
        if self.authorized is not None and not self.authorized():
            self._violation(t_us, "relay closed without an authorized transaction")
        if pin == self._p_relay and value and self._p_test is not None and not self._tested:
            self._violation(t_us, "relay closed without a passed RCD self-test since the plug-in")

    def lock_closed(self):
        """The socket lock's position (its feedback input, else its output)."""
        if self._p_lock_fb is None:
            return self._out(self._p_lock)
        return machine._level(self._p_lock_fb) == 1

    def _violation(self, t_us, what):
        violations.append({"connector": self.id, "t_us": t_us, "time": time.time(), "what": what})

    def check(self):
        """Flag a relay still closed more than 100 ms after the EV left C/D (call any time)."""
        if self._left_us is not None and not self._left_flagged:
            t = time.ticks_us()
            ms = time.ticks_diff(t, self._left_us) / 1000
            if ms > _LATENCY_LIMIT_MS:
                self._left_flagged = True
                self._violation(t, "relay still closed %.1f ms after the EV left C/D" % ms)

    # -- the control API
    def update(self, d, fields=EV_FIELDS):
        """Apply a dict of EV (or, with fields=FAULT_FIELDS, fault) settings; ValueError if invalid.
        Validates everything before changing anything."""
        for k, v in d.items():
            if k not in fields:
                raise ValueError("unknown field: %s" % k)
            if k == "max_a":
                if _is_bool(v) or not isinstance(v, _NUM) or not 0 <= v <= 80:
                    raise ValueError("max_a: number 0-80 expected")
            elif k == "phases":
                if _is_bool(v) or v not in (1, 3):
                    raise ValueError("phases: 1 or 3 expected")
            elif k == "cable_a":
                if _is_bool(v) or v not in (13, 20, 32, 63):
                    raise ValueError("cable_a: 13, 20, 32 or 63 expected")
            elif not _is_bool(v):
                raise ValueError("%s: boolean expected" % k)
        t = time.ticks_us()
        self.meter.integrate(t)
        was_on = self.relay_out() and self._may_draw(self.state())
        was_rcd = self.rcd
        if d.get("plug") and not self.plug:
            self._tested = False
        for k, v in d.items():
            setattr(self, k, float(v) if k == "max_a" else v)
        if self.relay_out() and self._left_us is None:
            if (was_on and not self._may_draw(self.state())) or (self.rcd and not was_rcd):
                self._left_us = t
                self._left_flagged = False
        self._levels()
        self._drive_inputs()
        self.meter.update()
        if fields is EV_FIELDS:  # (after the pins: the firmware sees the change at once)
            store.save(self._path, {k: getattr(self, k) for k in EV_FIELDS})

    def _may_draw(self, st):
        return st == "C" or (st == "D" and self._vent_ok)

    def left_ms(self):
        """Ms since the EV left C/D with the relay still closed, None when no opening is due."""
        if self._left_us is None:
            return None
        return time.ticks_diff(time.ticks_us(), self._left_us) / 1000

    def snapshot(self):
        d = {k: getattr(self, k) for k in EV_FIELDS}
        d["left_ms"] = self.left_ms()
        d["faults"] = {k: getattr(self, k) for k in FAULT_FIELDS}
        d["state"] = self.state()
        d["amps"] = self.amps()
        d["relay_open_latency_ms"] = self.latency_ms
        d["rcd_tests"] = self.rcd_tests
        return d


class Meter:
    """Energy meter of one connector: `read() -> (energy_wh, power_w, (a1, a2, a3), (v1, v2, v3))`.
    The register never goes backwards across restarts: a read returning more than the last
    persisted value persists it first (atomically, `sim_meter<connector id>.json` in the cwd).
    On a fresh state folder it starts at UWB_SIM_METER_START Wh (default 0); set() moves it
    (the control API's POST /meter), backwards too (a swapped meter)."""

    def __init__(self, ev):
        self.ev = ev
        self.path = "sim_meter%d.json" % ev.id
        self._saved = 0
        d = store.load(self.path)
        if d is None:
            import os
            d = {"wh": int(os.getenv("UWB_SIM_METER_START") or 0)}
            store.save(self.path, d)
        self._saved = int(d.get("wh", 0))
        self.energy = float(self._saved)
        self.power = 0.0
        self.amps = (0.0, 0.0, 0.0)
        self._t = time.ticks_us()

    def integrate(self, t=None):
        if t is None:
            t = time.ticks_us()
        dt = time.ticks_diff(t, self._t)
        if dt > 0:
            self.energy += self.power * dt / 3600000000
            self._t = t

    def update(self):
        ev = self.ev
        a = ev.amps()
        n = ev.phases_used()
        self.amps = (a, a if n == 3 else 0.0, a if n == 3 else 0.0)
        self.power = a * ev.volts * n

    def volts(self):
        v = float(self.ev.volts)
        return (v, v, v) if self.ev._board_phases == 3 else (v, 0.0, 0.0)

    def set(self, wh):
        self.integrate()
        self.energy = float(wh)
        self._saved = wh
        store.save(self.path, {"wh": wh})

    def read(self):
        self.integrate()
        self.update()
        wh = int(self.energy)
        if wh > self._saved:
            store.save(self.path, {"wh": wh})
            self._saved = wh
        return (wh, self.power, self.amps, self.volts())
