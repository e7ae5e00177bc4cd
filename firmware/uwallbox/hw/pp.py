"""Proximity pilot (socket outlets): the cable's current rating from its PP-PE resistor (docs/HARDWARE.md,
"IEC 61851 in brief": 1.5 kOhm = 13 A, 680 Ohm = 20 A, 220 Ohm = 32 A, 100 Ohm = 63 A).

The board's PP_CAL = (pullup_ohm, supply_uv): PP is pulled up to a supply of SUPPLY_UV through
PULLUP_OHM and read by an ADC; the cable's resistor to PE forms the lower half of the divider.
"""
from machine import ADC, Pin

# (upper bound of the resistor range in ohms, rating in A); ranges split between nominal values
_TABLE = ((50, None), (150, 63), (450, 32), (1000, 20), (2700, 13))


def rating_for(ohms):
    """Cable rating (A) for a PP resistor; None when open / shorted / out of range."""
    if ohms is None:
        return None
    for top, amps in _TABLE:
        if ohms < top:
            return amps
    return None


class Proximity:
    def __init__(self, adc_pin_no, cal):
        self._adc = ADC(Pin(adc_pin_no), atten=ADC.ATTN_11DB)
        self._pullup = cal[0]
        self._supply = cal[1]

    def ohms(self):
        """The PP-PE resistance, None when open (no cable)."""
        uv = self._adc.read_uv()
        if uv >= self._supply * 19 // 20:
            return None
        # in 16 uV units: pullup * uv stays within 31 bits (on the ESP32 a bigger int is a heap
        # allocation); d >= 5 % of the supply, so the error is far below an ohm
        return self._pullup * (uv >> 4) // ((self._supply - uv) >> 4)

    def rating(self):
        """Cable rating in A (13/20/32/63) or None (no cable / invalid)."""
        return rating_for(self.ohms())
