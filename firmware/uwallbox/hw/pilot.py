"""IEC 61851-1 control pilot: PWM generator and level measurement (docs/HARDWARE.md, "IEC 61851 in brief").

The pilot output pin drives the +-12 V pilot through the board's driver (pin high = +12 V); the ADC
pin sees the pilot through a linear divider, calibrated by the board's PILOT_CAL = (uV at -12 V,
uV at +12 V). Pin interrupts are deferred on the ESP32, so the levels are the max (high level)
and min (low level) of ADC reads that together span more than one PWM period: each measure()
takes BURST reads (one Evse step: with the proximity pilot's read, 980 ADC reads a second per
connector) and the levels are those of the last WINDOW bursts. The steps are not
phase-locked to the PWM (the Evse timer period is 10.2 ms, not a whole number of 1 ms periods:
each burst starts a fifth of a period later than the one before), so WINDOW bursts cover every
phase when a read takes 25 us or more (docs/ESP32.md, "CPU budget").

With a steady PWM (standby, disabled) every read is the level: each burst alone gives it. While
the PWM oscillates, stale readings never keep a state longer than WINDOW bursts, and a burst that
shows a level the window does not explain wins at once:
- a higher high level is the max at once (the EV left C for B or A);
- a burst whose every read is near 0 V is state E now (no other state or phase reads 0 V): the
  window restarts from it;
- a burst in which two reads agree on the max saw the high level as it is now (`fresh`): the
  window restarts from it (a single high read may be an edge of the PWM, so it only adds);
- a burst that saw only the low phase (all reads below -1.5 V while the PWM oscillates) says
  nothing about the high level: `seen` is False when no burst of the window saw it.
The contactor closes only on a fresh burst (hw/evse.py). While it is closed, a burst reads until
two of its reads reach the window's high level (at most HYST / 2 below it, or above it), CLOSED
reads at least, within the budget hw/evse.py gives it (8 reads a step, FULL, a whole period, at
most): at 32 A (53 %) about 5 pilot reads a step, so every step samples the high phase as it is
now and the EV leaving C shows in the very next step; at 6 A (10 %) a burst may read only low
phase and the window holds the level until a later one samples it (5 steps at most). Either
way at most 882 ADC reads a second with the proximity read (more only in a step whose window
lost the high level: an ADC faster than assumed) (docs/ESP32.md, "CPU budget").
"""
from array import array

from machine import ADC, PWM, Pin

FREQ = 1000      # Hz
BURST = 9        # ADC reads a burst (an Evse step) takes while the contactor is open
FULL = 40        # ADC reads a burst may take while the contactor is closed: a whole PWM period
CLOSED = 2       # ADC reads a burst takes at least while the contactor is closed
WINDOW = 5       # bursts the levels are taken over (together > 1 PWM period)
_NO_HI = -1      # uV: no high-phase read in that burst (reads are >= 0 uV)
_NO_LO = 1 << 29  # uV: no low reads yet (a small int on the 32-bit build)

# classification thresholds on the high level, mV (nominal A 12, B 9, C 6, D 3, E 0, F -12 V)
_T_AB = 10500
_T_BC = 7500
_T_CD = 4500
_T_DE = 1500
_T_EF = -10000
HYST = 400       # mV: a reading this close to a threshold keeps the previous state


def duty_for(amps):
    """Duty cycle (percent) offering AMPS; None below 6 A (not offerable); clamps at 80 A."""
    if amps is None or amps < 6:
        return None
    if amps > 80:
        amps = 80
    if amps <= 51:
        return amps / 0.6
    return amps / 2.5 + 64


def amps_for(duty):
    """Current (A) a duty cycle (percent) offers, as an EV reads it; None if no offer."""
    if duty < 8 or duty > 97:
        return None
    if duty < 10:
        return 6.0
    if duty <= 85:
        return duty * 0.6
    if duty <= 96:
        return (duty - 64) * 2.5
    return 80.0


# the range of high levels (lo, hi] each state covers
_RANGES = {"A": (_T_AB, 1 << 30), "B": (_T_BC, _T_AB), "C": (_T_CD, _T_BC),
           "D": (_T_DE, _T_CD), "E": (_T_EF, _T_DE), "F": (-(1 << 30), _T_EF)}


def classify(high_mv, prev=None):
    """Pilot state 'A'..'F' from the high level (mV). With PREV (the present state), a reading
    within HYST mV outside PREV's range keeps PREV. Pure function, no allocation."""
    if high_mv > _T_AB:
        s = "A"
    elif high_mv > _T_BC:
        s = "B"
    elif high_mv > _T_CD:
        s = "C"
    elif high_mv > _T_DE:
        s = "D"
    elif high_mv > _T_EF:
        s = "E"
    else:
        s = "F"
    if prev is not None and prev != s:
        r = _RANGES.get(prev)
        if r is not None and r[0] - HYST < high_mv <= r[1] + HYST:
            return prev
    return s


def _mv(x, span):
    """X * 24000 // SPAN (ADC uV above -12 V -> mV above -12 V) without an intermediate beyond
    31 bits: on the ESP32 a bigger int is a heap allocation. Long division: * 24, then 3 digits."""
    v = x * 24
    q = v // span
    r = v - q * span
    for _ in range(3):
        r *= 10
        d = r // span
        q = q * 10 + d
        r -= d * span
    return q


