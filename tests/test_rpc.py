"""OCPP-J framing, routing, schema validation and configuration, under MicroPython."""
import pytest

from mpyrun import mpy_cases, run_case


@pytest.mark.parametrize("name", mpy_cases("rpc_cases"))
def test_rpc(name, tmp_path):
    run_case("rpc_cases", name, tmp_path)
