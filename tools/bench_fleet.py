#!/usr/bin/env python3
"""How many simulated chargers fit on this machine (classroom mode, `sim/launch.py --fleet N`).

    tools/bench_fleet.py [--sizes 10,30] [--window 10] [--quick]     (a row of `make bench` too)

For each fleet size N: start N firmware processes (each with its flash folder, EV and Link) against
one bundled CSMS, as `sim/launch.py --fleet N` does, and measure
  - boot_s: time from the start to every charger's BootNotification answered Accepted;
  - charging_s: then every EV plugs in, presents a card and asks for 16 A: time to all Charging;
  - idle / charging CPU: utime+stime (/proc) of the N micropython processes over WINDOW seconds
    (registered and idle, then all charging), in cores, and of this process (the CSMS, the relays);
  - rss: resident memory of the N processes (VmRSS), total and per charger;
and estimate how many chargers the machine holds (its cores at 70 % and its memory at 70 %).
Prints one JSON object (stdout); progress on stderr.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "sim"), str(ROOT / "tools")]
import launch  # noqa: E402  (sim/launch.py)
from csms import Csms  # noqa: E402
from simapi import connector  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def say(line):
    print(f"bench_fleet | {line}", file=sys.stderr, flush=True)


def cpu_s(pid):
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def mem_total_kb():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def cpu_window(pids, window):
    """(cores used by PIDS, cores used by this process) over WINDOW seconds."""
    a = {p: cpu_s(p) for p in pids}
    s0, t0 = os.times(), time.monotonic()
    time.sleep(window)
    s1, dt = os.times(), time.monotonic() - t0
    used = sum(cpu_s(p) - a[p] for p in pids)
    return used / dt, ((s1.user - s0.user) + (s1.system - s0.system)) / dt


def run(n, window, micropython, timeout):
    args = launch.argparse.Namespace(id="CP001", settings=None, build=None, micropython=micropython,
                                     heapsize=None, connectors=1, control=None, frozen=False, web=0,
                                     admin_password=None, meter="plant", meter_start=0)
    state = Path(tempfile.mkdtemp(prefix="uwallbox-fleet-"))
    csms = Csms(log=None).start()
    chargers = []
    try:
        t0 = time.monotonic()
        chargers = launch.start_chargers(args, csms.url, launch.fleet_ids(n), state, log=False)
        ids = {c.id for c in chargers}

        def accepted():
            return {m.cp_id for m in csms.messages(action="BootNotification", direction="out", kind="result")
                    if m.payload.get("status") == "Accepted"}
        deadline = t0 + timeout
        while not ids <= accepted():
            dead = [c.id for c in chargers if c.fw.done.is_set()]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{n} chargers: {len(accepted() & ids)} Accepted; exited: {dead}")
            time.sleep(0.05)
        boot_s = time.monotonic() - t0
        say(f"{n} chargers: all Accepted in {boot_s:.1f} s")
        pids = [c.fw.proc.pid for c in chargers]
        time.sleep(1)
        idle, idle_self = cpu_window(pids, window)
        rss = [rss_kb(p) for p in pids]
        t1 = time.monotonic()
        for i, c in enumerate(chargers):
            c.api.ev(plug=True, charge=True, max_a=16)
            c.api.rfid(f"FLEET{i:03d}")
        for c in chargers:
            c.api.wait(lambda s: connector(s)["status"] == "Charging" and connector(s)["relay"],
                       timeout=max(5, deadline - time.monotonic() + 60))
        charging_s = time.monotonic() - t1
        say(f"{n} chargers: all Charging {charging_s:.1f} s later")
        busy, busy_self = cpu_window(pids, window)
        return {"chargers": n, "boot_s": round(boot_s, 2), "charging_s": round(charging_s, 2),
                "idle_cores": round(idle, 3), "charging_cores": round(busy, 3),
                "launcher_cores_idle": round(idle_self, 3), "launcher_cores_charging": round(busy_self, 3),
                "rss_mb_total": round(sum(rss) / 1024, 1), "rss_mb_per_charger": round(sum(rss) / len(rss) / 1024, 2),
                "csms_errors": len(csms.errors)}
    finally:
        stoppers = [threading.Thread(target=c.fw.stop) for c in chargers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(15)
        for c in chargers:
            if c.link:
                c.link.close()
        csms.stop()
        shutil.rmtree(state, ignore_errors=True)


def measure(sizes, window, micropython=None, timeout=180):
    """Run each fleet size; the figures of every run and how many chargers the machine holds."""
    mp = launch.micropython(micropython)
    runs = [run(n, window, mp, timeout) for n in sizes]
    big = runs[-1]
    cores = os.cpu_count() or 1
    per_core = big["chargers"] / max(big["charging_cores"] + big["launcher_cores_charging"], 1e-6)
    mem = mem_total_kb() / 1024
    result = {
        "cores": cores, "mem_total_mb": round(mem), "window_s": window, "runs": runs,
        # chargers the machine holds all charging at once, keeping 30 % of its cores and memory free
        "fit_by_cpu": int(per_core * cores * 0.7),
        "fit_by_memory": int(mem * 0.7 / max(big["rss_mb_per_charger"], 1e-6)),
    }
    result["fit"] = min(result["fit_by_cpu"], result["fit_by_memory"])
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10,30", help="fleet sizes, comma-separated (default 10,30)")
    p.add_argument("--window", type=float, default=10, help="CPU measuring window, s (default 10)")
    p.add_argument("--timeout", type=float, default=180, help="time allowed to all Accepted, s")
    p.add_argument("--quick", action="store_true", help="3 chargers, a 2 s window (the smoke test)")
    p.add_argument("--micropython", metavar="PATH")
    a = p.parse_args(argv)
    sizes = [3] if a.quick else [int(x) for x in a.sizes.split(",")]
    print(json.dumps(measure(sizes, 2 if a.quick else a.window, a.micropython, a.timeout), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
