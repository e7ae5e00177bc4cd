"""End-to-end harness: the simulated charge point (sim/launch.py) as a subprocess, against a test CSMS.

    cp = SimChargePoint(csms.url, tmp_path, id="CP001").start()   # waits for the control API
    cp.api.ev(plug=True)                                          # sim/simapi.SimApi
    cp.kill(); cp.restart()                                       # power cut, then power on
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "sim")]
from csms import CallErrorResponse, Csms  # noqa: E402,F401
from simapi import SimApi, connector  # noqa: E402,F401

SIM = ROOT / "sim" / "launch.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimChargePoint:
    """`sim/launch.py --csms URL --state DIR --control PORT` in its own process group; its output
    (launcher + firmware) goes to `log_path`, appended across restarts."""

    def __init__(self, csms_url, workdir, id="CP001", connectors=1, heapsize=None, state_dir=None,
                 settings=None, web=None, meter=None, meter_start=None):
        self.web = web  # the web page's port (docs/WEB.md); None: no web page
        self.id, self.url, self.connectors, self.heapsize = id, csms_url, connectors, heapsize
        self.meter, self.meter_start = meter, meter_start
        self.settings = None
        if settings:
            self.settings = Path(workdir) / f"settings-{id}.json"
            self.settings.write_text(json.dumps(settings))
        self.state_dir = Path(state_dir) if state_dir else Path(workdir) / f"state-{id}"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = Path(workdir) / f"sim-{id}.log"
        self.api = SimApi(free_port())
        self.proc = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30):
        """Launch and wait until the control API answers (fails the test with the log if not)."""
        from mpyrun import MICROPYTHON
        cmd = [sys.executable, str(SIM), "--csms", self.url, "--state", str(self.state_dir),
               "--control", str(self.api.port), "--id", self.id, "--connectors", str(self.connectors)]
        if os.environ.get("UWB_SIM_FROZEN") == "1":  # the firmware frozen into the 32-bit binary
            cmd += ["--frozen"]
        elif MICROPYTHON:  # else sim/launch.py says why there is none
            cmd += ["--micropython", MICROPYTHON]
        if self.heapsize:
            cmd += ["--heapsize", str(self.heapsize)]
        if self.settings:
            cmd += ["--settings", str(self.settings)]
        if self.meter:
            cmd += ["--meter", self.meter]
        if self.meter_start is not None:
            cmd += ["--meter-start", str(self.meter_start)]
        cmd += ["--web", str(self.web or 0)]
        with open(self.log_path, "a") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} {' '.join(cmd[1:])}\n")
            log.flush()
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                self._fail(f"sim/launch.py ({self.id}) exited with code {self.proc.returncode} "
                           "before its control API answered")
            try:
                self.api.state()
                return self
            except (OSError, ValueError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                self._fail(f"the control API of {self.id} (port {self.api.port}) did not answer "
                           f"within {timeout} s")
            time.sleep(0.05)

    def _fail(self, why):
        self.kill()
        pytest.fail(f"{why}; its log ({self.log_path}) is in the report below", pytrace=False)

    def log(self):
        """Everything the launcher and the firmware printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self):
        """Power cut: SIGKILL the launcher and the firmware together (one process group)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout=10):
        """Clean stop (SIGTERM to the launcher), then SIGKILL whatever is left."""
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def restart(self, timeout=30):
        """Relaunch on the same state folder (after kill() or stop(); stops it first if running).
        The control API moves to a fresh port; `api` follows it."""
        self.stop()
        self.api.port = free_port()
        return self.start(timeout)


# -- helpers shared by the end-to-end tests ------------------------------------------------------

EAIR = "Energy.Active.Import.Register"


def iec_duty(amps):
    """IEC 61851-1 duty cycle (%) for an offered current."""
    return amps / 0.6 if amps <= 51 else amps / 2.5 + 64


def status(connector_id, *statuses, error=None):
    """wait_for predicate: a StatusNotification of `connector_id` with one of `statuses` (and,
    when given, errorCode `error`)."""
    return lambda p: (p["connectorId"] == connector_id and p["status"] in statuses
                      and (error is None or p["errorCode"] == error))


def energy_wh(payload):
    """The last Energy.Active.Import.Register reading (Wh) in a MeterValues payload, or None."""
    value = None
    for meter_value in payload["meterValue"]:
        for sample in meter_value["sampledValue"]:
            if sample.get("measurand", EAIR) == EAIR:
                value = float(sample["value"]) * (1000 if sample.get("unit") == "kWh" else 1)
    return value


def check_pilot(c):
    """Invariants of one connector in GET /state."""
    assert not c["relay"] or c["cp"] == "C", f"relay closed outside state C: {c}"
    if c["offered_a"]:
        assert c["pwm_duty"] == pytest.approx(iec_duty(c["offered_a"]), abs=0.1), c


def registered(cp, csms, timeout=30):
    csms.wait_for("BootNotification", cp_id=cp.id, timeout=timeout)
    return cp.api.wait(lambda s: s["ocpp"]["registration"] == "Accepted" and s["ocpp"]["connected"], timeout)


def offline(cp, timeout=15):
    """Wait until CP has lost its CSMS link; its GET /state then."""
    return cp.api.wait(lambda s: not s["ocpp"]["connected"], timeout)


def online(csms, cp, connectors=1):
    """Registered, and every connector has reported Available."""
    cp.api.wait(lambda s: s["ocpp"]["registration"] == "Accepted" and s["ocpp"]["connected"], 30)
    for cid in range(1, connectors + 1):
        csms.wait_for("StatusNotification", status(cid, "Available"), cp_id=cp.id)


def configure(csms, cp, key, value):
    answer = csms.call(cp.id, ("ChangeConfiguration", {"key": key, "value": value}))
    assert answer == {"status": "Accepted"}, f"ChangeConfiguration {key}={value}: {answer}"


def start_session(cp, csms, tag="TAG0001", conn=1, max_a=16):
    """Plug in on connector CONN, present TAG, let the EV charge; returns the transactionId."""
    mark = csms.mark()
    cp.api.ev(connector=conn, plug=True, charge=True, max_a=max_a)
    cp.api.rfid(tag)
    csms.wait_for("StartTransaction", lambda p: p["connectorId"] == conn and p["idTag"] == tag,
                  cp_id=cp.id, since=mark)
    s = cp.api.wait(lambda s: connector(s, conn)["status"] == "Charging"
                    and connector(s, conn)["transaction_id"] is not None)
    return connector(s, conn)["transaction_id"]
