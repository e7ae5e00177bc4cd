"""IEC 61851-1 control pilot: PWM generator and level measurement (docs/HARDWARE.md, "IEC 61851 in brief").

The pilot output pin drives the +-12 V pilot through the board's driver (pin high = +12 V); the ADC
pin sees the pilot through a linear divider, calibrated by the board's PILOT_CAL = (uV at -12 V,
uV at +12 V). Pin interrupts are deferred on the ESP32, so the levels are measured with a tight
burst of ADC reads spanning more than one PWM period: max = high level, min = low level.
"""
from array import array

from machine import ADC, PWM, Pin

FREQ = 1000      # Hz
BURST = 40       # ADC reads per sample(): must span > 1 PWM period

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
        self._buf = array("i", [0] * BURST)      # the last burst, microvolts
        self._uv_lo = cal[0]                     # uV at -12 V
        self._uv_span = cal[1] - cal[0]          # uV for 24 V
        self.duty = 100.0                        # percent; 100 = steady +12 V, 0 = steady -12 V
        self.high_mv = 0
        self.low_mv = 0

    @property
    def oscillating(self):
        return 0.0 < self.duty < 100.0

    def set_duty(self, percent):
        """Raw duty cycle in percent (0 = steady -12 V, 100 = steady +12 V). Rounded down: an EV
        never reads more than the offer (at 85 % a hair more would read 52.5 A instead of 51)."""
        if percent != self.duty:
            self.duty = percent
            self._pwm.duty_u16(int(percent * 65535 / 100))

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

    def measure(self):
        """Burst-sample the pilot; sets and returns high_mv (low_mv set too). The loop allocates
        nothing: small ints only, preallocated buffer and bound method."""
        buf = self._buf
        read = self._read
        hi = -1
        lo = 1 << 30
        for i in range(BURST):
            v = read()
            buf[i] = v
            if v > hi:
                hi = v
            if v < lo:
                lo = v
        span = self._uv_span
        self.high_mv = _mv(hi - self._uv_lo, span) - 12000
        self.low_mv = _mv(lo - self._uv_lo, span) - 12000
        return self.high_mv

    def sample(self):
        """(high_mv, low_mv) of the pilot, from one burst."""
        self.measure()
        return (self.high_mv, self.low_mv)
