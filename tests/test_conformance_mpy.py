"""OCPP 1.6 rules under MicroPython (tests/mpy/conformance_cases.py)."""
import pytest

from mpyrun import mpy_cases, run_case


@pytest.mark.parametrize("name", mpy_cases("conformance_cases"))
def test_conformance(name, tmp_path):
    run_case("conformance_cases", name, tmp_path)
