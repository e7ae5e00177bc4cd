# MicroPython unit tests of the boot sequence: Wi-Fi and NTP (uwallbox.system.netup, with the mocks
# sim/mpy/network.py and ntptime.py) and the crash-loop guard (uwallbox.system.crashguard) on the sim board.
import json
import os

import board
import machine
import network
import ntptime
from uwallbox.system import crashguard, netup


class FakeTime:
    """Stands in for `time` in netup: records sleeps instead of sleeping."""

    def __init__(self):
        self.sleeps = []

    def sleep_ms(self, ms):
        self.sleeps.append(ms)


def _fakes():
    """Fake time and a log recorder in netup; returns (time, log lines)."""
    t, lines = FakeTime(), []
    netup.time = t
    netup.log = lambda tag, text="": lines.append(tag + " " + text)
    return t, lines


def _pauses(t):
    """The back-off pauses among the recorded sleeps (the 100 ms polls left out)."""
    return [ms for ms in t.sleeps if ms != 100]


def _calls(name):
    return [args for n, args in network.WLAN.calls if n == name]


def _wlan():
    w = network.WLAN(network.STA_IF)
    w.active(True)
    return w


def test_wifi_connects_after_failures_with_backoff():
    t, lines = _fakes()
    network.WLAN.fail, network.WLAN.rssi = 2, -67
    assert netup.connect(_wlan(), "Home", "secret99") == -67
    assert _calls("connect") == [("Home", "secret99")] * 3
    assert _pauses(t) == [1000, 2000], t.sleeps
    assert len(_calls("disconnect")) == 2
    assert any("signal -67 dBm" in line for line in lines), lines
    assert not any("secret99" in line for line in lines), lines


def test_wifi_weak_signal_is_reported():
    _, lines = _fakes()
    network.WLAN.rssi = -85
    assert netup.connect(_wlan(), "Home", "secret99") == -85
    assert any("-85 dBm (weak)" in line for line in lines), lines


def test_wifi_gives_up_and_starts_offline():
    t, lines = _fakes()
    network.WLAN.fail = 99
    assert netup.connect(_wlan(), "Home", "secret99") is None
    assert _pauses(t) == [1000, 2000, 4000, 8000], t.sleeps
    # every attempt waited its full 10 s; a last connect() leaves the interface trying
    assert t.sleeps.count(100) == 5 * 100
    assert network.WLAN.calls[-1] == ("connect", ("Home", "secret99"))
    assert "starting offline" in lines[-1], lines


def test_credentials_from_settings_then_wifi_json():
    with open("settings.json", "w") as f:
        json.dump({"url": "ws://x", "id": "CP1", "wifi": {"ssid": "Home", "password": "pw123456"}}, f)
    assert netup.credentials() == {"ssid": "Home", "password": "pw123456"}
    os.remove("settings.json")  # as App._provision does once merged
    assert netup.credentials() == {"ssid": "Home", "password": "pw123456"}
    with open("settings.json", "w") as f:
        json.dump({"wifi": {"ssid": "New", "password": "pw654321"}}, f)
    assert netup.credentials()["ssid"] == "New"
    os.remove("settings.json")
    with open("wifi.json") as f:
        assert json.load(f)["ssid"] == "New"


def test_up_joins_and_sets_the_clock():
    _, lines = _fakes()
    with open("wifi.json", "w") as f:
        json.dump({"ssid": "Home", "password": "pw123456"}, f)
    assert netup.up() is True
    assert network.WLAN._active and _calls("connect") == [("Home", "pw123456")]
    assert ntptime.calls == 1
    assert any(line.startswith("clock set by NTP") for line in lines), lines


def test_up_survives_ntp_failure():
    _, lines = _fakes()
    ntptime.fail = True
    with open("wifi.json", "w") as f:
        json.dump({"ssid": "Home", "password": "pw123456"}, f)
    assert netup.up() is True
    assert ntptime.calls == 1
    assert any("NTP failed" in line for line in lines), lines


