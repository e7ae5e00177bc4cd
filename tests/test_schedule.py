"""The composite schedule (firmware/uwallbox/schedule.py): hand-computed cases under MicroPython."""
import pytest

from mpyrun import mpy_cases, run_case


@pytest.mark.parametrize("name", mpy_cases("schedule_cases"))
def test_schedule(name, tmp_path):
    run_case("schedule_cases", name, tmp_path)
