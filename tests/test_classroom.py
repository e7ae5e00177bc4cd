"""Classroom mode (docs/CLASSROOM.md): the charger panel and the central-system panel in a real
browser (headless Debian chromium through Playwright, tests/browser.py), the three lessons played
through the panels' HTTP API (what their buttons send), and a small fleet.

Each test starts `sim/launch.py` (bundled CSMS, panels on) as a subprocess; screenshots go to
tests/artifacts/ (charger-panel.png, csms-panel.png, ...).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from browser import ARTIFACTS, shoot
from harness import ROOT, SIM


class Classroom:
    """sim/launch.py with the bundled CSMS and the panels; `fleet` chargers CP001.. (1: CP001)."""

    def __init__(self, tmp_path, fleet=None, connectors=1):
        cmd = [sys.executable, str(SIM), "--state", str(tmp_path / "state")]
        if fleet:
            cmd += ["--fleet", str(fleet)]
        if connectors > 1:
            cmd += ["--connectors", str(connectors)]
        self.log_path = tmp_path / "classroom.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ, UWB_NO_BROWSER="1"))
        self.ids = [f"CP{i:03d}" for i in range(1, (fleet or 1) + 1)]
        self.port = self.csms_port = None
        deadline = time.monotonic() + 30
        while self.csms_port is None:   # the launcher prints the panels' addresses
            text = self.log_path.read_text()
            m = re.search(r"charger panel(?: CP001)?: http://127\.0\.0\.1:(\d+)/cp/", text)
            n = re.search(r"central-system panel: http://127\.0\.0\.1:(\d+)/", text)
            if m and n:
                self.port, self.csms_port = int(m.group(1)), int(n.group(1))
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no panel addresses from sim/launch.py:\n{text[-3000:]}")
            else:
                time.sleep(0.05)

    def panel(self, cp="CP001"):
        return f"http://127.0.0.1:{self.port}/cp/{cp}/"

    @property
    def csms_panel(self):
        return f"http://127.0.0.1:{self.csms_port}/"

    def _json(self, url, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{url}: HTTP {e.code} {e.read().decode()}") from None

    def state(self, cp="CP001"):
        return self._json(self.panel(cp) + "api/state")

    def do(self, what, cp="CP001", **body):
        """What a button of the charger panel sends."""
        return self._json(self.panel(cp) + "api/" + what, body)

    def csms_state(self):
        return self._json(self.csms_panel + "api/state")

    def call(self, action, payload, cp="CP001"):
        """What a button of the central-system panel sends; the CALLRESULT."""
        return self._json(self.csms_panel + "api/call", {"cp": cp, "action": action, "payload": payload})["result"]

    def until(self, predicate, timeout=30, what="", cp="CP001"):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"sim/launch.py exited ({self.proc.returncode}):\n{self.log_path.read_text()[-3000:]}")
            try:
                last = self.state(cp)
                if last["state"] and predicate(last["state"]["connectors"][0], last):
                    return last
            except (OSError, AssertionError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last: {json.dumps(last)[:1500]}")
            time.sleep(0.1)

    def registered(self, cp="CP001", timeout=60):
        return self.until(lambda c, d: d["state"]["ocpp"]["registration"] == "Accepted" and d["link"]["up"]
                          and d["state"]["ocpp"]["connected"], timeout, f"{cp} Accepted", cp)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def shoot_small(page, name, zoom=0.62):
    """tests/artifacts/NAME-small.png: the page zoomed out, the picture docs/img/NAME.png is taken from."""
    shoot(page, name)
    page.evaluate(f"document.body.style.zoom = '{zoom}'")
    page.set_viewport_size({"width": int(1100 * zoom), "height": int(800 * zoom)})
    path = ARTIFACTS / (name + "-small.png")
    page.screenshot(path=str(path))
    return path


@pytest.fixture
def classroom(tmp_path):
    c = Classroom(tmp_path)
    try:
        c.registered()
        yield c
    finally:
        c.stop()


def status(s):
    return lambda c, d: c["status"] == s


# -- the charger panel in the browser --------------------------------------------------------------

def test_charger_panel_trace_follows_the_ev_from_b_to_c(classroom, page):
    page.goto(classroom.panel())
    page.wait_for_selector("#trace[data-state=A][data-high='12']", state="attached")
    page.click("#plug")
    page.wait_for_selector("#trace[data-state=B][data-high='9']", state="attached")
    steady_b = page.get_attribute("#trace", "d")
    page.click("[data-card='04A1B2C3']")
    page.fill("#max_a", "16")
    page.dispatch_event("#max_a", "change")
    page.check("#charge")
    page.wait_for_selector("#trace[data-state=C][data-high='6']", timeout=20000, state="attached")
    page.wait_for_selector("#n-C.now")
    trace_c = page.get_attribute("#trace", "d")
    duty = float(page.get_attribute("#trace", "data-duty"))
    assert 0 < duty < 100 and trace_c != steady_b     # a square wave now, at 6 V high
    assert steady_b.count(" V") == 0                  # B before the card: steady 9 V, no PWM
    page.wait_for_selector("#hw-relay[data-relay=closed]")
    page.wait_for_selector("#e-BC.last", state="attached")               # the transition just taken is lit
    page.wait_for_function("document.getElementById('readout').textContent.startsWith('16.0 / 16.0 / 16.0')")
    time.sleep(1.5)                                    # a few points in the plots for the picture
    shoot_small(page, "charger-panel")


def test_card_swipe_draws_authorize_and_start_transaction(classroom, page):
    page.goto(classroom.panel())
    page.click("#plug")
    page.wait_for_selector("#trace[data-state=B]", state="attached")
    page.click("[data-card='04B0B0B0']")
    page.wait_for_selector(".msg[data-dir=in][data-kind=call][data-action=Authorize]")
    page.wait_for_selector(".msg[data-dir=out][data-kind=result][data-action=Authorize]")
    page.wait_for_selector(".msg[data-dir=in][data-kind=call][data-action=StartTransaction]", timeout=20000)
    page.wait_for_selector(".msg[data-dir=out][data-kind=result][data-action=StartTransaction]")
    row = page.locator(".msg[data-dir=in][data-action=StartTransaction]").first
    row.locator("summary").click()                     # expands to the JSON
    assert json.loads(row.locator("pre").inner_text())["idTag"] == "04B0B0B0"
    shoot(page, "charger-panel-sequence")


def test_a_fault_turns_the_state_red_and_opens_the_relay(classroom, page):
    page.goto(classroom.panel())
    page.click("#plug")
    page.click("[data-card='04A1B2C3']")
    page.check("#charge")
    page.wait_for_selector("#hw-relay[data-relay=closed]", timeout=20000)
    page.check("#rcd")
    page.wait_for_selector("#states .node.fault")
    page.wait_for_selector("#hw-relay[data-relay=open]")
    assert page.get_attribute("#hw-fault", "data-fault")  # the fault is named
    assert page.locator("#hw-rcd").inner_text() == "RCD tripped"
    fill = page.eval_on_selector("#states .node.fault circle", "c => getComputedStyle(c).fill")
    assert fill == "rgb(217, 48, 37)"                     # red
    shoot(page, "charger-panel-fault")


def test_a_session_from_the_panels_alone_csms_remote_stop_ends_it(classroom, page):
    """RemoteStart and RemoteStop from the CSMS panel, the car from the charger panel: no other input."""
    csms = page.context.new_page()
    csms.goto(classroom.csms_panel)
    csms.wait_for_selector("#stations tr[data-cp=CP001] .st[data-connector='1']")
    page.goto(classroom.panel())
    page.click("#plug")
    page.check("#charge")
    csms.select_option("#cp", "CP001")
    csms.select_option("#tag", "7EAC4E12")
    csms.click("#remote-start")
    csms.wait_for_selector("#result:has-text('RemoteStartTransaction: {')")
    assert '"Accepted"' in csms.inner_text("#result")
    page.wait_for_selector("#hw-relay[data-relay=closed]", timeout=20000)
    page.wait_for_selector(".msg[data-dir=out][data-kind=call][data-action=RemoteStartTransaction]")
    csms.wait_for_selector("#transactions tr[data-active=true]")
    csms.wait_for_selector("#stations .st[data-connector='1'].Charging")
    time.sleep(1)
    shoot_small(csms, "csms-panel")
    csms.click("#remote-stop")
    csms.wait_for_selector("#result:has-text('RemoteStopTransaction: {')")
    assert '"Accepted"' in csms.inner_text("#result")
    csms.wait_for_selector("#transactions tr[data-active=false]", timeout=20000)
    assert csms.locator("#transactions tr[data-active=true]").count() == 0
    page.wait_for_selector("#hw-relay[data-relay=open]")
    page.wait_for_selector(".msg[data-dir=in][data-kind=call][data-action=StopTransaction]")
    page.click("#unplug")
    csms.wait_for_selector("#stations .st[data-connector='1'].Available")
    tx = classroom.csms_state()["transactions"][0]
    assert tx["reason"] == "Remote" and tx["id_tag"] == "7EAC4E12" and tx["energy_wh"] is not None


def test_csms_panel_sends_the_cards_and_reads_the_configuration(classroom, page):
    page.goto(classroom.csms_panel)
    page.wait_for_selector("#cp option[value=CP001]", state="attached")
    page.click("#local-list")
    page.wait_for_selector("#result:has-text('SendLocalList: {')")
    assert '"Accepted"' in page.inner_text("#result")
    page.click("#get-config")
    page.wait_for_selector("#result:has-text('MeterValueSampleInterval')")
    assert classroom.call("GetLocalListVersion", {})["listVersion"] >= 1


# -- the lessons of docs/CLASSROOM.md, played through the panels' API --------------------------------

def test_lesson1_a_normal_session(classroom):
    s = classroom.do("ev", plug=True)
    c = classroom.until(lambda c, d: c["cp"] == "B" and c["status"] == "Preparing", 20, "B Preparing")["state"]["connectors"][0]
    assert c["pwm_duty"] == 100 and not c["relay"]       # B1: no PWM before the card
    classroom.do("rfid", id_tag="04A1B2C3")
    c = classroom.until(lambda c, d: 0 < c["pwm_duty"] < 100, 20, "PWM on (B2)")["state"]["connectors"][0]
    assert c["cp"] == "B" and c["offered_a"] > 6          # B2: the offer, the EV not asking yet
    classroom.do("ev", charge=True, max_a=16)
    c = classroom.until(lambda c, d: c["cp"] == "C" and c["relay"] and c["power_w"] > 0, 20, "C charging")["state"]["connectors"][0]
    assert c["status"] == "Charging" and c["ev"]["amps"] == 16
    classroom.do("ev", charge=False)
    classroom.until(lambda c, d: c["cp"] == "B" and not c["relay"] and c["status"] == "SuspendedEV", 20, "SuspendedEV")
    classroom.do("rfid", id_tag="04A1B2C3")
    classroom.until(status("Finishing"), 20, "Finishing")
    classroom.do("ev", plug=False)
    d = classroom.until(lambda c, d: c["cp"] == "A" and c["status"] == "Available", 20, "A Available")
    actions = [m["action"] for m in classroom.state()["messages"] if m["dir"] == "in" and m["kind"] == "call"]
    for a in ("Authorize", "StartTransaction", "StopTransaction"):
        assert a in actions
    assert d["state"]["connectors"][0]["transaction_id"] is None


def test_lesson2_offline_charging_and_the_journal_catching_up(classroom):
    classroom.call("SendLocalList", {"listVersion": 1, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "04A1B2C3", "idTagInfo": {"status": "Accepted"}}]})
    classroom.do("outage", seconds=600)
    classroom.until(lambda c, d: not d["state"]["ocpp"]["connected"] and not d["link"]["up"], 20, "offline")
    mark = classroom.csms_state()["next"]
    classroom.do("ev", plug=True, charge=True, max_a=16)
    classroom.do("rfid", id_tag="04A1B2C3")
    classroom.until(lambda c, d: c["status"] == "Charging" and c["relay"], 20, "charging offline")
    classroom.do("clock", advance_s=60)
    time.sleep(1)
    classroom.do("rfid", id_tag="04A1B2C3")
    d = classroom.until(lambda c, d: c["status"] == "Finishing", 20, "Finishing offline")
    assert d["state"]["ocpp"]["queued"] >= 2                  # StartTransaction and StopTransaction wait
    assert not [m for m in classroom.csms_state()["messages"][mark:] if m["dir"] == "in"]
    classroom.do("outage", seconds=0)                        # the network is back
    d = classroom.until(lambda c, d: d["state"]["ocpp"]["connected"] and d["state"]["ocpp"]["queued"] == 0,
                        90, "the journal delivered")
    calls = [m["action"] for m in classroom.csms_state()["messages"] if m["i"] >= mark and m["dir"] == "in"
             and m["kind"] == "call"]
    assert calls.index("StartTransaction") < calls.index("StopTransaction")
    tx = classroom.csms_state()["transactions"][0]
    assert tx["id_tag"] == "04A1B2C3" and not tx["active"]


def test_lesson3_solar_surplus_profile(classroom):
    start = time.time()
    steps = [6, 10, 13, 16, 16, 13, 10, 6]                  # the panel's "solar surplus" preset
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start - 5))
    profile = {"chargingProfileId": 100, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Absolute", "chargingSchedule": {
                   "startSchedule": stamp, "duration": 480, "chargingRateUnit": "A",
                   "chargingSchedulePeriod": [{"startPeriod": i * 60, "limit": a} for i, a in enumerate(steps)]}}
    assert classroom.call("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})["status"] == "Accepted"
    classroom.do("ev", plug=True, charge=True, max_a=32)
    classroom.do("rfid", id_tag="04A1B2C3")
    c = classroom.until(lambda c, d: c["status"] == "Charging" and c["relay"], 20, "charging")["state"]["connectors"][0]
    assert c["offered_a"] == 6 and c["ev"]["amps"] == 6                       # the morning: 6 A
    classroom.do("clock", advance_s=180)                                     # three steps later: 16 A
    classroom.until(lambda c, d: c["offered_a"] == 16 and c["amps"][0] == 16, 20, "16 A at the peak")
    classroom.do("clock", advance_s=120)                                     # the sun goes down: 13 A
    classroom.until(lambda c, d: c["offered_a"] == 13, 20, "13 A")
    sched = classroom.call("GetCompositeSchedule", {"connectorId": 1, "duration": 600, "chargingRateUnit": "A"})
    assert sched["status"] == "Accepted"


# -- power cut, the fleet --------------------------------------------------------------------------

def test_power_cut_restarts_on_the_same_flash(classroom):
    classroom.do("ev", plug=True, charge=True, max_a=16)
    classroom.do("rfid", id_tag="04A1B2C3")
    classroom.until(status("Charging"), 20, "Charging")
    classroom.do("power-cut")
    d = classroom.registered()
    assert d["power"]["cuts"] == 1
    stop = [m for m in classroom.csms_state()["messages"] if m["action"] == "StopTransaction" and m["dir"] == "in"
            and m["kind"] == "call"]
    deadline = time.monotonic() + 30
    while not stop and time.monotonic() < deadline:
        time.sleep(0.2)
        stop = [m for m in classroom.csms_state()["messages"] if m["action"] == "StopTransaction"
                and m["dir"] == "in" and m["kind"] == "call"]
    assert stop and stop[0]["payload"]["reason"] == "PowerLoss"


def test_fleet_of_three(tmp_path):
    c = Classroom(tmp_path, fleet=3)
    try:
        for cp in c.ids:
            c.registered(cp)
        stations = {s["id"]: s for s in c.csms_state()["stations"]}
        assert sorted(stations) == c.ids and all(s["connected"] for s in stations.values())
        c.do("ev", cp="CP002", plug=True)                    # each student drives their own charger
        c.until(lambda x, d: x["status"] == "Preparing", 20, "CP002 Preparing", cp="CP002")
        assert c.state("CP001")["state"]["connectors"][0]["status"] == "Available"
        assert (tmp_path / "state" / "CP003").is_dir()       # a flash folder each
    finally:
        c.stop()


def test_make_sim_demo_prints_the_panels_and_ends_on_its_own(tmp_path):
    """`make sim` without a terminal: the demo session, the panels' URLs printed, exit 0."""
    r = subprocess.run([sys.executable, str(SIM), "--demo"], cwd=ROOT, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=150, env=dict(os.environ, UWB_NO_BROWSER="1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "sim | charger panel: http://127.0.0.1:" in r.stdout
    assert "sim | central-system panel: http://127.0.0.1:" in r.stdout
    assert "demo done: transaction 1" in r.stdout


def test_two_connectors_each_driven_from_the_panel(tmp_path, page):
    c = Classroom(tmp_path, connectors=2)
    try:
        c.registered()
        page.goto(c.panel())
        page.wait_for_selector("#conn-box:not([hidden])")
        page.select_option("#conn", "2")
        page.click("#plug")
        page.wait_for_selector("#trace[data-state=B]", state="attached")
        d = c.state()["state"]["connectors"]
        assert d[1]["ev"]["plug"] and not d[0]["ev"]["plug"]   # connector 2 was plugged, not 1
    finally:
        c.stop()
