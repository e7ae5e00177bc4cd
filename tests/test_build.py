"""`make build` (tools/build.py): the .mpy image, reproducible, and what is deployed is what is
tested: the build alone (no firmware sources) runs a charging session in the simulator."""
import subprocess
import sys

import pytest

from harness import ROOT, connector, registered, status
from mpyrun import MICROPYTHON

BUILD = [sys.executable, str(ROOT / "tools" / "build.py")]
FIRMWARE, LIB = ROOT / "firmware", ROOT / "lib"


def build(out, *args):
    r = subprocess.run(BUILD + ["--out", str(out), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A production build, and what tools/build.py printed."""
    out = tmp_path_factory.mktemp("image") / "build"
    return out, build(out)


def test_layout(image):
    out, _ = image
    built = files(out)
    assert built["boot.py"] == (FIRMWARE / "boot.py").read_bytes()
    assert built["main.py"] == (FIRMWARE / "main.py").read_bytes()
    assert [n for n in built if n.endswith(".py")] == ["boot.py", "main.py"]
    for src in sorted(FIRMWARE.rglob("*.py")) + sorted(LIB.rglob("*.py")):
        rel = src.relative_to(FIRMWARE if src.is_relative_to(FIRMWARE) else ROOT).as_posix()
        if rel in ("boot.py", "main.py"):
            continue
        if rel == "uwallbox/ocpp/_schemas.py":  # for a frozen image only: the .mpy one reads files
            assert rel[:-3] + ".mpy" not in built
        else:
            assert rel[:-3] + ".mpy" in built, rel
    for schema in sorted((FIRMWARE / "uwallbox" / "ocpp" / "schemas").glob("*.json")):
        assert built["uwallbox/ocpp/schemas/" + schema.name] == schema.read_bytes()
    assert "uwallbox/_build.mpy" in built  # production: the watchdog is armed
    for name, data in built.items():
        if name.endswith(".mpy"):
            # 'M', version 6, feature flags with no native architecture: portable bytecode
            assert data[:2] == b"M\x06" and data[2] >> 2 == 0, (name, data[:4])


def test_sizes_are_printed(image):
    out, printed = image
    built = files(out)
    for name, data in built.items():
        assert f"  {name} " in printed and f"{len(data):,} B" in printed, name
    total = sum(len(d) for d in built.values())
    assert f"{total:,} B in {len(built)} files" in printed, printed
    assert "mpy v6.3" in printed


def test_reproducible(tmp_path):
    build(tmp_path / "one")
    build(tmp_path / "two")
    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert sorted(one) == sorted(two) and one == two


def test_dev_build_has_no_watchdog_flag(tmp_path):
    build(tmp_path / "dev", "--dev")
    assert not (tmp_path / "dev" / "uwallbox" / "_build.mpy").exists()
    assert (tmp_path / "dev" / "uwallbox" / "app.mpy").exists()


def test_refuses_to_wipe_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = subprocess.run(BUILD + ["--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not touching it" in r.stderr, r.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def module_names(out):
    """Importable names of the build's .mpy modules: uwallbox.* from OUT, the rest from OUT/lib."""
    names = []
    for n in files(out):
        if n.endswith(".mpy"):
            names.append(n[:-4].removeprefix("lib/").replace("/", ".").removesuffix(".__init__"))
    return names


def test_every_module_imports_from_the_build_alone(image, tmp_path):
    """Each module, with what it imports, in an ESP32-sized heap; then it is dropped again (the
    firmware imports features lazily: nothing ever holds every module of lib/ at once)."""
    out, _ = image
    names = module_names(out)
    path = [str(out), str(out / "lib"), str(ROOT / "boards" / "sim"), str(ROOT / "sim" / "mpy"), ".frozen"]
    code = (f"import gc, sys\nsys.path[:] = {path!r}\nbase = set(sys.modules)\n"
            f"for m in {names!r}:\n __import__(m)\n assert sys.modules[m].__file__.endswith('.mpy'), m\n"
            f" for k in [k for k in sys.modules if k not in base]:\n  del sys.modules[k]\n gc.collect()\n"
            f"print('imported', {len(names)})\n")
    # 112 KiB plus a margin for what this loop itself leaves fragmented (module names, the list)
    r = subprocess.run([MICROPYTHON, "-X", "heapsize=128K", "-c", code], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and f"imported {len(names)}" in r.stdout, r.stdout + r.stderr


@pytest.mark.timeout(120)
def test_build_charges_in_the_simulator(image, csms, charge_point, monkeypatch):
    out, _ = image
    monkeypatch.setenv("UWB_SIM_BUILD", str(out))  # sim/launch.py --build: out/main.py, no sources
    cp = charge_point()
    assert f"running the build in {out}" in cp.log()

    assert csms.wait_for("BootNotification", cp_id=cp.id)["chargePointVendor"] == "uwallbox"
    registered(cp, csms)
    cp.api.ev(plug=True)
    csms.wait_for("StatusNotification", status(1, "Preparing"), cp_id=cp.id)
    mark = csms.mark()
    cp.api.rfid("CARD0001")
    cp.api.ev(charge=True, max_a=16)
    start = csms.wait_for("StartTransaction", cp_id=cp.id, since=mark)
    assert (start["idTag"], start["connectorId"]) == ("CARD0001", 1), start
    c = connector(cp.api.wait(lambda s: connector(s)["status"] == "Charging" and connector(s)["relay"], 15))
    tx = c["transaction_id"]
    cp.api.rfid("CARD0001")  # the same card again ends the session
    stop = csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    assert (stop["transactionId"], stop["reason"]) == (tx, "Local"), stop
    c = connector(cp.api.wait(lambda s: connector(s)["transaction_id"] is None and not connector(s)["relay"], 15))
    assert c["status"] != "Charging", c
    assert " wifi " not in cp.log()  # the sim board has no WIFI: the network mocks stay unused
