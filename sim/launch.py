#!/usr/bin/env python3
"""uwallbox simulator: the firmware on the MicroPython unix port, talking OCPP to a CSMS.

    sim/launch.py [--demo] [--csms URL] [--id CP001] [--state DIR] [--connectors N]
              [--heapsize 112K] [--control PORT] [--web PORT] [--admin-password PW] [--blocked TAG]
              [--build DIR] [--micropython PATH] [--meter plant|sdm630|sdm120|b23|ct|estimated]
              [--meter-start WH]

Without --csms the bundled demo CSMS (tools/csms.py) runs in this process on a free port.
Output lines are prefixed: `fw |` firmware, `csms|` CSMS, `sim |` this launcher.
The firmware serves the control API (GET /state, POST /ev, /rfid, /fault, /clock, /meter; see
docs/ARCHITECTURE.md) on http://127.0.0.1:PORT. When the firmware exits with 75
(machine.reset()) it is restarted on the same state folder. Ctrl-C or SIGTERM stops everything.
--build DIR (default: $UWB_SIM_BUILD) runs the .mpy build of tools/build.py instead of the sources.
--micropython PATH (default: $UWB_MICROPYTHON, else .mp/build-32/micropython of `make mp32`) is the
binary; UWB_MICROPYTHON=.venv/bin/micropython runs the 64-bit port of the pip package instead.

Classroom mode (docs/CLASSROOM.md): with the bundled CSMS (or --panels) the launcher serves a panel
per charger (sim/classroom.py, sim/panel/) and the CSMS its operator's panel (tools/csms_panel.py),
and prints their URLs; the firmware reaches the CSMS through a relay the panel can cut (network
outage). --fleet N starts N chargers CP001..CPnnn, each in STATE/ID with its own control port.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SIM = Path(__file__).resolve().parent
ROOT = SIM.parent
sys.path[:0] = [str(SIM), str(ROOT / "tools")]  # simapi.py here, csms.py in tools/
import mpbin  # noqa: E402  (tools/mpbin.py: which micropython binary)
import webpage  # noqa: E402  (tools/webpage.py: the web page, gzip-compressed)
from simapi import SimApi, connector  # noqa: E402

RESET_EXIT = 75
_print_lock = threading.Lock()


def out(prefix, line):
    with _print_lock:
        print(f"{prefix} {line}", flush=True)


def say(line):
    out("sim |", line)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def micropython(path):
    """--micropython PATH, else $UWB_MICROPYTHON, else the 32-bit build (tools/mpbin.py)."""
    try:
        return mpbin.micropython(path)
    except LookupError as e:
        sys.exit(f"sim | {e}")


class Firmware:
    """The firmware process, restarted on the same state folder when it exits with 75."""

    def __init__(self, args, url, control, state, id=None, log=True, web=None):
        id = id or args.id
        self.settings = {"url": url, "id": id}
        self.prefix = "fw |" if id == args.id else f"fw {id}|"
        self.log = log
        if web and not (state / "webadmin.json").exists():  # the web page's admin, once
            self.settings["admin_password"] = args.admin_password
        if args.settings:
            self.settings.update(json.loads(Path(args.settings).read_text()))
        self.state = state
        fw = Path(args.build).resolve() if args.build else ROOT / "firmware"
        path = [ROOT / "boards" / "sim", SIM / "mpy", fw / "lib" if args.build else ROOT / "lib"]
        main = fw / "main.py"
        if args.frozen:  # as on a device: boot.py and main.py in flash, the rest in the firmware
            for name in ("boot.py", "main.py"):
                shutil.copy(ROOT / "firmware" / name, state / name)
            main, path = state / "main.py", path[:2]
        self.cmd = [args.micropython] + (["-X", f"heapsize={args.heapsize}"] if args.heapsize else []) \
            + [str(main)]
        self.env = dict(os.environ,
                        MICROPYPATH=":".join(str(p) for p in path) + ":.frozen",
                        UWB_SIM_CONNECTORS=str(args.connectors), UWB_SIM_CONTROL=str(control),
                        UWB_SIM_WEB=str(web or 0),
                        UWB_SIM_METER=args.meter, UWB_SIM_METER_START=str(args.meter_start))
        self.proc = None
        self.code = None
        self.done = threading.Event()
        self.stopping = False
        self.cuts = 0            # power cuts so far (power_cut())
        self._cut = False
        self.lock = threading.Lock()

    def run(self):
        """Run (and restart) the firmware until it exits for good or stop(); return its exit code."""
        (self.state / "settings.json").write_text(json.dumps(self.settings))  # merged at boot
        webpage.write(self.state / webpage.DEVICE_NAME)  # the page, as `make deploy` puts it in flash
        try:
            while True:
                with self.lock:
                    if self.stopping:
                        return self.code
                    self.proc = subprocess.Popen(self.cmd, cwd=self.state, env=self.env, stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 encoding="utf-8", errors="replace")
                for line in self.proc.stdout:
                    if self.log:
                        out(self.prefix, line.rstrip("\n"))
                self.code = self.proc.wait()
                with self.lock:
                    cut, self._cut = self._cut, False
                if cut and not self.stopping:
                    say(f"{self.settings['id']}: power cut: the firmware restarts on the same flash")
                    continue
                if self.stopping or self.code != RESET_EXIT:
                    if not self.stopping:
                        say(f"firmware exited with code {self.code}")
                    return self.code
                say(f"firmware reset (exit {RESET_EXIT}): restarting on the same state folder")
        finally:
            self.done.set()

    def power_cut(self):
        """Kill the firmware at once (no clean close, nothing flushed) and start it again on the
        same state folder, like a power cut and its return."""
        with self.lock:
            proc = self.proc
            if proc is None or proc.poll() is not None or self.stopping:
                raise RuntimeError("the firmware is not running")
            self._cut = True
            self.cuts += 1
            proc.kill()

    def stop(self):
        with self.lock:
            self.stopping = True
            proc = self.proc
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the firmware closes its CSMS link properly
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


class DemoFailed(Exception):
    pass


def demo(api, fw, csms):
    """Play one charging session through the control API; return the exit code."""
    def until(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            if fw.done.is_set():
                raise DemoFailed(f"the firmware exited (code {fw.code}) while waiting for {what}")
            try:
                return api.wait(predicate, timeout=min(1, max(0, deadline - time.monotonic())))
            except TimeoutError as e:
                if time.monotonic() >= deadline:
                    raise DemoFailed(f"timed out waiting for {what}: {e}") from None

    def line(c):
        num = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
        return (f"state {c['cp']}  {c['status']:<13} pwm {num(c['pwm_duty'], '.1f')} %  "
                f"offered {num(c['offered_a'], '.0f')} A  relay {'closed' if c['relay'] else 'open  '}  "
                f"power {num(c['power_w'], '.0f')} W  energy {num(c['meter_wh'], 'd')} Wh")

    def status_is(*statuses):
        return lambda s: connector(s)["status"] in statuses

    try:
        say("demo: waiting for the charge point to be registered (BootNotification Accepted)")
        until(lambda s: s["ocpp"]["registration"] == "Accepted", 60, "registration")
        say("demo: plug in the EV")
        api.ev(plug=True)
        until(status_is("Preparing"), 20, "status Preparing")
        time.sleep(2)
        say("demo: present card DEMO1234")
        api.rfid("DEMO1234")
        say("demo: the EV asks for up to 16 A")
        api.ev(charge=True, max_a=16)
        s = until(status_is("Charging"), 30, "status Charging (card accepted?)")
        start, started = connector(s), time.monotonic()
        say(line(start))
        while time.monotonic() - started < 20:
            time.sleep(2)
            say(line(connector(api.state())))
        say("demo: the EV is full and stops asking for energy")
        api.ev(charge=False)
        say(line(connector(until(status_is("SuspendedEV"), 20, "status SuspendedEV"))))
        time.sleep(2)
        say("demo: present card DEMO1234 again to end the session")
        api.rfid("DEMO1234")
        say(line(connector(until(status_is("Finishing"), 20, "status Finishing"))))
        time.sleep(2)
        say("demo: unplug")
        mark = csms.mark() if csms else 0
        api.ev(plug=False)
        end = connector(until(status_is("Available"), 30, "status Available"))
        if csms:  # let the CSMS log show the end of the session too
            try:
                csms.wait_for("StatusNotification", lambda p: p["status"] == "Available", since=mark, timeout=10)
            except TimeoutError:
                say("the CSMS got no StatusNotification Available")
        say(f"demo done: transaction {start['transaction_id']}, {time.monotonic() - started:.0f} s, "
            f"{(end['meter_wh'] or 0) - (start['meter_wh'] or 0)} Wh delivered")
        if csms:
            counts = {}
            for m in csms.messages(direction="in", kind="call"):
                counts[m.action] = counts.get(m.action, 0) + 1
            say("CSMS received: " + ", ".join(f"{a} {n}" for a, n in counts.items()))
            if csms.errors:
                say("CSMS schema errors: " + "; ".join(csms.errors))
                return 1
        return 0
    except DemoFailed as e:
        say(f"demo failed: {e}")
        return fw.code if fw.done.is_set() and fw.code else 1


def on_sigterm(signum, frame):
    raise KeyboardInterrupt  # same clean stop as Ctrl-C


def fleet_ids(n):
    return [f"CP{i:03d}" for i in range(1, n + 1)]


def start_chargers(args, url, ids, state, link=True, log=True):
    """Start one firmware process per id (each in its own thread, flash folder STATE/ID when there
    are several, control port, and Link to the CSMS at URL when LINK); the classroom.Charger list."""
    from urllib.parse import urlsplit
    import classroom
    chargers = []
    for i, cp_id in enumerate(ids):
        folder = state if len(ids) == 1 else state / cp_id
        folder.mkdir(parents=True, exist_ok=True)
        control = (args.control if len(ids) == 1 and args.control else free_port())
        relay, fw_url = None, url
        if link:
            u = urlsplit(url)
            relay = classroom.Link(u.hostname, u.port or (443 if u.scheme == "wss" else 80))
            fw_url = f"{u.scheme}://127.0.0.1:{relay.port}{u.path}"
        fw = Firmware(args, fw_url, control, folder, id=cp_id, log=log, web=web_port(args, cp_id))
        threading.Thread(target=fw.run, name=f"firmware {cp_id}", daemon=True).start()
        chargers.append(classroom.Charger(cp_id, fw, SimApi(control), relay))
    return chargers


def web_port(args, cp_id=None):
    """The port of the firmware's own web page (printed), or 0 for none: --web, else a free one."""
    web = free_port() if args.web is None else args.web
    if web:
        say(f"web page{' of ' + cp_id if cp_id else ''}: http://127.0.0.1:{web}/ (admin password "
            f"{args.admin_password!r} on a fresh state folder)")
    return web


