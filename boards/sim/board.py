"""Board definition of the simulator (docs/ARCHITECTURE.md, "Board definition").

The hardware is the `machine` mock (sim/mpy/machine.py) plus one EV plant per connector
(sim/mpy/ev.py), created when this module is imported, so the firmware sees a consistent
"hardware" from the first ADC read. `attach(app)` starts the 5 ms idle tick (lets `machine.Timer`
callbacks run while asyncio idles) and, when UWB_SIM_CONTROL is set, the control API (simctl.py).

Environment: UWB_SIM_CONNECTORS (number of connectors, default 1), UWB_SIM_CONTROL (control API
port; no control API when unset), UWB_SIM_WEB (the web page's port, on 127.0.0.1; unset or 0: no web page),
UWB_SIM_WIFI (set: the board joins Wi-Fi through the mocked `network` module, so a board without a
wifi.json opens the setup access point), UWB_SIM_METER (the meter: plant, sdm630, sdm120, b23, ct,
estimated; see sim/mpy/simmeter.py; sdm120 makes the board single-phase), UWB_SIM_METER_START
(the plant meter's register on a fresh state folder, Wh).
"""
import gc
import os

from uwallbox.flash import store  # noqa: F401  (the plants use the firmware's own: its heap is the firmware's)

gc.collect()
_heap0 = gc.mem_alloc()
import machine  # noqa: E402  (the mocked hardware; on a device it is in ROM, not on the heap)
import esp32  # noqa: E402,F401  (the OTA mock: picks the app slot now, as the bootloader does)
import ev as _ev  # noqa: E402

NAME = "sim"
MAX_CURRENT_A = 32
METER = os.getenv("UWB_SIM_METER") or "plant"
PHASES = 1 if METER == "sdm120" else 3
VOLTAGE_V = 230
SOCKET = True          # socket outlet: proximity pilot and lock are exercised
VENTILATION = False
PILOT_CAL = (200000, 2900000)   # ADC uV at -12 V and +12 V pilot
PP_CAL = (1000, 3300000)        # PP pulled up to 3.3 V through 1 kOhm

_N = int(os.getenv("UWB_SIM_CONNECTORS") or 1)
WEB_PORT = int(os.getenv("UWB_SIM_WEB") or 0)  # the firmware's web page (80 on a device; 0: none)
WEB_HOST = "127.0.0.1"
WIFI = bool(os.getenv("UWB_SIM_WIFI"))

# fake pin numbers: connector n (1-based) uses n*100 + 1..9
CONNECTORS = tuple(
    {"pilot_pwm": n * 100 + 1, "pilot_adc": n * 100 + 2, "pp_adc": n * 100 + 3,
     "relay": n * 100 + 4, "relay_fb": n * 100 + 5, "rcd_trip": n * 100 + 6,
     "rcd_test": n * 100 + 7, "lock": n * 100 + 8, "lock_fb": n * 100 + 9}
    for n in range(1, _N + 1))

# each pin's machine.Pin (and the ADC channels' machine.ADC), made once here as an ESP32 has
# them in ROM: the firmware's Pin(n) returns it and costs no heap (machine.py, _made)
for _c in CONNECTORS:
    for _n in _c.values():
        machine.Pin(_n)
    machine.ADC(_c["pilot_adc"])
    machine.ADC(_c["pp_adc"])

# the plant, one Ev per connector (index 0 = connector 1)
plants = [_ev.Ev(i, CONNECTORS[i], PILOT_CAL, PP_CAL, VENTILATION, PHASES, VOLTAGE_V, MAX_CURRENT_A)
          for i in range(_N)]

_PORT = os.getenv("UWB_SIM_CONTROL")
if _PORT:
    import simctl  # loaded before the firmware, so it does not land in a fragmented heap
# the meters' simulation too, before the firmware: imported in the middle of its boot (as it was
# until 2026-12), its compilation's few KB were the firmware's peak, and its share measured
# there read ~2 KiB low (a collection amid the boot); meter() makes the meters
import simmeter  # noqa: E402
if METER in simmeter.MODBUS:
    import modbus_slave  # noqa: E402,F401
gc.collect()
heap = gc.mem_alloc() - _heap0  # bytes the simulated hardware holds on the firmware's heap
_tasks = []     # the asyncio tasks attach() started (cancel with detach())
control = None  # the simctl.Control once started


meters = None  # the simmeter.Meters, made by the first meter() call


def meter(index):
    """The energy meter of connector index+1 (UWB_SIM_METER, sim/mpy/simmeter.py)."""
    global meters
    if meters is None:  # the firmware's drivers it loads count as the firmware's
        meters = simmeter.Meters(METER, plants, VOLTAGE_V, PHASES)
    return meters.meters[index]


def attach(app):
    """Called once the app is built: start the idle tick and the control API (UWB_SIM_CONTROL)."""
    global control, heap
    import asyncio
    _tasks.append(asyncio.create_task(machine._idle_loop(5)))
    if meters is not None:
        meters.attach(app)
    if _PORT:
        gc.collect()
        before = gc.mem_alloc()
        control = simctl.Control(app, plants, lambda: heap, meters)
        gc.collect()
        heap += gc.mem_alloc() - before
        _tasks.append(asyncio.create_task(control.serve(int(_PORT))))


def detach():
    """Stop what attach() started."""
    global control
    for t in _tasks:
        t.cancel()
    _tasks.clear()
    if control is not None:
        control.close()
        control = None
