"""The wallbox's own web page (docs/WEB.md) in a real browser (Debian's chromium, tests/browser.py),
served by the firmware in the simulator; its API's protections over plain HTTP; the setup access
point with the mocked `network` module. Screenshots go to tests/artifacts/web-*.png."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from browser import shoot  # (the browser and page fixtures come from conftest.py)
from harness import ROOT, Csms, SimChargePoint, connector, free_port, registered

PASSWORD = "uwallbox-sim"  # sim/launch.py's default on a fresh state folder


@pytest.fixture
def csms():
    c = Csms().start()
    yield c
    c.stop()


@pytest.fixture
def cp(csms, tmp_path):
    cp = SimChargePoint(csms.url, tmp_path, web=free_port(), heapsize=os.environ.get("UWB_WEB_HEAP")).start()
    registered(cp, csms)
    yield cp
    cp.stop()


def url(cp, path="/"):
    return "http://127.0.0.1:%d%s" % (cp.web, path)


def login(page, cp, password=PASSWORD):
    page.goto(url(cp))
    page.fill("#pw", password)
    page.click("#login-btn")


def until(pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out: " + what)
        time.sleep(0.1)


def number(page, sel):
    return float(re.sub(r"[^0-9.\-]", "", page.text_content(sel)) or "nan")


def test_session_from_the_page(page, cp):
    """Log in, see Available, plug, start from the page, power and energy rise, a local limit
    lowers the pilot's offer, stop; a setting survives a restart."""
    login(page, cp, "wrong-password")
    page.wait_for_selector("#login-err:has-text('wrong password')")
    shoot(page, "web-login")
    login(page, cp)
    page.wait_for_selector("#status-1:has-text('Available')")
    cp.api.ev(plug=True)
    page.wait_for_selector("#status-1:has-text('Preparing')")

    page.click("#start-1")  # neither a local idTag nor free charging yet: a clear refusal
    page.wait_for_selector("#ctl-msg:has-text('local idTag')")

    page.click("nav >> text=Settings")
    page.wait_for_selector("#akset:has-text('not set')")
    page.fill("input[name=local_id_tag]", "OWNER001")
    page.click("#save-btn")
    page.wait_for_selector("#set-msg:has-text('Saved')")
    shoot(page, "web-settings")

    page.click("nav >> text=Status")
    cp.api.ev(charge=True, max_a=16)
    page.click("#start-1")
    page.wait_for_selector("#status-1:has-text('Charging')")
    page.wait_for_selector("#tag-1:has-text('****R001')")
    until(lambda: number(page, "#power-1") > 1000, "power on the page")
    e1 = number(page, "#energy-1")
    until(lambda: number(page, "#energy-1") > e1, "energy rising", 20)
    assert number(page, "#offered-1") == 32.0  # the board's rating: no limit yet
    shoot(page, "web-status")

    page.fill("#limit", "10")
    page.click("#limit-btn")
    until(lambda: connector(cp.api.state())["offered_a"] == 10.0, "the pilot to offer 10 A")
    page.wait_for_selector("#offered-1:has-text('10.0 A')")
    assert abs(connector(cp.api.state())["pwm_duty"] - 10 / 0.6) < 0.5  # IEC 61851: duty = A / 0.6

    page.click("#stop-1")
    page.wait_for_selector("#status-1:has-text('Finishing')")
    assert not connector(cp.api.state())["relay"]

    page.click("nav >> text=Logs")
    page.wait_for_selector("#log:has-text('start on connector 1')")
    page.wait_for_selector("#seclog:has-text('StartupOfTheDevice')")
    shoot(page, "web-logs")

    cp.restart()
    until(lambda: cp.api.state()["ocpp"]["registration"] == "Accepted", "registration after restart", 30)
    page.goto(url(cp))  # the session ended with the firmware: log in again
    page.wait_for_selector("#pw")
    login(page, cp)
    page.wait_for_selector("#local-limit:has-text('10 A')")
    page.click("nav >> text=Settings")
    page.wait_for_function("document.querySelector('input[name=local_id_tag]').value == 'OWNER001'")


