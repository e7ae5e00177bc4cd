# MicroPython cases: what the hot paths allocate on the 32-bit build (make mp32). On the ESP32 a
# small int has 31 bits: a bigger one (a Unix time, a product of sensor values) is a heap object.
# The Evse's 10 ms step is checked in evse_cases (test_steady_step_allocates_nothing).
import gc

import fakes
from uwallbox.station.config import Config


def _bytes(fn, n):
    """Bytes allocated per call of FN, over N calls (collector off, so nothing is freed)."""
    fn()
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        for _ in range(n):
            fn()
        return (gc.mem_alloc() - before) / n
    finally:
        gc.enable()


def test_config_lookup_allocates_nothing():
    c = Config()
    keys = ("MeterValueSampleInterval", "ClockAlignedDataInterval", "MinimumStatusDuration",
            "HeartbeatInterval", "WebSocketPingInterval", "MeterValuesSampledData")

    def look():
        for k in keys:
            c[k]
    assert _bytes(look, 50) == 0


def test_idle_second_allocates_little():
    # what the firmware does each second with no transaction: the metering task's tick (reads
    # the meter of each connector) and each connector's status update
    app = fakes.app()
    for c in app.connectors:
        c.update()

    def second():
        app.metering.tick()
        for c in app.connectors:
            c.update()
    per = _bytes(second, 50)
    # 224 B on the 32-bit build with one connector: the simulated meter's reading (a tuple of
    # tuples of floats, each float a heap object on the ESP32 too) is nearly all of it
    assert per <= 256, per
