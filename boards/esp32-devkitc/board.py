"""Reference board: an ESP32-DevKitC (ESP32-WROOM-32, no PSRAM) driving one connector through
an interface board (pilot driver and divider, contactor driver, RCD module, lock driver); the
wiring and the pilot circuit are in docs/HARDWARE.md.

Pin choices (docs/HARDWARE.md, "The reference board"):
- analog inputs only on ADC1 (GPIO 32-39): ADC2 is unusable while Wi-Fi runs;
- no strapping pins (0, 2, 5, 12, 15) for outputs that switch power, no flash pins (6-11);
- GPIO 34-39 are input-only and have no internal pull resistors: the interface board fits them;
- every digital input is active-high (interface board): relay_fb 1 = contacts closed,
  rcd_trip 1 = tripped, lock_fb 1 = locked; outputs are active-high (1 = energise).
"""
from uwallbox.hw.estimated import EstimatedMeter

NAME = "esp32-devkitc"
MAX_CURRENT_A = 32      # supply and contactor rating per connector
PHASES = 3
VOLTAGE_V = 230
SOCKET = False          # tethered cable; True for a type 2 socket (fits pp_adc and the lock)
VENTILATION = False
WIFI = True             # join Wi-Fi at boot (uwallbox/system/netup.py, credentials in wifi.json)
SETUP_PIN = 0           # the BOOT button (active low): pressed just after a reset (not during it: that is
                        # the ROM's download mode) and held ~2 s, it opens the setup access point (docs/WEB.md)

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

_meters = []


def meter(index):
    """No meter chip: the energy is estimated from the offer (uwallbox/hw/estimated.py)."""
    while len(_meters) <= index:
        _meters.append(EstimatedMeter(len(_meters), VOLTAGE_V, PHASES))
    return _meters[index]


def attach(app):
    """Give the estimated meters their Evse (the relay state and the offered current)."""
    for i, e in enumerate(app.evses):
        meter(i).evse = e
