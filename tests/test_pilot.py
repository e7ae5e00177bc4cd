"""Control pilot driver (firmware/uwallbox/hw/pilot.py) under MicroPython, with the sim plant."""
import pytest

from mpyrun import mpy_cases, run_case


@pytest.mark.parametrize("name", mpy_cases("pilot_cases"))
def test_pilot(name, tmp_path):
    run_case("pilot_cases", name, tmp_path)
