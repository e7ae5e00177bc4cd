"""Row "smart": the composite schedule of 10 charging profiles of 24 periods each, timed under
micropython by tools/bench/schedule_mpy.py: GetCompositeSchedule over 24 h (every period boundary,
no cut at ChargingScheduleMaxPeriods), and one offers() (what the Scheduler task computes at
each boundary)."""
import json
from pathlib import Path

from .launch import run_mpy
from .measure import spread

SCRIPT = Path(__file__).with_name("schedule_mpy.py")


def measure(runs):
    r = run_mpy([str(SCRIPT), str(runs)], timeout=120)
    if r.returncode:
        raise RuntimeError(f"{SCRIPT.name} failed:\n{r.stdout}{r.stderr}")
    d = json.loads(r.stdout.splitlines()[-1])
    return {"profiles": 10, "periods_each": 24, "composite_periods": d["periods"],
            "composite_ms": spread([us / 1000 for us in d["composite_us"]]),
            "offers_us": spread(d["offers_us"])}
