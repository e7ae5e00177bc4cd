"""Launching the firmware: in the simulator against a CSMS of its own (tests/harness.py,
tools/csms.py), from the sources or from the device image (tools/build.py), or a script under
micropython with firmware/ on its path (tests/mpyrun.py)."""
import contextlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from harness import Csms, SimChargePoint, registered  # noqa: E402,F401
from mpyrun import run_mpy  # noqa: E402,F401

from build import build  # noqa: E402  (tools/build.py)

from .measure import child  # noqa: E402

LaunchFailed = pytest.fail.Exception  # what SimChargePoint.start() raises when the firmware does not come up


@contextlib.contextmanager
def firmware(heapsize=None):
    """(cp, csms): sim/launch.py started (its control API answers) against a fresh quiet CSMS;
    both stopped on exit. The charge point is CP001, its flash a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="uwb-bench-") as tmp:
        csms = Csms(log=None).start()
        cp = SimChargePoint(csms.url, tmp, heapsize=heapsize)
        try:
            yield cp.start(), csms
        finally:
            cp.stop()
            csms.stop()


@contextlib.contextmanager
def device_image():
    """The folder of a development build (.mpy bytecode, no watchdog), removed on exit."""
    with tempfile.TemporaryDirectory(prefix="uwb-bench-") as tmp:
        out = Path(tmp) / "build"
        build(out, production=False)
        yield out


@contextlib.contextmanager
def env(name, value):
    """Inside, environment variable NAME is VALUE (None or "": unset); restored on exit."""
    old = os.environ.pop(name, None)
    if value:
        os.environ[name] = str(value)
    try:
        yield
    finally:
        os.environ.pop(name, None)
        if old is not None:
            os.environ[name] = old


def running(image):
    """Inside, sim/launch.py runs IMAGE (a device_image() folder; None: the sources): UWB_SIM_BUILD."""
    return env("UWB_SIM_BUILD", image)


def frozen(on):
    """Inside, sim/launch.py runs the firmware frozen into the 32-bit binary when ON."""
    return env("UWB_SIM_FROZEN", "1" if on else None)


def firmware_pid(cp):
    """The pid of the micropython process that sim/launch.py runs for CP."""
    return child(cp.proc.pid, "micropython")
