"""`make deploy` (tools/deploy.py): the settings conversion and its errors, the mpremote command
list of --dry-run, the errors that stop it before anything is written, and the device-side
cleanup it runs (under MicroPython)."""
import json
import re
import shlex
import subprocess
import sys

import pytest

from harness import ROOT
from mpyrun import run_mpy

sys.path.insert(0, str(ROOT / "tools"))
import deploy  # noqa: E402
import mpbin  # noqa: E402

DEPLOY = [sys.executable, str(ROOT / "tools" / "deploy.py")]
WIFI_PASSWORD = "correct horse battery"
AUTH_KEY = "0123456789abcdef0123"
CA = """-----BEGIN CERTIFICATE-----
MIIBjDCCATOgAwIBAgIUaIIpbegqqrYtGSsOhTrG5EeO5jUwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQdXdhbGxib3ggdGVzdCBDQTAgFw0yNjExMjYwODE4NTNaGA8y
MTI2MTEwMjA4MTg1M1owGzEZMBcGA1UEAwwQdXdhbGxib3ggdGVzdCBDQTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABM09fmdUFYKEEOUtkh+UJqLBhJmIARa7eagt
YHa2Fz5cloblrVjlx11uLyxuiWF/Vqjg/y6x96sNwWiGx1dLYyajUzBRMB0GA1Ud
DgQWBBSdzAALdAZ1mjMy/qXx2mSP7adgFDAfBgNVHSMEGDAWgBSdzAALdAZ1mjMy
/qXx2mSP7adgFDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIAqg
pDzcTsf5iBBCB3F+GBZp4XzYvsLrueSeHXIIjC45AiB3jIb1FYiqI2fIDjOp1k9j
Ut/QDbq6aMB1Y5fC+6/ibA==
-----END CERTIFICATE-----
"""
BASIC = {"wifi": {"ssid": "Home", "password": WIFI_PASSWORD}, "url": "ws://10.0.0.5:9000/ocpp", "id": "CP001"}
SECURE = {"wifi": {"ssid": "Home", "password": WIFI_PASSWORD}, "url": "wss://csms.local/ocpp", "id": "CP001",
          "security_profile": 2, "authorization_key": AUTH_KEY, "ca_file": "ca.pem"}


def write(folder, settings, name="settings.json"):
    path = folder / name
    path.write_text(settings if isinstance(settings, str) else json.dumps(settings))
    return path


def convert(tmp_path, settings):
    return deploy.device_settings(write(tmp_path, settings))


def problems(tmp_path, settings):
    with pytest.raises(deploy.DeployError) as e:
        convert(tmp_path, settings)
    return str(e.value)


def test_basic_settings(tmp_path):
    device = convert(tmp_path, dict(BASIC, _help="ignored"))
    assert device == {"wifi": {"ssid": "Home", "password": WIFI_PASSWORD}, "url": "ws://10.0.0.5:9000/ocpp",
                      "id": "CP001", "security_profile": 0}


def test_secure_settings_carry_the_ca_as_pem(tmp_path):
    (tmp_path / "ca.pem").write_text(CA)
    device = convert(tmp_path, SECURE)
    assert device["ca"] == CA and "ca_file" not in device
    assert (device["security_profile"], device["authorization_key"]) == (2, AUTH_KEY)
    shown = json.dumps(deploy.shown(device))
    assert AUTH_KEY not in shown and WIFI_PASSWORD not in shown and "BEGIN" not in shown
    assert shown.count('"***"') == 2 and "1 certificate(s)" in shown


@pytest.mark.parametrize("change, expected", [
    ({"url": None}, "url: missing"),
    ({"url": "http://csms.local/ocpp"}, "is not a ws:// or wss:// URL"),
    ({"url": "ws://csms.example.com:9000/ocpp"}, "url: still the example's"),
    ({"id": ""}, "id: 0 characters, must be 1 to 48"),
    ({"id": "CP é"}, "id: printable ASCII characters only"),
    ({"security_profile": 4}, "security_profile: 4 is not 0, 1 or 2"),
    ({"security_profile": "1"}, "security_profile: '1' is not 0, 1 or 2"),
    ({"security_profile": True}, "security_profile: True is not 0, 1 or 2"),
    ({"security_profile": 3}, "3 needs a client certificate"),
    ({"security_profile": 1}, "authorization_key: missing"),
    ({"security_profile": 1, "authorization_key": "short"}, "authorization_key: 5 characters, must be 16 to 40"),
    ({"security_profile": 1, "authorization_key": AUTH_KEY, "id": "CP:1"}, "id: no ':' with HTTP Basic"),
    ({"security_profile": 2, "authorization_key": AUTH_KEY}, "security_profile 2 (TLS) needs a wss:// url"),
    ({"security_profile": 2, "authorization_key": AUTH_KEY, "url": "wss://csms.local"},
     "ca_file: a wss:// CSMS is verified"),
    ({"url": "wss://csms.local/ocpp"}, "ca_file: a wss:// CSMS is verified"),
    ({"wifi": None}, "wifi: missing"),
    ({"wifi": {"ssid": "Home", "password": "1234567"}}, "wifi password: 8 to 63 characters"),
    ({"wifi": {"ssid": "", "password": WIFI_PASSWORD}}, "wifi ssid: 0 characters"),
    ({"wifi": {"ssid": "Home", "pass": WIFI_PASSWORD}}, "wifi: unknown entry 'pass'"),
    ({"ssid": "Home"}, "unknown setting 'ssid'"),
    ({"ca_file": "missing.pem"}, "ca_file: cannot read"),
])
def test_settings_errors(tmp_path, change, expected):
    settings = {k: v for k, v in dict(BASIC, **change).items() if v is not None}
    text = problems(tmp_path, settings)
    assert expected in text, text
    assert WIFI_PASSWORD not in text and AUTH_KEY not in text


