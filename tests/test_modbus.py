"""tools/bench_modbus.py; lib/modbus.py (Modbus RTU master) and uwallbox/hw/meters.py themselves are
tested under MicroPython by tests/mpy/modbus_cases.py, against the fake RS-485 line and slaves of
sim/mpy/modbus_slave.py."""


def test_bench_prints_its_figures():
    """tools/bench_modbus.py runs and agrees with the allocation test: a poll allocates nothing."""
    import sys

    from mpyrun import ROOT
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from bench_modbus import run
    finally:
        sys.path.pop(0)
    f = run()
    assert f["poll_bytes"] == 0, f
    assert f["line_ms_9600"] <= f["poll_ms_9600"] < 3 * f["line_ms_9600"], f
    assert 0 < f["request_cpu_us"] < 1000 and 0 < f["crc_us_per_byte"] < 10, f
    assert f["read_bytes"] > 0 and f["read_us"] > 0, f
