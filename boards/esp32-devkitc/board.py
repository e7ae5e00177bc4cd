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

# The energy meter (docs/METERS.md): None = no meter, the energy is estimated from the offer
# (EstimatedMeter: an upper bound, not for billing); or a Modbus RTU meter on RS-485, "SDM630",
# "SDM120" or "B23", on UART2 (GPIO17 TX, GPIO16 RX) with the transceiver's DE and /RE on GPIO4,
# connector N's meter at Modbus address METER_ADDRESS + N - 1, set in the meter's own menu with
# the same baud rate (8N1).
METER = None
METER_ADDRESS = 1
METER_BAUD = 9600

_meters = []
_bus = None


def meter(index):
    """The energy meter of connector index+1 (METER)."""
    global _bus
    while len(_meters) <= index:
        i = len(_meters)
        if METER is None:
            from uwallbox.hw.estimated import EstimatedMeter
            _meters.append(EstimatedMeter(i, VOLTAGE_V, PHASES))
            continue
        if _bus is None:
            from machine import UART
            import modbus
            uart = UART(2, baudrate=METER_BAUD, bits=8, parity=None, stop=1, tx=17, rx=16,
                        rxbuf=512, timeout=0)
            _bus = modbus.Master(uart, METER_BAUD, de=4)
        from uwallbox.hw import meters
        _meters.append(getattr(meters, METER)(_bus, METER_ADDRESS + i))
    return _meters[index]


def attach(app):
    """Give the estimated meters their Evse (the relay state and the offered current); the Modbus
    meters poll from boot (the App starts them)."""
    for i, e in enumerate(app.evses):
        m = meter(i)
        if METER is None:
            m.evse = e
