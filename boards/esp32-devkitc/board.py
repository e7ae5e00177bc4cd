"""Reference board: an ESP32-DevKitC (ESP32-WROOM-32, no PSRAM) driving one connector through
an interface board (pilot driver and divider, contactor driver, RCD module, lock driver); the
wiring and the pilot circuit are in docs/HARDWARE.md.

Pin choices (docs/ARCHITECTURE.md, REFERENCE.md section 10):
- analog inputs only on ADC1 (GPIO 32-39): ADC2 is unusable while Wi-Fi runs;
- no strapping pins (0, 2, 5, 12, 15) for outputs that switch power, no flash pins (6-11);
- GPIO 34-39 are input-only and have no internal pull resistors: the interface board fits them;
- every digital input is active-high (interface board): relay_fb 1 = contacts closed,
  rcd_trip 1 = tripped, lock_fb 1 = locked; outputs are active-high (1 = energise).
"""
import time

from uwallbox import files
from uwallbox.flash import store

NAME = "esp32-devkitc"
MAX_CURRENT_A = 32      # supply and contactor rating per connector
PHASES = 3
VOLTAGE_V = 230
SOCKET = False          # tethered cable; True for a type 2 socket (fits pp_adc and the lock)
VENTILATION = False
WIFI = True             # join Wi-Fi at boot (uwallbox/netup.py, credentials in wifi.json)

# Pilot divider: -12..+12 V mapped to about 0.15..2.95 V at the ADC (11 dB attenuation,
# read_uv is calibrated). Nominal values; measure both ends on each unit and adjust.
PILOT_CAL = (150000, 2950000)   # ADC uV at -12 V and +12 V pilot
PP_CAL = (1000, 3300000)        # PP pulled up to 3.3 V through 1 kOhm

CONNECTORS = (
    {
        "pilot_pwm": 25,   # GPIO25 out: pilot PWM 1 kHz to the +-12 V driver (high = +12 V)
        "pilot_adc": 36,   # GPIO36 (SENSOR_VP, ADC1_CH0) in: pilot through the divider
        "pp_adc": 39,      # GPIO39 (SENSOR_VN, ADC1_CH3) in: proximity pilot (socket only)
        "relay": 26,       # GPIO26 out: contactor coil driver
        "relay_fb": 34,    # GPIO34 in (input-only): contactor auxiliary contact
        "rcd_trip": 35,    # GPIO35 in (input-only): RCD-DD 6 mA DC module trip output
        "rcd_test": 27,    # GPIO27 out: RCD module test winding
        "lock": 14,        # GPIO14 out: socket lock actuator (socket only)
        "lock_fb": 32,     # GPIO32 (ADC1_CH4, used digital) in: lock position switch (socket only)
    },
)
LED = 2                 # GPIO2: status LED (strapping pin, low at boot: fine for a LED)
BUTTON = 0              # GPIO0: BOOT button, active low (strapping pin, input only here)

_meters = []


class EstimatedMeter:
    """An ESTIMATE of the energy, for boards without a meter chip: integrates the offered
    current x VOLTAGE_V x PHASES while the contactor is closed (the EV may draw less than it is
    offered, so this is an upper bound). `read() -> (energy_wh, power_w, amps, volts)`.

    The register never goes backwards across restarts: read() returns only values persisted in
    flash (files.METER, written atomically). To spare the flash it persists at most every
    PERSIST_S seconds, so a reading lags the integration by up to that time.
    """
    PERSIST_S = 30

    def __init__(self, index):
        self.index = index
        self.path = files.METER % (index + 1)
        self.evse = None          # set by attach()
        self._saved = 0
        self._saved = int(store.load(self.path, {}).get("wh", 0))
        self._energy = float(self._saved)
        self._t = time.ticks_ms()
        self._t_saved = self._t
        self.power = 0.0

    def _integrate(self):
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self._t)
        self._t = now
        self._energy += self.power * dt / 3600000
        e = self.evse
        self.power = e.offered_a * VOLTAGE_V * PHASES if (e is not None and e.relay) else 0.0

    def read(self):
        self._integrate()
        wh = int(self._energy)
        if wh > self._saved and (time.ticks_diff(self._t, self._t_saved) >= self.PERSIST_S * 1000
                                 or self.power == 0.0):
            store.save(self.path, {"wh": wh})
            self._saved = wh
            self._t_saved = self._t
        a = self.power / VOLTAGE_V / PHASES
        return (self._saved, self.power, (a, a, a), (float(VOLTAGE_V),) * 3)


def meter(index):
    while len(_meters) <= index:
        _meters.append(EstimatedMeter(len(_meters)))
    return _meters[index]


def attach(app):
    """Give the estimated meters their Evse (the relay state and the offered current)."""
    for i, e in enumerate(app.evses):
        meter(i).evse = e
