"""First boot on the device, on the sim board: Wi-Fi and NTP (mocked), the crash-loop guard,
the watchdog hook, and boot.py/main.py run as the ESP32 runs them (the unit cases under MicroPython:
tests/mpy/boot_cases.py)."""
import json

from mpyrun import run_mpy


BOARD = """
NAME = "test"
MAX_CURRENT_A = 32
PHASES = 3
VOLTAGE_V = 230
SOCKET = False
VENTILATION = False
PILOT_CAL = (200000, 2900000)
PP_CAL = (1000, 3300000)
CONNECTORS = ({{"pilot_pwm": 101, "pilot_adc": 102, "relay": 104, "relay_fb": 105}},)
WIFI = {wifi}


def meter(index):
    raise RuntimeError("meter chip not answering")
"""
# boot.py then main.py, as the ESP32 runs them; then the pin levels (relay 104, pilot 101)
POWER_ON = "import boot, main, machine; print('pins', machine._pins_out[104], machine._pins_out[101])"


def board_dir(tmp_path, wifi):
    """A board whose meter() fails, so that the application crashes while it is being built."""
    d = tmp_path / "board"
    d.mkdir()
    (d / "board.py").write_text(BOARD.format(wifi=wifi))
    return d


def power_on(board, flash):
    return run_mpy(["-c", POWER_ON], path=[board], cwd=flash, timeout=30)


def test_first_boot_joins_wifi_sets_clock_then_starts_the_app(tmp_path):
    board, flash = board_dir(tmp_path, wifi=True), tmp_path / "flash"
    flash.mkdir()
    (flash / "settings.json").write_text(json.dumps({
        "url": "ws://127.0.0.1:9/ocpp", "id": "CP9", "wifi": {"ssid": "Home", "password": "pw123456"}}))
    r = power_on(board, flash)
    out = r.stdout
    assert r.returncode == 75, out + r.stderr  # the crash restarted the board (machine.reset)
    order = [out.find(s) for s in ("wifi  connecting to Home", "signal -60 dBm", "clock set by NTP",
                                   "RuntimeError: meter chip not answering")]
    assert -1 not in order and order == sorted(order), out
    assert "pw123456" not in out
    assert json.loads((flash / "wifi.json").read_text()) == {"ssid": "Home", "password": "pw123456"}
    assert json.loads((flash / "crashes.json").read_text())["n"] == 1


def test_crash_loop_leaves_the_charge_point_safe_and_unavailable(tmp_path):
    board, flash = board_dir(tmp_path, wifi=False), tmp_path / "flash"
    flash.mkdir()
    for n in (1, 2, 3):
        r = power_on(board, flash)
        assert r.returncode == 75, r.stdout + r.stderr
        assert f"crash {n}: RuntimeError: meter chip not answering" in r.stdout, r.stdout
        assert "wifi" not in r.stdout  # the board has no Wi-Fi: never tried
    r = power_on(board, flash)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped after 3 crashes in a row (last: RuntimeError: meter chip not answering)" in r.stdout
    assert r.stdout.rstrip().endswith("pins 0 0"), r.stdout  # contactor open, pilot state F
    log = (flash / "crash.log").read_text()
    assert log.count("RuntimeError: meter chip not answering\n") == 6, log  # headline + traceback
    assert "crash loop: the charge point stays unavailable" in log


def test_maintenance_boot_starts_nothing(tmp_path):
    board, flash = board_dir(tmp_path, wifi=True), tmp_path / "flash"
    flash.mkdir()
    (flash / "maintenance").touch()
    r = power_on(board, flash)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "maintenance: application not started" in r.stdout
    assert r.stdout.rstrip().endswith("pins 0 1"), r.stdout  # boot.py: contactor open, pilot +12 V
    assert not (flash / "maintenance").exists() and "wifi" not in r.stdout