def test_every_problem_is_listed_at_once(tmp_path):
    text = problems(tmp_path, {"security_profile": 9})
    for expected in ("wifi: missing", "url: missing", "id: missing", "security_profile: 9"):
        assert expected in text, text


@pytest.mark.parametrize("content, expected", [
    ("not a certificate\n", "holds no PEM certificate"),
    (CA + "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n", "holds a private key"),
    (CA * 20, "bytes (max 8,192)"),
])
def test_bad_ca_files(tmp_path, content, expected):
    (tmp_path / "ca.pem").write_text(content)
    text = problems(tmp_path, dict(BASIC, url="wss://csms.local", ca_file="ca.pem"))
    assert expected in text, text


@pytest.mark.parametrize("content, expected", [
    ("{", "is not valid JSON"),
    ("[]", "must hold a JSON object"),
])
def test_unreadable_settings_file(tmp_path, content, expected):
    assert expected in problems(tmp_path, content)


def test_the_template_lists_every_setting():
    template = json.loads((ROOT / "settings.example.json").read_text())
    assert sorted(k for k in template if not k.startswith("_")) == sorted(deploy.KNOWN)
    doc = (ROOT / "docs" / "ESP32.md").read_text()
    for key in deploy.KNOWN:
        assert f"`{key}`" in doc, key


# -- the command line

@pytest.fixture
def setup(tmp_path):
    """A build folder, a stand-in serial port and a settings file with secrets."""
    build = tmp_path / "build"
    for name in ("boot.py", "main.py", "uwallbox/app.mpy", "uwallbox/ocpp/schemas/Reset.json", "lib/ws.mpy"):
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        (build / name).write_text("x")
    port = tmp_path / "ttyUSB0"
    port.touch()
    return build, port, write(tmp_path, dict(BASIC, security_profile=1, authorization_key=AUTH_KEY))


def run_deploy(*args):
    return subprocess.run(DEPLOY + list(args), capture_output=True, text=True, timeout=60)


def mpremote_lines(stdout):
    """The printed `$ command` lines, split as a shell would (a command may span lines)."""
    commands, text = [], None
    for line in stdout.splitlines():
        if text is None and not line.startswith("$ "):
            continue
        text = line[2:] if text is None else text + "\n" + line
        try:
            commands.append(shlex.split(text))
            text = None
        except ValueError:  # an open quote: the command goes on
            pass
    return commands


