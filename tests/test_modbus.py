"""lib/modbus.py (Modbus RTU master) and uwallbox/hw/meters.py under MicroPython, against the fake
RS-485 line and slaves of tests/mpy/modbus_slave.py."""
import pytest

from mpyrun import mpy_cases, run_case


@pytest.mark.parametrize("name", mpy_cases("modbus_cases"))
def test_modbus(name, tmp_path):
    run_case("modbus_cases", name, tmp_path)
