# Run by tools/bench/smart.py under micropython, firmware/ on MICROPYPATH: times
# uwallbox.station.schedule for 10 charging profiles of 24 periods each; prints one JSON line.
#   micropython schedule_mpy.py RUNS
import json
import sys
import time

from uwallbox.clock import iso
from uwallbox.station.schedule import compact, composite, offers

T0 = 1736121600  # Monday 2025-01-06T00:00:00Z
H = 3600
VOLTS = 230
IDLE = [(None, None, False, 32)]  # one connector, no transaction


def profile(k):
    """Profile K: nine TxDefaultProfiles (stackLevel k) of 10-minute periods starting 2 h apart,
    and a ChargePointMaxProfile of hourly periods: every one wins some of the day."""
    cpmax = k == 9
    step = H if cpmax else 600
    periods = [{"startPeriod": i * step, "limit": 6 + (i * 7 + k * 3) % 27} for i in range(24)]
    return compact({"chargingProfileId": k + 1, "stackLevel": 0 if cpmax else k,
                    "chargingProfilePurpose": "ChargePointMaxProfile" if cpmax else "TxDefaultProfile",
                    "chargingProfileKind": "Absolute", "chargingSchedule": {
                        "chargingRateUnit": "A", "startSchedule": iso(T0 + (0 if cpmax else k * 2 * H)),
                        "chargingSchedulePeriod": periods}}, 0)


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.ticks_us()
        fn()
        out.append(time.ticks_diff(time.ticks_us(), t))
    return out


profiles = [profile(k) for k in range(10)]
day = lambda: composite(profiles, IDLE, 1, T0, 24 * H, "A", VOLTS, 3, 1000)  # noqa: E731
runs = int(sys.argv[1])
print(json.dumps({"composite_us": timed(day, runs), "periods": len(day()[0]),
                  "offers_us": timed(lambda: offers(profiles, IDLE, T0 + 5 * H, T0, VOLTS), runs * 10)}))
