#!/usr/bin/env python3
"""Put the build on an ESP32 running MicroPython, with its board definition and settings.

    tools/deploy.py --port /dev/ttyUSB0 --board esp32-devkitc --settings settings.json [--dry-run]
    tools/deploy.py --port /dev/ttyUSB0 --console

Checks everything first (build, board, port, settings) and writes nothing on an error. Then, with
mpremote: a `maintenance` file and a hard reset (the next boot starts no application, so no
watchdog runs while copying); the old /uwallbox and /lib go, the build, `/board.py` and
`/settings.json` (made from the settings file: settings.example.json, docs/ESP32.md) are copied,
the `maintenance` file goes and the board restarts. The flash state (configuration, queued
transaction messages, Wi-Fi credentials, crash.log) stays; the crash count is cleared. Secrets
are printed as ***. `--dry-run` prints the mpremote commands instead of running them.

Before writing anything it asks the board how much heap MicroPython has, and whether its firmware
has uwallbox frozen in (docs/ESP32.md, "Memory on the device"). Frozen in: only `boot.py`,
`main.py`, the web page, `/board.py` and `/settings.json` are copied, and the `.mpy` folders of an
earlier deployment go. Not frozen in: the `.mpy` image keeps its bytecode in RAM and needs about
MPY_HEAP_KIB, which a plain ESP32 (about 110 KiB) does not have; on such a board the deployment
stops and says what to do instead (a board with PSRAM, or the frozen firmware); `--force` deploys
anyway.
"""
import argparse
import ast
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
BOARDS = ROOT / "boards"
SIM_BOARD = "sim"
KNOWN = ("wifi", "url", "id", "security_profile", "authorization_key", "ca_file", "client_key_file",
         "client_csr_file", "v2g_csr_file", "admin_password")
# keys and CSRs made on the host, for those who want them (without them the device makes its
# own P-256 keys and CSRs, profiles/keys.py): setting -> (device setting, PEM label)
HOST_MADE = {"client_key_file": ("client_key", "PRIVATE KEY"),  # security profile 3
             "client_csr_file": ("client_csr", "CERTIFICATE REQUEST"),
             "v2g_csr_file": ("v2g_csr", "CERTIFICATE REQUEST")}  # ISO 15118 Plug & Charge
CA_MAX = 8192  # bytes: the charge point reads the CA into its ~110 KB heap
# KiB of heap the .mpy image needs on the board: the bench's standard scenario (README, Heap row:
# the .mpy image's firmware share on the 32-bit build) and 24 KiB for Wi-Fi, TLS records and
# fragmentation. tests/test_deploy.py holds it to bench/results.json.
MPY_HEAP_KIB = 150
FROZEN_FLAG = "uwallbox_build.mpy"  # a production build's flag for a frozen firmware (crashguard.py)
FROZEN_HEAP_KIB = 70  # the same for the frozen image (45 KiB), which a plain ESP32 has
# run on the device: "heap BYTES FROZEN", FROZEN 1 if the firmware has uwallbox frozen in (found
# with the frozen modules alone on the path, whatever was imported from the filesystem before)
HEAP_PROBE = """import gc, sys
f = 0
if ".frozen" in sys.path:
    for k in list(sys.modules):
        if k == "uwallbox" or k.startswith("uwallbox."):
            del sys.modules[k]
    p = sys.path[:]
    sys.path[:] = [".frozen"]
    try:
        import uwallbox
        f = 1
    except ImportError:
        pass
    sys.path[:] = p
gc.collect()
print("heap", gc.mem_free() + gc.mem_alloc(), f)
"""
SECRET = "***"
# run on the device: remove what the new build replaces and the crash count; until the copy is
# complete a `maintenance` file keeps a reset board from starting a half-copied application
CLEAN = """import os
def rm(p):
 try:
  if os.stat(p)[0] & 0x4000:
   for n in os.listdir(p):
    rm(p + "/" + n)
   os.rmdir(p)
  else:
   os.remove(p)
 except OSError:
  pass
for p in {paths}:
 rm(p)
open("maintenance", "w").close()
"""


class DeployError(Exception):
    pass


def _text(value, key, lo, hi, what, problems):
    """VALUE if a string of LO..HI characters, else None with a problem noted (the value unshown)."""
    if not isinstance(value, str):
        problems.append(f"{key}: {'missing' if value is None else 'must be a string'}: {what}")
    elif not lo <= len(value) <= hi:
        problems.append(f"{key}: {len(value)} characters, must be {lo} to {hi}: {what}")
    else:
        return value
    return None