def test_dry_run_commands(setup):
    build, port, settings = setup
    r = run_deploy("--port", str(port), "--board", "esp32-devkitc", "--settings", str(settings),
                   "--build", str(build), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert WIFI_PASSWORD not in r.stdout + r.stderr and AUTH_KEY not in r.stdout + r.stderr
    assert r.stdout.count('"***"') == 2
    first, second = mpremote_lines(r.stdout)
    assert first[0].endswith("mpremote") and first[1:] == ["connect", str(port), "fs", "touch", ":maintenance",
                                                          "+", "reset"]
    assert second[1:3] == ["connect", str(port)]
    steps = [[]]
    for arg in second[3:]:
        if arg == "+":
            steps.append([])
        else:
            steps[-1].append(arg)
    assert steps[0] == ["sleep", "2"] and steps[1][0] == "exec"
    copies = {step[-1]: step[-2] for step in steps if step[:2] == ["fs", "cp"]}
    assert copies == {":boot.py": str(build / "boot.py"), ":main.py": str(build / "main.py"),
                      ":lib": str(build / "lib"), ":uwallbox": str(build / "uwallbox"),
                      ":board.py": str(ROOT / "boards" / "esp32-devkitc" / "board.py"),
                      ":settings.json": copies[":settings.json"]}
    assert copies[":settings.json"].endswith("settings.json") and copies[":settings.json"] != str(settings)
    assert ["fs", "cp", "-f", "-r", str(build / "uwallbox"), ":uwallbox"] in steps
    assert steps[-2:] == [["fs", "rm", ":maintenance"], ["reset"]]


def test_device_cleanup_runs_under_micropython(setup, tmp_path):
    build, port, settings = setup
    r = run_deploy("--port", str(port), "--board", "esp32-devkitc", "--settings", str(settings),
                   "--build", str(build), "--dry-run")
    second = mpremote_lines(r.stdout)[1]
    code = second[second.index("exec") + 1]
    flash = tmp_path / "flash"
    for name in ("uwallbox/hw/pilot.py", "uwallbox/app.mpy", "lib/ws.py", "crashes.json", "config.json",
                 "crash.log", "txq/00000001.json"):
        (flash / name).parent.mkdir(parents=True, exist_ok=True)
        (flash / name).write_text("{}")
    r = run_mpy(["-c", code], cwd=flash)
    assert r.returncode == 0, r.stdout + r.stderr
    left = sorted(p.relative_to(flash).as_posix() for p in flash.rglob("*"))
    assert left == ["config.json", "crash.log", "maintenance", "txq", "txq/00000001.json"]


@pytest.mark.parametrize("args, expected", [
    (["--port", ""], "no PORT given"),
    (["--port", "/dev/ttyNOPE9"], "no serial port /dev/ttyNOPE9"),
    (["--board", ""], "no BOARD given"),
    (["--board", "esp32-nope"], "unknown board 'esp32-nope'"),
    (["--board", "sim"], "the simulator's board, not a device"),
    (["--board", "../sim"], "unknown board '../sim'"),
    (["--settings", ""], "no SETTINGS given"),
    (["--settings", "/nonexistent/settings.json"], "settings file /nonexistent/settings.json not found"),
    (["--build", "/nonexistent/build"], "no build in /nonexistent/build: run `make build`"),
])
def test_errors_stop_before_anything_is_written(setup, args, expected):
    build, port, settings = setup
    given = {"--port": str(port), "--board": "esp32-devkitc", "--settings": str(settings), "--build": str(build)}
    given.update(zip(args[::2], args[1::2]))
    r = run_deploy(*[x for kv in given.items() for x in kv], "--dry-run")
    assert r.returncode != 0 and "nothing written" in r.stderr and expected in r.stderr, r.stderr
    assert mpremote_lines(r.stdout) == []


def test_settings_problems_stop_the_deploy(setup, tmp_path):
    build, port, _ = setup
    bad = write(tmp_path, dict(BASIC, security_profile=7), "bad.json")
    r = run_deploy("--port", str(port), "--board", "esp32-devkitc", "--settings", str(bad),
                   "--build", str(build), "--dry-run")
    assert r.returncode != 0 and "security_profile: 7 is not 0, 1 or 2" in r.stderr, r.stderr
    assert mpremote_lines(r.stdout) == [] and WIFI_PASSWORD not in r.stderr


def test_console(setup):
    _, port, _ = setup
    r = run_deploy("--port", str(port), "--console", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert [c[1:] for c in mpremote_lines(r.stdout)] == [["connect", str(port), "repl"]]
    r = run_deploy("--console", "--dry-run")
    assert r.returncode != 0 and "no PORT given" in r.stderr


@pytest.mark.parametrize("line, warned", [("WIFI = True", False), ("WIFI = False", True), ("", True)])
def test_warns_when_the_board_does_not_join_wifi(setup, tmp_path, monkeypatch, capsys, line, warned):
    build, port, settings = setup
    (tmp_path / "boards" / "mine").mkdir(parents=True)
    (tmp_path / "boards" / "mine" / "board.py").write_text(f'NAME = "mine"\n{line}\n')
    monkeypatch.setattr(deploy, "BOARDS", tmp_path / "boards")
    deploy.main(["--port", str(port), "--board", "mine", "--settings", str(settings), "--build", str(build),
                 "--dry-run"])
    out = capsys.readouterr().out
    assert ("does not say WIFI = True" in out) == warned, out
    assert len(mpremote_lines(out)) == 2


def test_host_made_key_and_csrs_are_provisioned_and_the_key_never_shown(tmp_path, pki):
    settings = dict(BASIC, client_key_file=str(pki / "cp.key"), client_csr_file=str(pki / "cp.csr"),
                    v2g_csr_file=str(pki / "v2g.csr"))
    device = convert(tmp_path, settings)
    assert "PRIVATE KEY" in device["client_key"] and "CERTIFICATE REQUEST" in device["v2g_csr"]
    shown = json.dumps(deploy.shown(device))
    assert "PRIVATE KEY" not in shown and "BEGIN" not in shown
    text = problems(tmp_path, dict(BASIC, client_key_file=str(pki / "cp.csr")))
    assert "client_key_file" in text and "holds no PEM PRIVATE KEY" in text


FAKE_MPREMOTE = """#!/bin/sh
# mpremote connect PORT exec CODE runs CODE under a 32-bit micropython with a board's heap, in a
# flash that holds an earlier deployment's uwallbox/ folder; every call is logged
echo "$@" >> "{log}"
cd "{flash}"
if [ "$3" = exec ]; then exec "{micropython}" -X heapsize={heap} -c "$4"; fi
"""


def fake_board(tmp_path, monkeypatch, heap, frozen=False):
    """mpremote replaced by a board whose MicroPython has HEAP (e.g. '112K') and, if FROZEN,
    uwallbox frozen into its firmware; the log of its calls."""
    log, fake, flash = tmp_path / "mpremote.log", tmp_path / "mpremote", tmp_path / "flash"
    (flash / "uwallbox").mkdir(parents=True)
    (flash / "uwallbox" / "__init__.py").write_text("")
    binary = mpbin.MP32_FROZEN if frozen else mpbin.MP32
    fake.write_text(FAKE_MPREMOTE.format(log=log, flash=flash, micropython=binary, heap=heap))
    fake.chmod(0o755)
    monkeypatch.setattr(deploy, "mpremote", lambda: str(fake))
    return log


@pytest.mark.parametrize("heap, force, deployed", [
    ("112K", False, False),   # a plain ESP32: the .mpy image does not fit
    ("112K", True, True),     # --force: deployed anyway, with a warning
    ("2000K", False, True),   # a board with PSRAM
])
def test_the_board_heap_is_checked_before_anything_is_written(setup, tmp_path, monkeypatch, capsys,
                                                              heap, force, deployed):
    build, port, settings = setup
    log = fake_board(tmp_path, monkeypatch, heap)
    args = ["--port", str(port), "--board", "esp32-devkitc", "--settings", str(settings), "--build", str(build)]
    if deployed:
        deploy.main(args + ["--force"] * force)
    else:
        with pytest.raises(SystemExit) as e:
            deploy.main(args)
        assert re.search(r"nothing written: the board has 10\d KiB of heap", str(e.value)), e.value
        assert "PSRAM" in str(e.value) and "FORCE=1" in str(e.value)
    calls = log.read_text().splitlines()
    assert "exec" in calls[0].split()
    writes = [c for c in calls if " fs " in f" {c} "]
    assert bool(writes) == deployed, calls
    assert bool(re.search(r"warning: the board has 10\d KiB", capsys.readouterr().out)) == force
    assert (" fs cp -f -r " in log.read_text()) == deployed  # the .mpy folders


@pytest.mark.parametrize("production", [True, False])
def test_a_board_with_uwallbox_frozen_in_gets_no_mpy_copies(setup, tmp_path, monkeypatch, capsys, production):
    """A plain ESP32's heap is enough for the frozen image; only boot.py, main.py, the board and the
    settings are copied (and a production build's watchdog flag); the .mpy folders go."""
    build, port, settings = setup
    if production:
        (build / "uwallbox" / "_build.mpy").write_text("x")
    log = fake_board(tmp_path, monkeypatch, "112K", frozen=True)
    deploy.main(["--port", str(port), "--board", "esp32-devkitc", "--settings", str(settings), "--build", str(build)])
    assert "uwallbox is frozen into its firmware" in capsys.readouterr().out
    copied = [dest for _, dest in re.findall(r"fs cp -f (?:-r )?(\S+) (\S+)", log.read_text())]
    assert copied == [":boot.py", ":main.py"] + [":uwallbox_build.mpy"] * production + [":board.py", ":settings.json"]
    clean = deploy.commands(port, build, ROOT / "boards" / "esp32-devkitc" / "board.py", settings, True)[1]
    assert '["lib", "uwallbox", "crashes.json", "uwallbox_build.mpy"]' in clean[clean.index("exec") + 1]


@pytest.mark.parametrize("image, need", [("mpy", "MPY_HEAP_KIB"), ("frozen", "FROZEN_HEAP_KIB")])
def test_the_heap_each_image_needs_is_the_benchmark_s(image, need):
    """deploy's figure covers the image's measured need (bench/results.json, Heap row) and 24 KiB
    for Wi-Fi, TLS records and fragmentation: more than a plain ESP32's heap for the .mpy image,
    less for the frozen one."""
    heap = json.loads((ROOT / "bench" / "results.json").read_text())["rows"]["heap"][image]
    firmware_kib = round(heap["heap_k"] - heap["sim_bytes"] / 1024)
    kib = getattr(deploy, need)
    assert firmware_kib + 24 <= kib < firmware_kib + 24 + 8
    assert (kib > 112) == (image == "mpy")
