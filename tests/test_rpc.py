"""The compact schemas the firmware validates with (the OCPP-J framing, routing and validation
under MicroPython: tests/mpy/rpc_cases.py)."""


def test_generated_schemas_are_current():
    """firmware/uwallbox/ocpp/schemas match the ocpp package (tools/genschemas.py --check)."""
    import subprocess
    import sys

    from mpyrun import ROOT
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "genschemas.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