def _wifi(wifi, problems):
    """The "wifi" entry, checked; None with problems noted."""
    if not isinstance(wifi, dict):
        problems.append('wifi: missing: {"ssid": "...", "password": "..."}')
        return None
    problems += [f"wifi: unknown entry {k!r} (known: ssid, password)"
                 for k in wifi if k not in ("ssid", "password")]
    ssid = _text(wifi.get("ssid"), "wifi ssid", 1, 32, "the Wi-Fi network name", problems)
    if ssid is not None and len(ssid.encode()) > 32:
        problems.append("wifi ssid: longer than 32 bytes")
        ssid = None
    password = wifi.get("password", "")
    if not isinstance(password, str) or not (password == "" or 8 <= len(password) <= 63 or (
            len(password) == 64 and all(c in "0123456789abcdefABCDEF" for c in password))):
        problems.append("wifi password: 8 to 63 characters (WPA2), 64 hex digits, or empty (open network)")
        return None
    return None if ssid is None else {"ssid": ssid, "password": password}


def _pem_file(setting, name, base, label, problems):
    """The PEM text of file NAME (relative to BASE) holding a LABEL block; None with a problem noted."""
    try:
        pem = (base / Path(str(name)).expanduser()).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{setting}: cannot read {name}: {getattr(e, 'strerror', None) or e}")
        return None
    if not re.search(r"-----BEGIN [A-Z ]*%s-----" % label, pem):
        problems.append(f"{setting}: {name} holds no PEM {label}")
        return None
    return pem


