"""The simulator control API (sim/mpy/simctl.py), served by a MicroPython process running
tests/mpy/simctl_app.py (a fake app with real Evses and the sim plant), exercised over HTTP."""
import http.client
import json
import queue
import socket
import subprocess
import threading
import time

import pytest

from mpyrun import MICROPYTHON, MPY_DIR, mpy_env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    def __init__(self, tmp_path):
        self.port = free_port()
        env = mpy_env(env={"UWB_SIM_CONTROL": str(self.port), "UWB_SIM_CONNECTORS": "2"})
        self.proc = subprocess.Popen([MICROPYTHON, str(MPY_DIR / "simctl_app.py")], cwd=tmp_path,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines = queue.Queue()
        self.output = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.expect("control API on http://127.0.0.1:%d" % self.port)

    def _pump(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line.rstrip("\n"))

    def expect(self, text, timeout=10):
        """Wait for an output line containing TEXT."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in output:\n%s" % (text, "".join(self.output)))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if text in line:
                return line

    def request(self, method, path, body=None, raw=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            headers = {"Content-Type": "application/json"} if data is not None else {}
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            return r.status, json.loads(r.read())
        finally:
            c.close()

    def get(self):
        status, body = self.request("GET", "/state")
        assert status == 200, body
        return body

    def post(self, path, body):
        status, out = self.request("POST", path, body)
        assert status == 200 and out.get("ok") is True, (status, out)
        return out

    def wait(self, pred, timeout=3):
        """Poll GET /state until PRED(state) holds; returns the state."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.get()
            if pred(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError("condition not met; state: %s" % json.dumps(st, indent=1))
            time.sleep(0.02)

    def close(self):
        self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path)
    try:
        yield s
    finally:
        s.close()


def conn(st, i=1):
    return st["connectors"][i - 1]


def test_state_shape(sim):
    st = sim.get()
    assert st["ocpp"] == {"connected": True, "registration": "Accepted", "queued": 0}
    assert [c["id"] for c in st["connectors"]] == [1, 2]
    c = conn(st)
    for key, typ in (("cp", str), ("pwm_duty", float), ("offered_a", float), ("relay", bool),
                     ("locked", bool), ("status", str), ("meter_wh", int), ("power_w", float)):
        assert isinstance(c[key], typ), (key, c[key])
    assert c["cp"] == "A" and c["pwm_duty"] == 100.0 and c["relay"] is False
    assert c["transaction_id"] is None and c["fault"] is None
    assert st["violations"] == [] and st["relay_open_latency_ms"] == []


def test_charging_session(sim):
    sim.post("/ev", {"plug": True, "max_a": 16, "phases": 1})
    st = sim.wait(lambda s: conn(s)["cp"] == "B" and conn(s)["status"] == "Preparing")
    assert conn(st, 2)["cp"] == "A"          # connector defaults to 1
    assert sim.post("/rfid", {"id_tag": "CARD1"}) == {"ok": True}
    sim.expect("card CARD1")
    st = sim.wait(lambda s: conn(s)["offered_a"] == 32.0)
    c = conn(st)
    assert c["locked"] and abs(c["pwm_duty"] - 53.33) < 0.01 and c["transaction_id"] == 42
    sim.post("/ev", {"charge": True})
    st = sim.wait(lambda s: conn(s)["relay"] and conn(s)["power_w"] > 0)
    c = conn(st)
    assert c["cp"] == "C" and c["status"] == "Charging" and c["power_w"] == 16 * 230
    assert c["ev"]["state"] == "C" and c["ev"]["amps"] == 16
    sim.post("/ev", {"charge": False})
    st = sim.wait(lambda s: not conn(s)["relay"] and s["relay_open_latency_ms"])
    assert len(st["relay_open_latency_ms"]) == 1 and st["relay_open_latency_ms"][0] < 100
    assert conn(st)["relay_open_latency_ms"] == st["relay_open_latency_ms"]
    assert st["violations"] == []


def test_second_connector_and_cable(sim):
    sim.post("/ev", {"connector": 2, "plug": True, "cable_a": 13})
    sim.post("/ev", {"connector": 2, "charge": True, "diode_fault": False, "ventilation": False})
    st = sim.wait(lambda s: conn(s, 2)["cp"] == "B")
    assert conn(st, 1)["cp"] == "A"
    assert conn(st, 2)["ev"]["cable_a"] == 13 and conn(st, 2)["ev"]["charge"] is True


def test_fault_endpoint(sim):
    sim.post("/ev", {"plug": True})
    sim.post("/fault", {"rcd": True})
    st = sim.wait(lambda s: conn(s)["fault"] == "GroundFailure" and conn(s)["status"] == "Faulted")
    assert conn(st)["ev"]["faults"]["rcd"] is True and not conn(st)["relay"]
    sim.post("/fault", {"rcd": False, "weld": False, "lock_jam": False})
    sim.post("/ev", {"plug": False})
    sim.wait(lambda s: conn(s)["fault"] is None and conn(s)["cp"] == "A")


def test_rfid_answers_before_the_card_is_handled(sim):
    t = time.monotonic()
    assert sim.post("/rfid", {"id_tag": "SLOW7"}) == {"ok": True}
    assert time.monotonic() - t < 1.0                 # on_card takes 2 s: not awaited
    assert conn(sim.get())["transaction_id"] is None
    sim.expect("card SLOW7", timeout=5)
    sim.wait(lambda s: conn(s)["transaction_id"] == 42)


def test_rfid_error_goes_to_the_log(sim):
    assert sim.post("/rfid", {"id_tag": "BOOM"}) == {"ok": True}
    sim.expect("simctl: card BOOM failed")
    sim.expect("card reader on fire")
    assert sim.get()["ocpp"]["connected"] is True      # still serving


def test_state_is_consistent_while_steps_run(sim):
    # each answer is taken between two Evse steps: the relay is never seen closed outside C,
    # nor the offer without its duty, while the EV keeps switching between B and C
    sim.post("/ev", {"plug": True})
    sim.post("/rfid", {"id_tag": "CARD1"})
    sim.wait(lambda s: conn(s)["offered_a"] == 32.0)
    for i in range(40):
        if i % 4 == 0:
            sim.post("/ev", {"charge": i % 8 == 0})
        c = conn(sim.get())
        assert not c["relay"] or (c["cp"] == "C" and c["fault"] is None), c
        assert c["offered_a"] == 32.0 and abs(c["pwm_duty"] - 53.33) < 0.01, c
    assert sim.get()["violations"] == []


def test_rcd_self_test_pulses(sim):
    # one self-test at start-up on each connector, one more before a session draws energy
    st = sim.wait(lambda s: conn(s)["ev"]["rcd_tests"] and conn(s, 2)["ev"]["rcd_tests"])
    assert [conn(st, i)["ev"]["rcd_tests"] for i in (1, 2)] == [1, 1]
    sim.post("/ev", {"plug": True, "charge": True})
    sim.post("/rfid", {"id_tag": "CARD1"})
    st = sim.wait(lambda s: conn(s)["relay"])
    assert conn(st)["ev"]["rcd_tests"] == 2 and conn(st, 2)["ev"]["rcd_tests"] == 1
    assert st["violations"] == []


def test_clock_endpoint(sim):
    sim.post("/clock", {"advance_s": 3600})
    sim.expect("clock advanced 3600")
    sim.post("/clock", {"advance_s": 0.5})
    sim.expect("clock advanced 0.5")


@pytest.mark.parametrize("method,path,body,code", [
    ("POST", "/ev", "{not json", 400),
    ("POST", "/ev", "[1, 2]", 400),
    ("POST", "/ev", {"connector": 3, "plug": True}, 400),
    ("POST", "/ev", {"connector": 0}, 400),
    ("POST", "/ev", {"connector": "1"}, 400),
    ("POST", "/ev", {"connector": True}, 400),
    ("POST", "/ev", {"plug": "yes"}, 400),
    ("POST", "/ev", {"plug": 1}, 400),
    ("POST", "/ev", {"max_a": True}, 400),
    ("POST", "/ev", {"max_a": "16"}, 400),
    ("POST", "/ev", {"phases": 2}, 400),
    ("POST", "/ev", {"cable_a": 16}, 400),
    ("POST", "/ev", {"wings": True}, 400),
    ("POST", "/fault", {"rcd": "on"}, 400),
    ("POST", "/fault", {"plug": True}, 400),
    ("POST", "/fault", {"connector": 9, "rcd": True}, 400),
    ("POST", "/rfid", {}, 400),
    ("POST", "/rfid", {"id_tag": 12}, 400),
    ("POST", "/rfid", {"id_tag": ""}, 400),
    ("POST", "/rfid", {"id_tag": "X" * 21}, 400),
    ("POST", "/clock", {"advance_s": "60"}, 400),
    ("POST", "/clock", {}, 400),
    ("POST", "/meter", {"energy_wh": -1}, 400),
    ("POST", "/meter", {"energy_wh": 1.5}, 400),
    ("POST", "/meter", {"fail": "yes"}, 400),
    ("POST", "/meter", {"fail": True}, 400),   # the plant's own meter cannot fail
    ("POST", "/meter", {"volts": 230}, 400),
    ("POST", "/meter", {"connector": 3, "energy_wh": 5}, 400),
    ("GET", "/nope", None, 404),
    ("POST", "/nope", {}, 404),
    ("GET", "/ev", None, 405),
    ("POST", "/state", {}, 405),
])
def test_errors(sim, method, path, body, code):
    raw = body if isinstance(body, str) else None
    status, out = sim.request(method, path, None if raw else body, raw=raw)
    assert status == code and isinstance(out.get("error"), str), (status, out)
    # nothing was applied and the server still answers
    c = conn(sim.get())
    assert c["ev"]["plug"] is False and c["ev"]["faults"]["rcd"] is False


def test_valid_ev_fields_all_at_once(sim):
    sim.post("/ev", {"connector": 1, "plug": True, "charge": False, "max_a": 10.5, "phases": 3,
                     "diode_fault": False, "ventilation": False, "cable_a": 20})
    st = sim.wait(lambda s: conn(s)["cp"] == "B")
    ev = conn(st)["ev"]
    assert ev["max_a"] == 10.5 and ev["cable_a"] == 20 and ev["phases"] == 3


def test_meter_register_can_be_set(sim):
    sim.post("/meter", {"connector": 2, "energy_wh": 1234567})
    st = sim.get()
    assert conn(st, 2)["meter"]["register_wh"] == 1234567 and conn(st, 2)["meter"]["kind"] == "plant"
    assert conn(st, 1)["meter"]["register_wh"] == 0
    sim.post("/meter", {"connector": 2, "energy_wh": 10})   # backwards too: a swapped meter
    assert conn(sim.get(), 2)["meter"]["register_wh"] == 10
