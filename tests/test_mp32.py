"""The 32-bit MicroPython of `make mp32` (tools/mpbuild), the binary choice (tools/mpbin.py),
manifest.py and package.json."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpyrun import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import mpbin  # noqa: E402

LIB = sorted(p.name for p in (ROOT / "lib").glob("*.py"))
KIT = Path(os.environ.get("MP_KIT", "../shared/micropython"))
KIT = KIT if KIT.is_absolute() else ROOT / KIT


def run(binary, code, cwd, env=None):
    return subprocess.run([str(binary), "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=30, env=dict(os.environ, **(env or {})))


def test_default_binary_is_the_32_bit_build(monkeypatch, tmp_path):
    monkeypatch.delenv(mpbin.ENV, raising=False)
    assert mpbin.micropython() == str(mpbin.MP32)
    r = run(mpbin.MP32, "import sys; print(sys.maxsize, sys.implementation.version[:3], "
                        "1 << 40, hex(0xFFFFFFFF * 3))", tmp_path)
    assert r.stdout.split("\n")[0] == "2147483647 (1, 28, 0) 1099511627776 0x2fffffffd", r.stdout + r.stderr


def test_binary_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a relative path not found here is taken from the repository root
    monkeypatch.setenv(mpbin.ENV, ".venv/bin/micropython")
    assert mpbin.micropython() == str(ROOT / ".venv" / "bin" / "micropython")
    monkeypatch.setenv(mpbin.ENV, "no/such/micropython")
    with pytest.raises(LookupError, match="no/such/micropython"):
        mpbin.micropython()
    assert mpbin.micropython(str(mpbin.MP32)) == str(mpbin.MP32)  # an explicit path wins


def test_missing_build_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.delenv(mpbin.ENV, raising=False)
    monkeypatch.setattr(mpbin, "MP32", tmp_path / "micropython")
    with pytest.raises(LookupError, match=r"make mp32.*UWB_MICROPYTHON=\.venv/bin/micropython"):
        mpbin.micropython()


def test_sim_runs_the_binary_it_is_given(tmp_path):
    fake = tmp_path / "fake-micropython"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\nexit 3\n")
    fake.chmod(0o755)
    r = subprocess.run([sys.executable, str(ROOT / "sim" / "launch.py"), "--micropython", str(fake),
                        "--csms", "ws://127.0.0.1:9/x", "--state", str(tmp_path / "state"), "--heapsize", "100K"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3, r.stdout + r.stderr
    assert (tmp_path / "args").read_text().split() == ["-X", "heapsize=100K", str(ROOT / "firmware" / "main.py")]
    r = subprocess.run([sys.executable, str(ROOT / "sim" / "launch.py"), "--micropython", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "not found" in r.stderr, r.stderr


def test_frozen_build_imports_the_firmware_without_its_sources(tmp_path):
    modules = ["uwallbox.ocpp.rpc", "uwallbox.station.config"] + [n[:-3] for n in LIB] + ["asyncio", "ssl"]
    code = ("import sys\nfor m in %r:\n __import__(m)\n f = getattr(sys.modules[m], '__file__', '')\n"
            " assert not f.startswith('/'), (m, f)\nimport uwallbox\nprint('ok', uwallbox.VERSION)\n" % modules)
    r = run(mpbin.MP32_FROZEN, code, tmp_path, env={"MICROPYPATH": ".frozen"})
    assert r.returncode == 0 and r.stdout.split() == ["ok", "0.1.0"], r.stdout + r.stderr
    r = run(mpbin.MP32, "import uwallbox", tmp_path, env={"MICROPYPATH": ".frozen"})
    assert r.returncode == 1 and "ImportError" in r.stdout  # the plain build has no firmware


def test_package_json_lists_every_lib_module():
    pkg = json.loads((ROOT / "package.json").read_text())
    assert pkg["urls"] == [[n, "github:OWNER/uwallbox/lib/" + n] for n in LIB]
    assert pkg["version"] == run(mpbin.MP32_FROZEN, "import uwallbox; print(uwallbox.VERSION)", ROOT,
                                 env={"MICROPYPATH": ".frozen"}).stdout.strip()


def test_missing_32_bit_toolchain_fails_with_one_line(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcc").write_text("#!/bin/sh\necho 'ld: cannot find -lgcc' >&2\nexit 1\n")
    (bin_dir / "gcc").chmod(0o755)
    r = subprocess.run([str(ROOT / "tools" / "mpbuild"), "prepare", str(KIT), str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}"))
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "missing 32-bit toolchain: run  sudo apt-get install gcc-multilib\n")
    assert not (tmp_path / "out").exists()


def make_q(target):
    return subprocess.run(["make", "-q", target, f"MP_KIT={KIT}"], cwd=ROOT, capture_output=True,
                          timeout=30).returncode


def test_make_rebuilds_only_what_changed():
    if not list(KIT.glob("micropython-*-unix-src.tar.gz")):
        pytest.skip(f"no source kit tarball at MP_KIT={KIT} (a checkout is always handed to upstream make)")
    assert make_q("mp32") == 0  # make test built it: up to date
    src = ROOT / "lib" / "pem.py"
    st = src.stat()
    try:
        os.utime(src, (st.st_atime, time.time() + 3600))
        assert make_q(".mp/build-32-frozen/micropython") == 1
        assert make_q(".mp/build-32/micropython") == 0
    finally:
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert make_q("mp32") == 0


def manifest_targets(manifest, port_dir=None):
    """The frozen target paths of MANIFEST, read by the kit's own tools/manifestfile.py, for
    PORT_DIR (default: the kit's unix port)."""
    src = Path((ROOT / ".mp" / "src.path").read_text().split("\n")[0])
    port_dir = port_dir or src / "ports" / "unix"
    sys.path.insert(0, str(src / "tools"))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": str(src), "MPY_LIB_DIR": str(src / "lib" / "micropython-lib"),
        "PORT_DIR": str(port_dir), "BOARD_DIR": str(port_dir)})
    m.execute(str(manifest))
    return {f.target_path for f in m.files()}


def test_manifests_freeze_the_firmware_and_lib(tmp_path):
    ours = {"uwallbox/__init__.py", "uwallbox/ocpp/rpc.py", "uwallbox/hw/pilot.py"} | set(LIB)
    unix = manifest_targets(ROOT / "manifest.py")
    # ESP32: the board manifest includes the port's own (here an empty stand-in) and ours, not unix's
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "manifest.py").write_text("")
    esp32 = manifest_targets(ROOT / "boards" / "esp32-devkitc" / "manifest.py", tmp_path)
    assert ours <= unix and ours <= esp32
    assert {"asyncio/core.py", "ssl.py"} <= unix - esp32
    assert not any(t.startswith(("board", "main", "boot")) for t in unix | esp32)


def test_frozen_firmware_reads_the_production_flag_from_flash(tmp_path):
    """A frozen package cannot hold the build's flag (tools/build.py writes it per build):
    `make deploy` copies it to the flash's root, and the crash guard arms the watchdog from it."""
    code = "from uwallbox.system import crashguard; print('production', crashguard.PRODUCTION)"
    env = {"MICROPYPATH": ".frozen:"}
    assert run(mpbin.MP32_FROZEN, code, tmp_path, env=env).stdout.split() == ["production", "False"]
    (tmp_path / "uwallbox_build.py").write_text("PRODUCTION = True\n")
    r = run(mpbin.MP32_FROZEN, code, tmp_path, env=env)
    assert r.stdout.split() == ["production", "True"], r.stdout + r.stderr