def _ca(name, base, problems):
    """The PEM text of CA file NAME (relative to BASE), checked; None with a problem noted."""
    if not isinstance(name, str):
        problems.append("ca_file: must be a file name")
        return None
    path = base / Path(name).expanduser()
    try:
        pem = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"ca_file: cannot read {path}: {getattr(e, 'strerror', None) or e}")
        return None
    if "PRIVATE KEY" in pem:
        problems.append(f"ca_file: {path} holds a private key: give only the CA certificate")
    elif len(pem) > CA_MAX:
        problems.append(f"ca_file: {path} is {len(pem):,} bytes (max {CA_MAX:,}): give only the CA "
                        "that signed the CSMS certificate, not a whole bundle")
    else:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
            return pem
        except ssl.SSLError:
            problems.append(f"ca_file: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return None


def device_settings(path):
    """The settings file PATH, checked -> the settings.json for the device.
    Raises DeployError listing every problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployError(f"settings file {path} not found (start from settings.example.json)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DeployError(f"cannot read settings file {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise DeployError(f"settings file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise DeployError(f"settings file {path} must hold a JSON object")
    problems = [f"unknown setting {k!r} (known: {', '.join(KNOWN)})"
                 for k in data if not k.startswith("_") and k not in KNOWN]
    out = {"wifi": _wifi(data.get("wifi"), problems)}

    url = _text(data.get("url"), "url", 1, 200, "the CSMS base URL, e.g. ws://csms.example.com:9000/ocpp",
                problems)
    parts = urlsplit(url) if url else None
    if parts and (parts.scheme not in ("ws", "wss") or not parts.hostname):
        problems.append(f"url: {url!r} is not a ws:// or wss:// URL")
        url = None
    elif parts and (parts.hostname == "example.com" or parts.hostname.endswith(".example.com")):
        problems.append("url: still the example's: give the address of your CSMS")
        url = None
    tls = bool(url) and url.startswith("wss://")
    cp_id = _text(data.get("id"), "id", 1, 48, "the charge point id the CSMS knows", problems)
    if cp_id is not None and not (cp_id.isascii() and cp_id.isprintable()):
        problems.append("id: printable ASCII characters only")
        cp_id = None
    out.update(url=url, id=cp_id)

    profile = data.get("security_profile", 0)
    if type(profile) is not int or not 0 <= profile <= 2:
        problems.append(f"security_profile: {profile!r} is not 0, 1 or 2" + (
            " (3 needs a client certificate: deploy with 2, the CSMS installs one and raises the profile)"
            if profile == 3 else ""))
        profile = None
    elif profile == 2 and url and not tls:
        problems.append("security_profile 2 (TLS) needs a wss:// url")
    out["security_profile"] = profile
    basic_auth = profile in (1, 2)
    key = data.get("authorization_key") or None
    if key is not None or basic_auth:
        out["authorization_key"] = _text(key, "authorization_key", 16, 40,
                                         "the Basic auth password of security profiles 1 and 2", problems)
    if basic_auth and cp_id and ":" in cp_id:
        problems.append("id: no ':' with HTTP Basic authentication (security profiles 1 and 2)")

    ca_file = data.get("ca_file") or None
    if ca_file is not None:
        out["ca"] = _ca(ca_file, path.parent, problems)
    elif profile == 2 or tls:
        problems.append("ca_file: a wss:// CSMS is verified (the charge point refuses to connect "
                        "otherwise): give the CA that signed the CSMS certificate")
    for setting, (device, label) in HOST_MADE.items():
        if data.get(setting):
            out[device] = _pem_file(setting, data[setting], path.parent, label, problems)
    admin = data.get("admin_password") or None
    if admin is not None:  # the web page's (docs/WEB.md); without one the page stays off
        out["admin_password"] = _text(admin, "admin_password", 8, 64, "the password of the web page", problems)
    if problems:
        raise DeployError(f"settings file {path}:\n  " + "\n  ".join(problems))
    return out


def shown(settings):
    """SETTINGS with the secrets replaced by *** and the CA summarised, for printing."""
    s = dict(settings)
    for k in ("authorization_key", "admin_password"):
        if k in s:
            s[k] = SECRET
    if "wifi" in s:
        s["wifi"] = {"ssid": s["wifi"]["ssid"], "password": SECRET if s["wifi"]["password"] else ""}
    if "ca" in s:
        s["ca"] = f"{s['ca'].count('BEGIN CERTIFICATE')} certificate(s), {len(s['ca']):,} bytes of PEM"
    for device, label in HOST_MADE.values():
        if device in s:
            s[device] = SECRET if "KEY" in label else f"{label}, {len(s[device]):,} bytes of PEM"
    return s


def boards():
    """Names of the boards a device can be deployed with."""
    return sorted(p.parent.name for p in BOARDS.glob("*/board.py") if p.parent.name != SIM_BOARD)


def board_file(name):
    known = boards()
    if not name:
        raise DeployError(f"no BOARD given: BOARD=<one of {', '.join(known)}>")
    if name not in known:
        why = " (the simulator's board, not a device)" if name == SIM_BOARD else ""
        raise DeployError(f"unknown board {name!r}{why}: one of {', '.join(known)}")
    return BOARDS / name / "board.py"


def joins_wifi(board_py):
    """Does the board definition say `WIFI = True` (main.py joins Wi-Fi only then)?"""
    return any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "WIFI" for t in n.targets)
               and getattr(n.value, "value", None) is True for n in ast.parse(board_py.read_text()).body)


def serial_ports():
    from serial.tools import list_ports
    return sorted(p.device for p in list_ports.comports())


def check_port(port):
    if port and (os.path.exists(port) or port in serial_ports()):
        return
    found = ", ".join(serial_ports()) or "none: is the board plugged in (a data cable, not charge-only)?"
    if not port:
        raise DeployError(f"no PORT given: PORT=/dev/ttyUSB0 (serial ports found: {found})")
    raise DeployError(f"no serial port {port} (serial ports found: {found})")


def check_build(build):
    if not (build / "main.py").is_file() or not (build / "uwallbox").is_dir():
        raise DeployError(f"no build in {build}: run `make build` first")


def mpremote():
    local = Path(sys.executable).parent / "mpremote"
    return str(local) if local.exists() else shutil.which("mpremote") or "mpremote"


def commands(port, build, board_py, settings_json, frozen=False):
    """The mpremote command lines of a deployment, in order (every copy names its destination).
    FROZEN: the board's firmware has uwallbox frozen in: the build's folders are not copied."""
    mp = [mpremote(), "connect", port]
    entries = sorted(build.iterdir())
    clean = CLEAN.format(paths=json.dumps([p.name for p in entries if p.is_dir()] + ["crashes.json", FROZEN_FLAG]))
    copies = [(p, ":" + p.name) for p in entries if not (frozen and p.is_dir())]
    flag = build / "uwallbox" / "_build.mpy"  # a production build: the watchdog is armed
    if frozen and flag.exists():
        copies.append((flag, ":" + FROZEN_FLAG))
    copies += [(board_py, ":board.py"), (settings_json, ":settings.json")]
    install = mp + ["sleep", "2", "+", "exec", clean]
    for src, dest in copies:
        install += ["+", "fs", "cp", "-f"] + (["-r"] if src.is_dir() else []) + [str(src), dest]
    install += ["+", "fs", "rm", ":maintenance", "+", "reset"]
    return [mp + ["fs", "touch", ":maintenance", "+", "reset"], install]


def board_heap(port):
    """(bytes of heap MicroPython has, uwallbox frozen in?) of the board at PORT, or None."""
    r = subprocess.run([mpremote(), "connect", port, "exec", HEAP_PROBE], capture_output=True, text=True)
    m = re.search(r"^heap (\d+) ([01])\s*$", r.stdout, re.M) if r.returncode == 0 else None
    return (int(m.group(1)), m.group(2) == "1") if m else None


def check_board(port, force):
    """True if the board's firmware has uwallbox frozen in. DeployError when its heap is too small
    for the image it would run, unless FORCE."""
    found = board_heap(port)
    if found is None:
        raise DeployError(f"nothing written: cannot read the heap size of the board on {port}: is it "
                          "running MicroPython, and no console open on the port?")
    kib, frozen = found[0] // 1024, found[1]
    need = FROZEN_HEAP_KIB if frozen else MPY_HEAP_KIB
    image = "the frozen image" if frozen else "the .mpy image"
    if kib >= need:
        print(f"the board has {kib} KiB of heap: enough for {image} ({need} KiB)"
              + ("; uwallbox is frozen into its firmware: its .mpy folders are not copied" if frozen else ""))
        return frozen
    why = (f"the board has {kib} KiB of heap; {image} needs about {need} KiB" + ("" if frozen else
           ": its bytecode is loaded into RAM. Use a board with PSRAM (ESP32-WROVER), or build MicroPython "
           "with uwallbox frozen in (boards/esp32-devkitc/manifest.py), which needs about "
           f"{FROZEN_HEAP_KIB} KiB: docs/ESP32.md"))
    if not force:
        raise DeployError(f"nothing written: {why}; --force (make deploy FORCE=1) deploys anyway")
    print(f"warning: {why}; deploying anyway (--force)")
    return frozen


def run(cmds, dry_run):
    for i, cmd in enumerate(cmds, 1):
        print("$ " + shlex.join(cmd), flush=True)
        if dry_run:
            continue
        code = subprocess.run(cmd).returncode
        if code:
            raise DeployError(f"mpremote failed (exit {code}) in step {i} of {len(cmds)}: is the board "
                              "running MicroPython, and no console open on the port?")


def deploy(args):
    build = Path(args.build)
    problems, settings = [], None
    for check in (lambda: check_build(build), lambda: board_file(args.board), lambda: check_port(args.port)):
        try:
            check()
        except DeployError as e:
            problems.append(str(e))
    if not args.settings:
        problems.append("no SETTINGS given: SETTINGS=settings.json (start from settings.example.json)")
    else:
        try:
            settings = device_settings(args.settings)
        except DeployError as e:
            problems.append(str(e))
    if problems:
        raise DeployError("nothing written:\n" + "\n".join(problems))
    board = board_file(args.board)
    print(f"deploying {build} with board {args.board} to {args.port}; settings:")
    print(json.dumps(shown(settings), indent=2))
    if not joins_wifi(board):
        print(f"warning: {board} does not say WIFI = True: the charge point will not join the Wi-Fi")
    frozen = False
    if args.dry_run:
        print("dry run: the board is not asked for its heap (the .mpy image is shown)")
    else:
        frozen = check_board(args.port, args.force)
    with tempfile.TemporaryDirectory(prefix="uwallbox-deploy-") as tmp:
        device = Path(tmp) / "settings.json"
        device.write_text(json.dumps(settings))
        run(commands(args.port, build, board, device, frozen), args.dry_run)
    print("dry run: nothing was written" if args.dry_run else
          f"done: the board restarts; see its log with `make console PORT={args.port}`")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", default="", help="serial port of the board, e.g. /dev/ttyUSB0 or COM3")
    p.add_argument("--board", default="", help="board definition: boards/<BOARD>/board.py")
    p.add_argument("--settings", default="", help="settings file (see settings.example.json)")
    p.add_argument("--build", default=str(BUILD), help="build folder (default build/)")
    p.add_argument("--dry-run", action="store_true", help="print the mpremote commands, run nothing")
    p.add_argument("--console", action="store_true", help="open the serial console (REPL) instead")
    p.add_argument("--force", action="store_true",
                   help=f"deploy even on a board with less heap than the .mpy image needs ({MPY_HEAP_KIB} KiB)")
    args = p.parse_args(argv)
    try:
        if args.console:
            check_port(args.port)
            run([[mpremote(), "connect", args.port, "repl"]], args.dry_run)
        else:
            deploy(args)
    except DeployError as e:
        sys.exit(f"deploy: {e}")


if __name__ == "__main__":
    main()