def open_panels(urls):
    """Print the panels' addresses; with a terminal and a browser, open them too (never blocks)."""
    for name, url in urls:
        say(f"{name}: {url}")
    if sys.stdin.isatty() and sys.stdout.isatty() and not os.environ.get("UWB_NO_BROWSER"):
        try:
            import webbrowser
            for _, url in urls[:2]:
                webbrowser.open(url)
        except Exception:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csms", metavar="URL", help="CSMS base URL (default: start the bundled demo CSMS)")
    p.add_argument("--id", default="CP001", help="charge point id (default CP001)")
    p.add_argument("--state", metavar="DIR", help="flash folder (default: a temporary one, removed at exit)")
    p.add_argument("--connectors", type=int, default=1, metavar="N")
    p.add_argument("--heapsize", metavar="SIZE", help="micropython heap, e.g. 112K")
    p.add_argument("--micropython", metavar="PATH",
                   help="the micropython binary (default: $UWB_MICROPYTHON, else the 32-bit build of make mp32)")
    p.add_argument("--control", type=int, metavar="PORT", help="control API port (default: a free one)")
    p.add_argument("--web", type=int, metavar="PORT", help="the firmware's web page port (default: a free one; 0: no web page)")
    p.add_argument("--admin-password", default="uwallbox-sim", metavar="PW",
                   help="the web page's admin password, set on a fresh state folder (default uwallbox-sim)")
    p.add_argument("--settings", metavar="FILE",
                   help="extra provisioning settings (JSON: security_profile, authorization_key, ca)")
    p.add_argument("--demo", action="store_true",
                   help="play a demo charging session, then exit (on a terminal: the panels stay up)")
    p.add_argument("--build", metavar="DIR", default=os.environ.get("UWB_SIM_BUILD"),
                   help="run the .mpy build in DIR (tools/build.py) instead of firmware/ and lib/")
    p.add_argument("--frozen", action="store_true", default=os.environ.get("UWB_SIM_FROZEN") == "1",
                   help="run the firmware frozen into the 32-bit binary (make mp32): boot.py and main.py "
                        "in the flash folder, no uwallbox or lib/ file on the path (default $UWB_SIM_FROZEN=1)")
    p.add_argument("--blocked", action="append", default=[], metavar="TAG",
                   help="idTag the bundled CSMS answers Blocked")
    p.add_argument("--meter", default="plant",
                   choices=("plant", "sdm630", "sdm120", "b23", "ct", "estimated"),
                   help="the energy meter: the plant's own (default), a Modbus RTU meter on a simulated "
                        "RS-485 line (sdm630, sdm120 on a single-phase board, b23), current "
                        "transformers (ct) or the estimate from the offer (estimated)")
    p.add_argument("--meter-start", type=int, default=0, metavar="WH",
                   help="the meter's lifetime register on a fresh state folder (kept there), Wh")
    p.add_argument("--fleet", type=int, metavar="N",
                   help="N chargers CP001..CPnnn against one CSMS, each with its flash folder, EV and panel")
    p.add_argument("--panels", action="store_true",
                   help="serve the charger panels with --csms too (on by default with the bundled CSMS)")
    p.add_argument("--panel-port", type=int, default=0, metavar="PORT",
                   help="port of the charger panels (default: a free one); the CSMS panel takes PORT+1 if free")
    args = p.parse_args()
    if args.frozen and not args.micropython:
        args.micropython = str(mpbin.MP32_FROZEN)
        if not mpbin.MP32_FROZEN.exists():
            sys.exit(f"sim | no frozen build at {mpbin.MP32_FROZEN}: run `make mp32`")
    args.micropython = micropython(args.micropython)
    if args.fleet is not None and args.fleet < 1:
        p.error("--fleet N: N >= 1")

    signal.signal(signal.SIGTERM, on_sigterm)
    state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="uwallbox-"))
    state.mkdir(parents=True, exist_ok=True)
    csms = fw = panels = csms_panel = None
    chargers = []
    try:
        if args.csms:
            url = args.csms.rstrip("/")
        else:
            from csms import Csms
            from classroom import BLOCKED
            quiet = args.fleet is not None and args.fleet > 1
            csms = Csms(blocked=list(args.blocked) + list(BLOCKED),
                        log=None if quiet else (lambda line: out("csms|", line))).start()
            url = csms.url
        with_panels = csms is not None or args.panels
        if args.fleet is None and not with_panels:  # as before: no relay, no panel
            control = args.control or free_port()
            say(f"charge point {args.id}, CSMS {url}, state folder {state}")
            say(f"control API: http://127.0.0.1:{control}/state")
            web = web_port(args)
            fw = Firmware(args, url, control, state, web=web)
            if args.build:
                say(f"running the build in {args.build}")
            if not args.demo:
                return fw.run()
            threading.Thread(target=fw.run, name="firmware", daemon=True).start()
            return demo(SimApi(control), fw, csms)
        import classroom
        from csms_panel import CsmsPanel
        ids = fleet_ids(args.fleet) if args.fleet else [args.id]
        say(f"{len(ids)} charge point(s) {ids[0]}{'..' + ids[-1] if len(ids) > 1 else ''}, CSMS {url}, "
            f"state folder {state}")
        chargers = start_chargers(args, url, ids, state, log=len(ids) == 1)
        if len(ids) == 1:
            say(f"control API: http://127.0.0.1:{chargers[0].api.port}/state")
            fw = chargers[0].fw
        if csms:
            try:
                csms_panel = CsmsPanel(csms, port=args.panel_port + 1 if args.panel_port else 0).start()
            except OSError:   # PORT+1 taken: any free one (its URL is printed)
                csms_panel = CsmsPanel(csms).start()
        panels = classroom.ChargerPanels(chargers, csms=csms, csms_panel=csms_panel, port=args.panel_port).start()
        urls = [("charger panel" + (" " + c.id if len(ids) > 1 else ""), panels.url_of(c.id)) for c in chargers]
        if csms_panel:
            urls.insert(1, ("central-system panel", csms_panel.url))
        if len(ids) > 1:
            urls.insert(0, ("classroom (all panels)", panels.url))
        open_panels(urls)
        if args.demo and len(ids) == 1:
            code = demo(chargers[0].api, fw, csms)
            if not (sys.stdin.isatty() and sys.stdout.isatty()):
                return code
            say("the panels stay up: drive the charger from them; Ctrl-C ends")
        threading.Event().wait()
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        stoppers = [threading.Thread(target=c.fw.stop) for c in chargers]  # all at once: a fleet stops in seconds
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        if fw and not chargers:
            fw.stop()
            fw.done.wait(5)
        for c in chargers:
            c.fw.done.wait(5)
            if c.link:
                c.link.close()
        for srv in (panels, csms_panel):
            if srv:
                srv.stop()
        if csms:
            csms.stop()
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