def test_up_without_credentials_stays_offline():
    _, lines = _fakes()
    assert netup.up() is False
    assert network.WLAN.calls == [] and ntptime.calls == 0
    assert "no credentials" in lines[-1], lines


def _pins():
    c = board.CONNECTORS[0]
    return machine._pins_out.get(c["relay"]), machine._pins_out.get(c["pilot_pwm"])


def _crash(why):
    try:
        raise ValueError(why)
    except ValueError as e:
        try:
            crashguard.crashed(board, e)
        except SystemExit as stop:  # the sim's machine.reset()
            assert stop.args[0] == 75
            machine._reset_pending = False
            return
    raise AssertionError("crashed() did not reset")


def test_boot_safe_state():
    crashguard.safe(board, 1)
    assert _pins() == (0, 1)  # contactor open, pilot steady +12 V


def test_crash_restarts_then_loop_trips_safe():
    machine.Pin(board.CONNECTORS[0]["relay"], machine.Pin.OUT, value=1)
    _crash("first")
    assert _pins()[0] == 0, "contactor left closed by a crash"
    assert crashguard.may_start(board) is True
    _crash("second")
    assert crashguard.may_start(board) is True
    _crash("third")
    machine.Pin(board.CONNECTORS[0]["relay"], machine.Pin.OUT, value=1)
    assert crashguard.may_start(board) is False
    assert _pins() == (0, 0)  # contactor open, pilot state F (unavailable)
    with open("crash.log") as f:
        text = f.read()
    for n, why in ((1, "first"), (2, "second"), (3, "third")):
        assert "crash %d: ValueError: %s" % (n, why) in text, text
    assert "Traceback" in text and "crash loop" in text, text
    assert crashguard.may_start(board) is False  # stays stopped at the next boot too


def test_crash_log_is_bounded():
    for i in range(40):
        crashguard._record("crash number %d" % i, "x" * 200 + "\n")
    with open("crash.log") as f:
        text = f.read()
    assert 3000 < len(text) <= 4096, len(text)
    assert "crash number 39" in text and "crash number 0:" not in text
    first = text.split("\n")[0]
    assert first == "x" * 200 or ": crash number " in first, first  # whole lines only


def test_watchdog_reset_counts_as_crash():
    machine._cause = machine.WDT_RESET
    assert crashguard.may_start(board) is True
    with open("crashes.json") as f:
        assert json.load(f) == {"n": 1, "why": "watchdog reset"}


def test_maintenance_skips_one_start():
    open("maintenance", "w").close()
    assert crashguard.may_start(board) is False
    assert "maintenance" not in os.listdir()
    assert crashguard.may_start(board) is True


class _Sleep:
    """Stands in for asyncio in crashguard: sleep() yields once to the test driving the task."""

    @staticmethod
    def sleep(s):
        yield


class FakeWDT:
    made = []

    def __init__(self, id=0, timeout=5000):
        self.timeout, self.fed = timeout, 0
        FakeWDT.made.append(self)

    def feed(self):
        self.fed += 1


def _watch():
    """crashguard.watch() as a generator the test steps through, one second per send()."""
    crashguard.asyncio = _Sleep
    machine.WDT = FakeWDT
    task = crashguard.watch()
    task.send(None)
    return task


def test_watch_feeds_the_watchdog_and_clears_the_count():
    with open("crashes.json", "w") as f:
        json.dump({"n": 2, "why": "x"}, f)
    crashguard.PRODUCTION = True  # as in a build of tools/build.py
    task = _watch()
    [wdt] = FakeWDT.made
    assert (wdt.timeout, wdt.fed) == (30000, 1)
    for _ in range(299):
        task.send(None)
    assert wdt.fed == 300
    assert "crashes.json" in os.listdir()  # 299 s: not yet
    task.send(None)
    assert "crashes.json" not in os.listdir()  # 300 s of stable running


def test_watch_arms_no_watchdog_in_development():
    assert crashguard.PRODUCTION is False  # the source tree has no _build module
    task = _watch()
    for _ in range(5):
        task.send(None)
    assert FakeWDT.made == []
