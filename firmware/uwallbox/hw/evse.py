"""The IEC 61851-1 state machine of one connector (docs/ARCHITECTURE.md, "Hardware layer";
docs/HARDWARE.md, "Safety rules").

`Evse.step()` runs every 10.2 ms from one `machine.Timer` soft callback (`start_timer(evses)`;
a period that is not a whole number of PWM periods, so successive pilot bursts fall at different
PWM phases: hw/pilot.py), so it keeps running while asyncio tasks are busy. It never waits on the network and imports no
OCPP code.

Inputs (set by the OCPP side): `allow` (an authorized transaction may draw energy), `limit_a`
(smart charging limit in A, None = none), `available` (False: pilot disabled, state F), `max_a`
(configured maximum, default board.MAX_CURRENT_A), `hold_lock` (keep the socket locked when the
EV side disconnects; default False).
Outputs (read-only): `cp` ('A'..'F', debounced), `plugged`, `ready` (EV asks for energy: C/D),
`relay` (contactor commanded closed), `offered_a` (0.0 when no PWM offer), `fault` (None or an
OCPP ChargePointErrorCode), `locked` (socket lock position). Every change of an output sets
`changed` (an asyncio.ThreadSafeFlag). Also `cable_a` (PP cable rating, None without a cable).

Rules:
- The contactor closes only when the debounced and the latest pilot state are C (or D with
  board.VENTILATION), the PWM oscillates with an offer >= 6 A, `allow` and `available` are true,
  there is no fault, no RCD self-test is running, the contactor is not welded and (socket
  boards) the lock reports locked; it closes only in a step whose own pilot burst saw C (or D).
  It opens in the same step as soon as one of these stops holding; a single sample outside C/D
  is enough (debouncing delays closing, never opening), and so is a pilot window that saw no
  high level. While the contactor is closed each step's pilot burst reads until it has sampled
  the high level as it is now (two reads at the window's level or above), within a budget of
  GRANT reads a step (a late step: one for each _US_PER_READ it waited; pilot.FULL, a whole PWM
  period, at most): 882 ADC reads a second at most with the PP's while every window holds the
  high level (a window that lost it reads on first, _LOST reads at most). At 32 A that is enough for
  every step, and it opens in the step after the EV leaves C/D; at 6 A within WINDOW steps (51
  ms), and in the next step after a late one (hw/pilot.py).
  The contactor opens before the PWM changes and closes after it has been offered.
- Offered current = min(board.MAX_CURRENT_A, max_a, limit_a, cable rating (socket boards)).
  Below 6 A, or `allow` false, or a latched fault, or state E: standby (steady +12 V, the EV
  stays in B, offered 0).
  `available` false: pilot disabled (steady -12 V, cp reads F; `plugged` keeps its last value).
- RCD self-test (boards with rcd_trip and rcd_test; rcd.py runs it): at start-up and on each
  rising edge of plugged-and-allow (before each session draws energy), with the contactor open.
  A failed test latches GroundFailure until a test passes; the test is then repeated when an EV
  is plugged in and on `clear_fault()`.
- Latched faults, cleared when the EV is unplugged (cp A) and the cause is gone, or by
  `clear_fault()` once the cause is gone: GroundFailure (RCD trip input, or a failed self-test),
  PowerSwitchFailure (feedback closed 200 ms or more after opening, or before closing),
  EVCommunicationError (EV diode missing: low level above -10.5 V while the PWM oscillates, 3
  samples), ConnectorLockFailure (lock feedback does not follow within 500 ms; cleared as soon
  as it matches again), InternalError (step() raised). Conditions (not latched): state E and
  state D without ventilation -> OtherError.
- Socket lock: locks when plugged and allowed (on the rising edge of plugged-and-allow); unlocks
  when the EV is unplugged (unless `hold_lock`) and on `unlock()`.
"""
import sys
import time

import asyncio
import machine
from micropython import const

from .pilot import BURST, CLOSED, FULL, Pilot, classify
from .relay import Contactor

_PERIOD_MS = const(10)
_SHIFT_US = const(200)    # the timer period is 10 ms + this: a fifth of a PWM period per step
GRANT = const(8)         # pilot reads a closed step adds to its budget: 784 a second, 882 with the
                          # PP's; 8 reads span the 200 us the bursts move by (hw/pilot.py)
