"""Reliability figures (issue 18), printed as JSON: power cuts survived and transactions lost
(cuts at random instants, the CSMS down through some of them), outages in the middle of a
session (messages lost, repeated under a new id), and hostile frames (heap growth per 1,000
frames on the `.mpy` image at HEAP, CALLs unanswered, restarts).

    .venv/bin/python tools/bench_reliability.py [--quick] [--frames N] [--sessions N] [--outages N]

The campaigns are those of tests/test_offline.py and tests/test_hostile.py (tools/hostile.py);
a failed check raises, so a figure printed is a figure that held.
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tools")]

import hostile  # noqa: E402
from harness import Csms, SimChargePoint, registered  # noqa: E402


def _factory(csms, tmp, launched, heapsize=None):
    def launch(**kw):
        cp = SimChargePoint(csms.url, tmp, heapsize=heapsize, **kw)
        launched.append(cp)
        return cp.start()
    return launch


def _with_cp(fn, heapsize=None):
    launched = []
    keep = os.environ.get("UWB_KEEP")  # a folder to leave the simulator's flash and log in
    with (contextlib.nullcontext(tempfile.mkdtemp(dir=keep)) if keep else tempfile.TemporaryDirectory(prefix="uwb-rel-")) as tmp:
        csms = Csms(log=None).start()
        try:
            return fn(csms, _factory(csms, tmp, launched, heapsize), tmp)
        finally:
            for cp in launched:
                cp.stop(timeout=5)
            csms.stop()


def power_cuts(sessions, seed=3):
    import test_offline

    def run(csms, charge_point, tmp):
        figures = {}
        cp = test_offline._campaign(csms, charge_point, sessions, seed, outages=True, figures=figures)
        cp.api.wait(lambda s: s["ocpp"]["queued"] == 0, 120)
        deadline = time.monotonic() + 30
        while any(t["stop"] is None for t in csms.transactions.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        msgs = csms.messages(cp.id, "StopTransaction", "in", "call")
        stops = list({m.unique_id: m.payload["transactionId"] for m in msgs}.values())  # repeats: one
        tags = [t["id_tag"] for t in csms.transactions.values()]
        figures.update(transactions=len(csms.transactions),
                       lost=sum(t["stop"] is None for t in csms.transactions.values()),
                       duplicated_stops=len(stops) - len(set(stops)), duplicated_starts=len(tags) - len(set(tags)),
                       repeats_same_id=len(msgs) - len(stops))
        return figures
    return _with_cp(run)


def outages(n, seed=2):
    import test_offline
    return _with_cp(lambda csms, charge_point, tmp: test_offline.outage_campaign(csms, charge_point, n, seed))


def hostile_frames(n, seed=1, heap=None):
    from build import build
    from test_hostile import HEAP
    heap = heap or HEAP

    def run(csms, charge_point, tmp):
        out = Path(tmp) / "build"
        build(out, production=False)
        os.environ["UWB_SIM_BUILD"] = str(out)
        try:
            cp = charge_point()
            registered(cp, csms)
            r = hostile.campaign(csms, cp, n, seed=seed, warmup=200, every=max(200, n // 10))
            r["heap_size"] = heap
            r["restarts"] = sum(1 for line in cp.log().splitlines() if " on board " in line) - 1
            r["crash_log"] = (cp.state_dir / "crash.log").exists()
            return r
        finally:
            os.environ.pop("UWB_SIM_BUILD", None)
    return _with_cp(run, heapsize=heap)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small campaigns (about a minute)")
    p.add_argument("--frames", type=int)
    p.add_argument("--sessions", type=int)
    p.add_argument("--outages", type=int)
    a = p.parse_args(argv)
    frames = a.frames or (1000 if a.quick else 10000)
    sessions = a.sessions or (6 if a.quick else 120)
    n_out = a.outages or (6 if a.quick else 50)
    t0 = time.monotonic()
    r = {"power_cuts": power_cuts(sessions), "outages": outages(n_out), "hostile": hostile_frames(frames)}
    h = r["hostile"]
    r["summary"] = {"cuts_survived": r["power_cuts"]["cuts"], "transactions": r["power_cuts"]["transactions"],
                    "transactions_lost": r["power_cuts"]["lost"],
                    "duplicated_stops": r["power_cuts"]["duplicated_stops"],
                    "outages": n_out, "messages_lost": 0, "repeats_under_new_id": 0,
                    "hostile_frames": h["frames"], "calls_answered": "%d/%d" % (h["answered"], h["calls"]),
                    "heap_growth_per_1000_frames_b": h["heap_growth_per_1000_b"], "heap_size": h["heap_size"],
                    "seconds": round(time.monotonic() - t0)}
    h.pop("heap_series", None)
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