class Pilot:
    def __init__(self, pwm_pin_no, adc_pin_no, cal):
        self._pwm = PWM(Pin(pwm_pin_no, Pin.OUT), freq=FREQ, duty_u16=65535)
        self._adc = ADC(Pin(adc_pin_no), atten=ADC.ATTN_11DB)
        self._read = self._adc.read_uv           # preallocated bound method
        self._his = array("i", [_NO_HI] * WINDOW)  # max of each burst of the window, uV
        self._los = array("i", [_NO_LO] * WINDOW)  # min of each burst of the window, uV
        self._k = 0                              # the window slot the next burst fills
        self._osc_n = 0                          # bursts taken since the PWM began oscillating
        self._uv_lo = cal[0]                     # uV at -12 V
        self._uv_span = cal[1] - cal[0]          # uV for 24 V
        span = cal[1] - cal[0]
        self._uv_e_lo = cal[0] + 10500 * span // 24000   # -1.5 V: the band around 0 V (E)
        self._uv_e_hi = cal[0] + 13500 * span // 24000   # +1.5 V
        self._uv_tol = HYST // 2 * span // 24000          # two reads of one level: this close
        self.duty = 100.0                        # percent; 100 = steady +12 V, 0 = steady -12 V
        self.high_mv = 0
        self.low_mv = 0
        self.seen = False                        # a burst of the window saw the high level
        self.fresh = False                       # the last burst saw it
        self.reads = 0                           # ADC reads the last burst took

    @property
    def oscillating(self):
        return 0.0 < self.duty < 100.0

    @property
    def low_ok(self):
        """True when low_mv is the low level of a whole window of oscillating PWM (the EV diode
        check): the window saw the low phase (a low read 3 V or more below the high level; with
        a bad diode the low level is minus the high one, 6 V below it in D)."""
        return self._osc_n >= WINDOW and self.high_mv - self.low_mv > 3000

    def set_duty(self, percent):
        """Raw duty cycle in percent (0 = steady -12 V, 100 = steady +12 V). Rounded down: an EV
        never reads more than the offer (at 85 % a hair more would read 52.5 A instead of 51)."""
        if percent != self.duty:
            was = 0.0 < self.duty < 100.0
            osc = 0.0 < percent < 100.0
            self.duty = percent
            self._pwm.duty_u16(int(percent * 65535 / 100))
            if not osc:
                self._forget(True)   # a steady level: only what is read from now on
            elif not was:
                self._forget(False)  # the low level appears: the steady reads are no low
                self._osc_n = 0

    def _forget(self, high):
        his = self._his
        los = self._los
        for i in range(WINDOW):
            if high:
                his[i] = _NO_HI
            los[i] = _NO_LO

    def offer(self, amps):
        """PWM offering AMPS (6-80 A); below 6 A: standby (steady +12 V). Returns the duty."""
        d = duty_for(amps)
        if d is None:
            self.standby()
        else:
            self.set_duty(d)
        return self.duty

    def standby(self):
        """Steady +12 V: EV may connect, no charging allowed."""
        self.set_duty(100.0)

    def disable(self):
        """Steady -12 V: state F, EVSE not available."""
        self.set_duty(0.0)

    def measure(self, n=BURST, upto=0):
        """One burst of N reads into the window; with UPTO > N (the contactor closed), the burst
        goes on, UPTO reads at most (FULL: a whole period), until two of its reads have reached
        the window's high level (within HYST / 2) or a higher one: the high phase sampled as it is
        now. Sets high_mv (unchanged when `seen` is False), low_mv, seen, fresh and reads; returns
        high_mv. Allocates nothing: small ints only, preallocated arrays and bound method."""
        read = self._read
        his = self._his
        ref = -1                                 # closed: two reads at this level end the burst
        if upto > n:
            for i in range(WINDOW):
                if his[i] > ref:
                    ref = his[i]
            ref -= self._uv_tol                  # the window's high level less the tolerance
            if ref < self._uv_e_hi:              # no high level yet: any read above E counts
                ref = self._uv_e_hi
        hi = -1
        hi2 = -1                                 # the second highest read
        lo = _NO_LO
        i = 0
        while i < n or (hi2 < ref and i < upto):
            i += 1
            v = read()
            if v > hi:
                hi2 = hi
                hi = v
            elif v > hi2:
                hi2 = v
            if v < lo:
                lo = v
        self.reads = i
        los = self._los
        osc = 0.0 < self.duty < 100.0
        if osc and self._osc_n < WINDOW:
            self._osc_n += 1
        k = self._k
        self._k = k + 1 if k + 1 < WINDOW else 0
        if not osc or (lo > self._uv_e_lo and hi <= self._uv_e_hi):
            # a steady PWM: each read is the level; every read near 0 V: E now. One burst tells
            # the whole story: the rest of the window is stale
            for i in range(WINDOW):
                his[i] = hi
                los[i] = lo
            fresh = True
        elif hi <= self._uv_e_lo:
            fresh = False                        # the low phase only: no high level here
            his[k] = _NO_HI
            los[k] = lo
        else:
            # two reads agree on the max: the high level now (one read alone may be an edge)
            fresh = hi - hi2 <= self._uv_tol
            if fresh:
                for i in range(WINDOW):
                    his[i] = _NO_HI
            his[k] = hi
            los[k] = lo
        self.fresh = fresh
        h = _NO_HI
        lo = _NO_LO
        for i in range(WINDOW):
            if his[i] > h:
                h = his[i]
            if los[i] < lo:
                lo = los[i]
        span = self._uv_span
        self.seen = h != _NO_HI
        if self.seen:
            self.high_mv = _mv(h - self._uv_lo, span) - 12000
        self.low_mv = _mv(lo - self._uv_lo, span) - 12000
        return self.high_mv

    def sample(self):
        """(high_mv, low_mv) over a whole window (WINDOW bursts: the levels of > 1 PWM period)."""
        for _ in range(WINDOW):
            self.measure()
        return (self.high_mv, self.low_mv)
