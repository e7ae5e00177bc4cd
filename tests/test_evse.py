"""The IEC 61851 state machine (firmware/uwallbox/hw/evse.py) against the sim plant, no OCPP;
plus the sim `machine` mock's reset() semantics and the meter's persistence across restarts (the
state machine's cases: tests/mpy/evse_cases.py)."""
import pytest

from mpyrun import run_mpy


RESET_IN_TASK = """
import asyncio, machine
async def boom():
    await asyncio.sleep_ms(10)
    try:
        machine.reset()
    except Exception:
        print("swallowed by except Exception")
async def main():
    asyncio.create_task(boom())
    try:
        await asyncio.sleep(2)
    except Exception:
        pass
    print("still running")
asyncio.run(main())
print("after run")
"""

RESET_IN_TIMER = """
import asyncio, machine
def cb(t):
    t.deinit()
    machine.reset()
async def main():
    asyncio.create_task(machine._idle_loop(5))
    machine.Timer(0).init(period=20, mode=machine.Timer.ONE_SHOT, callback=cb)
    await asyncio.sleep(2)
    print("still running")
asyncio.run(main())
print("after run")
"""


@pytest.mark.parametrize("src", [RESET_IN_TASK, RESET_IN_TIMER], ids=["task", "timer_callback"])
def test_machine_reset_exits_75(src, tmp_path):
    r = run_mpy(["-c", src], cwd=tmp_path, timeout=10)
    assert r.returncode == 75, (r.returncode, r.stdout, r.stderr)
    assert "still running" not in r.stdout and "after run" not in r.stdout
    # the next boot sees the cause
    r = run_mpy(["-c", "import machine; print(machine.reset_cause())"], cwd=tmp_path, timeout=10)
    assert r.stdout.strip() == "5", r.stdout
    r = run_mpy(["-c", "import machine; print(machine.reset_cause())"], cwd=tmp_path, timeout=10)
    assert r.stdout.strip() == "1", r.stdout


METER_RUN = """
import time, board
ev = board.plants[0]
m = board.meter(0)
first = m.read()[0]
print("first", first)
m.energy += 3.5        # energy delivered in this run
print("last", m.read()[0])
"""


def test_meter_survives_restarts(tmp_path):
    last = 0
    for _ in range(3):
        r = run_mpy(["-c", METER_RUN], cwd=tmp_path, timeout=10)
        assert r.returncode == 0, r.stderr
        out = dict(line.split() for line in r.stdout.split("\n") if line)
        assert int(out["first"]) >= last
        assert int(out["last"]) > int(out["first"])
        last = int(out["last"])
    assert last >= 9
    assert not list(tmp_path.glob("*.tmp"))