def _req(cp, method, path, body=None, headers=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    r = urllib.request.Request(url(cp, path), data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def test_nobody_else_gets_in(cp):
    """No session: 401; no CSRF token: 403; secrets never come back; bad input: 4xx, the
    server keeps serving; wrong passwords are rate-limited."""
    assert _req(cp, "GET", "/api/status")[0] == 401
    assert _req(cp, "POST", "/api/stop", {"connector": 1})[0] == 403
    code, body, headers = _req(cp, "POST", "/api/login", {"password": PASSWORD})
    assert code == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    sid = cookie.split(";")[0]
    csrf = json.loads(body)["csrf"]
    auth = {"Cookie": sid, "X-CSRF": csrf}
    assert _req(cp, "POST", "/api/limit", {"amps": 10}, {"Cookie": sid})[0] == 403  # no token
    assert _req(cp, "POST", "/api/limit", {"amps": 10}, {"Cookie": sid, "X-CSRF": "0" * 32})[0] == 403
    # secrets are write-only
    code, body, _ = _req(cp, "POST", "/api/settings", {"security_profile": 1,
                                                       "authorization_key": "SecretKey-0123456789"}, auth)
    assert code == 200 and json.loads(body)["reboot_required"]
    code, body, _ = _req(cp, "GET", "/api/settings", None, {"Cookie": sid})
    assert code == 200 and "SecretKey" not in body and json.loads(body)["authorization_key_set"]
    assert "SecretKey" not in _req(cp, "GET", "/api/logs", None, {"Cookie": sid})[1]
    # bad input: clear 4xx with the deploy rules' messages, nothing stored
    code, body, _ = _req(cp, "POST", "/api/settings", {"url": "http://x", "max_current": 99}, auth)
    assert code == 400 and "not a ws:// or wss:// URL" in body and "max_current: 6 to 80 A" in body
    assert _req(cp, "POST", "/api/limit", {"amps": "ten"}, auth)[0] == 400
    assert _req(cp, "POST", "/api/limit", b"{not json", auth)[0] == 400
    assert _req(cp, "POST", "/api/limit", b"x" * 5000, auth)[0] == 413
    assert _req(cp, "POST", "/api/start", {"connector": 7}, auth)[0] == 400
    assert _req(cp, "GET", "/nothing")[0] == 404
    assert _req(cp, "DELETE", "/api/status")[0] == 405
    assert _req(cp, "GET", "/api/status", None, {"Cookie": sid})[0] == 200  # still serving
    # logout ends the session
    assert _req(cp, "POST", "/api/logout", {}, auth)[0] == 200
    assert _req(cp, "GET", "/api/status", None, {"Cookie": sid})[0] == 401
    # two wrong passwords are free, then a lock-out: even the right one waits
    for _ in range(3):
        assert _req(cp, "POST", "/api/login", {"password": "nope-nope"})[0] == 401
    assert _req(cp, "POST", "/api/login", {"password": PASSWORD})[0] == 429


def _setup_firmware(state, port):
    env = dict(os.environ, MICROPYPATH=f"{ROOT / 'boards' / 'sim'}:{ROOT / 'sim' / 'mpy'}:{ROOT / 'lib'}:.frozen",
               UWB_SIM_WIFI="1", UWB_SIM_WEB=str(port))
    env.pop("UWB_SIM_CONTROL", None)
    from mpyrun import MICROPYTHON
    return subprocess.Popen([MICROPYTHON, str(ROOT / "firmware" / "main.py")], cwd=state, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_line(proc, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError("no %r in the firmware's output:\n%s" % (pattern, "".join(seen)))


def test_setup_access_point(page, tmp_path):
    """No Wi-Fi configuration: the access point and the setup form; a bad save is refused with
    the deploy rules' message, a good one is stored and the board restarts into station mode,
    where the new admin password opens the status page."""
    sys.path.insert(0, str(ROOT / "tools"))
    import webpage
    webpage.write(tmp_path / webpage.DEVICE_NAME)
    port = free_port()
    proc = _setup_firmware(tmp_path, port)
    try:
        line = _wait_line(proc, r"access point uwallbox-sim-")
        assert re.search(r"password [0-9a-f]{10}", line)
        page.goto("http://127.0.0.1:%d/" % port)
        page.wait_for_selector("#set-title:has-text('First setup')")
        page.click("text=Scan Wi-Fi networks")
        page.wait_for_selector("#nets option:has-text('HomeNet')", state="attached")
        page.select_option("#nets", "HomeNet")
        assert page.input_value("input[name=wifi_ssid]") == "HomeNet"
        page.fill("input[name=wifi_password]", "home-secret")
        page.fill("input[name=url]", "http://csms.local/ocpp")
        page.fill("input[name=id]", "CP777")
        page.fill("input[name=admin_password]", "new-admin-pw")
        page.click("#save-btn")
        page.wait_for_selector("#set-msg:has-text('not a ws:// or wss:// URL')")
        assert not (tmp_path / "wifi.json").exists()
        shoot(page, "web-setup")
        page.fill("input[name=wifi_password]", "home-secret")
        page.fill("input[name=admin_password]", "new-admin-pw")
        page.fill("input[name=url]", "ws://127.0.0.1:9/ocpp")
        page.click("#save-btn")
        page.wait_for_selector("#set-msg:has-text('restarts')")
        assert proc.wait(10) == 75  # machine.reset()
    finally:
        proc.kill()
        proc.wait()
    assert json.loads((tmp_path / "wifi.json").read_text()) == {"ssid": "HomeNet", "password": "home-secret"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["CentralSystemUrl"] == "ws://127.0.0.1:9/ocpp" and config["ChargePointId"] == "CP777"
    admin = (tmp_path / "webadmin.json").read_text()
    assert "new-admin-pw" not in admin and len(json.loads(admin)["hash"]) == 64

    proc = _setup_firmware(tmp_path, port)  # station mode: joins HomeNet (mocked), serves the page
    try:
        _wait_line(proc, r"web +page on")
        page.goto("http://127.0.0.1:%d/" % port)
        page.fill("#pw", "new-admin-pw")
        page.click("#login-btn")
        page.wait_for_selector("#status-1:has-text('Available')")
        page.wait_for_selector("#cpid:has-text('CP777')")
    finally:
        proc.kill()
        proc.wait()


def test_heap_a_request_needs():
    """tools/bench/web_mpy.py on the .mpy image (make deploy's): the server and a status poll stay
    within the budget docs/WEB.md states (the figures are in `make bench`)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from bench import web
    r = web.measure()
    m = r["mpy"]
    assert m["status"] < 6000 and m["page"] < 6000 and m["limit"] < 8000, m
    assert m["resident"] < 12000, m
    if "frozen" in r:
        assert r["frozen"]["resident_after"] < 10000, r["frozen"]
