"""OCPP-J framing, routing, schema validation and configuration, under MicroPython."""
import pytest

from mpyrun import mpy_cases, run_case


@pytest.mark.parametrize("name", mpy_cases("rpc_cases"))
def test_rpc(name, tmp_path):
    run_case("rpc_cases", name, tmp_path)


def test_generated_schemas_are_current():
    """firmware/uwallbox/schemas match the ocpp package (tools/genschemas.py --check)."""
    import subprocess
    import sys

    from mpyrun import ROOT
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "genschemas.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