_LATE_US = const(15000)   # a step this long after the one before is late (the timer's is 10.2 ms)
_US_PER_READ = const(1275)  # a late closed step adds one read for each of these since the last
_LOST = const(100)        # reads a closed step may take when its window lost the high level
_WELD_STEPS = const(20)   # steps after opening before the feedback must show open (200 ms)
_LOCK_STEPS = const(50)   # steps the lock actuator may take (500 ms)
_DIODE_STEPS = const(3)   # consecutive bad low levels before the diode fault
_DIODE_MV = const(-10500)  # the low level must be below this while the PWM oscillates

_OFF = const(0)           # pilot modes
_STANDBY = const(1)
_OFFER = const(2)

_PLUGGED = {"A": False, "B": True, "C": True, "D": True}  # E and F keep the last value


class Evse:
    def __init__(self, board, index):
        c = board.CONNECTORS[index]
        self.board = board
        self.index = index
        self.id = index + 1
        socket = getattr(board, "SOCKET", False)
        self._vent = getattr(board, "VENTILATION", False)
        self._board_max = float(board.MAX_CURRENT_A)
        self.pilot = Pilot(c["pilot_pwm"], c["pilot_adc"], board.PILOT_CAL)
        self.contactor = Contactor(c["relay"], c.get("relay_fb"))
        self.pp = None
        self.lock_hw = None
        self.rcd = None
        if socket and c.get("pp_adc") is not None:
            from .pp import Proximity
            self.pp = Proximity(c["pp_adc"], board.PP_CAL)
        if socket and c.get("lock") is not None:
            from .lock import Lock
            self.lock_hw = Lock(c["lock"], c.get("lock_fb"))
        if c.get("rcd_trip") is not None:
            from .rcd import Rcd
            self.rcd = Rcd(c["rcd_trip"], c.get("rcd_test"))  # the self-test needs both pins
        # inputs
        self.allow = False
        self.limit_a = None
        self.available = True
        self.max_a = self._board_max
        self.hold_lock = False
        # outputs
        self.cp = "A"
        self.plugged = False
        self.ready = False
        self.relay = False
        self.offered_a = 0.0
        self.fault = None
        self.locked = False
        self.cable_a = None
        self.changed = asyncio.ThreadSafeFlag()
        # state
        self._cand = None        # debounce candidate and its count
        self._cnt = 0
        self._latched = None     # latched fault code
        self._since_open = _WELD_STEPS
        self._diode_bad = 0
        self._pa = False         # plugged and allow, last step
        self._lock_steps = 0
        self._offer = -1.0       # current the PWM offers (-1: none)
        self._errors = 0
        self._reads = FULL       # pilot reads a closed burst may still take (a budget)
        self._t = time.ticks_us()  # when the last step ran

    # -- the 10 ms step: sense, judge, act, report
    def step(self):
        p = self.pilot
        osc = p.oscillating                      # PWM during this sample
        now = time.ticks_us()
        dt = time.ticks_diff(now, self._t)
        self._t = now
        if self.contactor.closed:
            # a budget of reads: GRANT more each step (a late one, one for each _US_PER_READ
            # since the last), FULL at most: under 1,000 reads a second with the PP's
            n = self._reads + (GRANT if dt <= _LATE_US else dt // _US_PER_READ)
            if n > FULL:
                n = FULL
            h = p.measure(CLOSED, n)
            n -= p.reads
            if not p.seen:
                # the budget's bursts left the window without the high level (reads faster than
                # the 25 us its coverage assumes): read on, a period even at 10 us a read, before
                # opening for want of a reading; only a lost level costs these reads
                h = p.measure(CLOSED, _LOST)
                n = 0
            self._reads = n
        else:
            self._reads = FULL
            h = p.measure(BURST)
        raw = classify(h, self.cp) if p.seen else None   # None: no high level in the window
        cp = self._debounce(raw)
        plugged = _PLUGGED.get(cp, self.plugged)
        pa = plugged and self.allow
        latched = self._faults(raw, plugged, pa, osc)
        if self.lock_hw is not None:
            latched = self._lock(cp, pa, latched)
        self._pa = pa
        if latched is not None and self._cause_gone(latched, cp):
            latched = None
        self._latched = latched
        fault = latched
        if fault is None and (cp == "E" or (cp == "D" and not self._vent)):
            fault = "OtherError"
        a = self._limit()
        if not self.available:
            mode = _OFF
        elif latched is not None or cp == "E" or not self.allow or a < 6:
            mode = _STANDBY     # (D without ventilation keeps the PWM: the EV may go back to C)
        else:
            mode = _OFFER
        fault = self._switch(mode, a, raw, cp, osc, fault)
        self._report(cp, plugged, mode, a, fault)

    def _debounce(self, raw):
        """The pilot state after debouncing: RAW once it has been read twice in a row (None, no
        reading, keeps the state and restarts the count)."""
        if raw is None:
            self._cand = None
            self._cnt = 0
            return self.cp
        if raw == self._cand:
            self._cnt += 1
        else:
            self._cand = raw
            self._cnt = 1
        return raw if raw != self.cp and self._cnt >= 2 else self.cp

    def _faults(self, raw, plugged, pa, osc):
        """The latched fault after this step's RCD, EV diode and weld checks."""
        latched = self._latched
        rcd = self.rcd
        if rcd is not None:
            if (pa and not self._pa) or (plugged and not self.plugged and rcd.dead):
                rcd.want_test()
            latched = rcd.step(latched)
        if osc and self.pilot.low_ok and (raw == "B" or raw == "C" or raw == "D") \
                and self.pilot.low_mv > _DIODE_MV:
            self._diode_bad += 1
            if self._diode_bad >= _DIODE_STEPS and latched is None:
                latched = "EVCommunicationError"
        else:
            self._diode_bad = 0
        c = self.contactor
        if not c.closed:
            if self._since_open < _WELD_STEPS:
                self._since_open += 1
            elif c.welded() and latched is None:
                latched = "PowerSwitchFailure"
        return latched

    def _lock(self, cp, pa, latched):
        """Socket boards: lock on the rising edge of plugged-and-allow, unlock when unplugged
        (unless hold_lock; the contactor opens first); a lock that does not follow is a fault."""
        lk = self.lock_hw
        c = self.contactor
        want = lk.commanded
        if pa and not self._pa:
            want = True
        elif cp == "A" and not self.hold_lock:
            want = False
        if want != lk.commanded:
            if not want and c.closed:
                c.open()
                self._since_open = 0
            if want:
                lk.lock()
            else:
                lk.unlock()
            self._lock_steps = 0
        elif self._lock_steps < _LOCK_STEPS:
            self._lock_steps += 1
        elif not lk.ok() and latched is None:
            latched = "ConnectorLockFailure"
        return latched

    def _limit(self):
        """The current that may be offered: min(board, max_a, limit_a, the cable's rating)."""
        a = self._board_max
        if self.max_a < a:
            a = self.max_a
        lim = self.limit_a
        if lim is not None and lim < a:
            a = lim
        if self.pp is not None:
            r = self.pp.rating()
            if r != self.cable_a:
                self.cable_a = r
            if r is None:
                a = 0.0
            elif r < a:
                a = r
        return a

    def _switch(self, mode, a, raw, cp, osc, fault):
        """The contactor opens first, then the pilot changes, then the contactor may close.
        Returns the fault (a weld found before closing is one)."""
        p = self.pilot
        c = self.contactor
        lk = self.lock_hw
        st_ok = (raw == "C" and cp == "C") or (self._vent and raw == "D" and cp == "D")
        may = (mode == _OFFER and osc and st_ok and fault is None
               and (self.rcd is None or self.rcd.quiet())
               and (lk is None or (lk.commanded and lk.locked)))
        if c.closed and not may:
            c.open()
            self._since_open = 0
        if mode == _OFFER:
            if a != self._offer:
                self._offer = a
                p.offer(a)
        else:
            self._offer = -1.0
            if mode == _OFF:
                p.disable()
            else:
                p.standby()
        if may and not c.closed and p.fresh:     # this step's own burst saw C (or D)
            if self._since_open >= _WELD_STEPS and c.welded():
                self._latched = fault = "PowerSwitchFailure"
            else:
                c.close()
        return fault

    def _report(self, cp, plugged, mode, a, fault):
        """Set the outputs; `changed` when one of them did."""
        ch = False
        if cp != self.cp:
            self.cp = cp
            ch = True
        if plugged != self.plugged:
            self.plugged = plugged
            ch = True
        ready = cp == "C" or cp == "D"
        if ready != self.ready:
            self.ready = ready
            ch = True
        closed = self.contactor.closed
        if closed != self.relay:
            self.relay = closed
            ch = True
        if mode != _OFFER:
            a = 0.0
        if a != self.offered_a:
            self.offered_a = float(a)
            ch = True
        if fault != self.fault:
            self.fault = fault
            ch = True
        locked = self.lock_hw is not None and self.lock_hw.locked
        if locked != self.locked:
            self.locked = locked
            ch = True
        if ch:
            self.changed.set()

    def _cause_gone(self, code, cp):
        if code == "ConnectorLockFailure":
            return self.lock_hw is None or self.lock_hw.ok()
        if cp != "A":
            return False
        return self._cause_clear(code)

    def _cause_clear(self, code):
        if code == "GroundFailure":
            return self.rcd is None or self.rcd.cleared()
        if code == "PowerSwitchFailure":
            return not self.contactor.welded()
        if code == "ConnectorLockFailure":
            return self.lock_hw is None or self.lock_hw.ok()
        return True

    def _crash(self, e):
        """step() raised: safe state (contactor open, pilot standby), fault InternalError."""
        try:
            self.contactor.open()
            self._since_open = 0
            self.pilot.standby()
        finally:
            self._latched = "InternalError"
            if self._errors < 3:
                self._errors += 1
                print("evse %d: step failed" % self.id)
                sys.print_exception(e)
            self.relay = False
            self.offered_a = 0.0
            self.fault = "InternalError"
            self.changed.set()

    # -- commands
    def clear_fault(self):
        """Clear a latched fault if its cause is gone; True if no latched fault remains. After a
        failed RCD self-test, starts another one: its success clears the fault."""
        if self.rcd is not None and self.rcd.dead:
            self.rcd.want_test()
        f = self._latched
        if f is not None and self._cause_clear(f):
            self._latched = None
            self.changed.set()
        return self._latched is None

    def unlock(self):
        """Open the contactor and unlock the socket now; True if the lock reports unlocked
        (waits up to 500 ms for the feedback). True without a lock."""
        lk = self.lock_hw
        if lk is None:
            return True
        if self.contactor.closed:
            self.contactor.open()
            self._since_open = 0
        lk.unlock()
        self._lock_steps = 0
        if not lk.ok():
            import time
            t = time.ticks_ms()
            while not lk.ok() and time.ticks_diff(time.ticks_ms(), t) < _LOCK_STEPS * _PERIOD_MS:
                time.sleep_ms(5)
        self.relay = self.contactor.closed
        self.locked = lk.locked
        self.changed.set()
        return not lk.locked


class _Ticker:
    def __init__(self, evses):
        self.evses = list(evses)
        self.cb = self.tick       # preallocated bound method for the Timer

    def tick(self, _t):
        for e in self.evses:
            try:
                e.step()
            except Exception as ex:
                e._crash(ex)


_timer = None
_ticker = None


def start_timer(evses, period=_PERIOD_MS):
    """Start the one machine.Timer(0) stepping EVSES every PERIOD ms + 200 us (replaces a running
    one)."""
    global _timer, _ticker
    stop_timer()
    _ticker = _Ticker(evses)
    _timer = machine.Timer(0)  # a hardware timer: the ESP32's virtual Timer(-1) ignores tick_hz
    _timer.init(period=period * 1000 + _SHIFT_US, tick_hz=1000000, mode=machine.Timer.PERIODIC,
                callback=_ticker.cb)
    return _timer


def stop_timer():
    """Stop the timer started by start_timer()."""
    global _timer, _ticker
    if _timer is not None:
        _timer.deinit()
    _timer = None
    _ticker = None

