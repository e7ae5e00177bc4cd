# MicroPython unit tests of the Smart Charging handlers and the Scheduler (uwallbox/profiles/smartcharging.py)
# on a stand-in app: validation, replacement, persistence, clearing, TxProfiles, the pilot task.
import asyncio
import gc
import os

from uwallbox.clock import Clock, iso
from uwallbox.profiles import smartcharging as sc
from uwallbox.station.config import Config
from uwallbox.station.connector import Transaction


class FakeEvse:
    def __init__(self):
        self.max_a = 32.0
        self.limit_a = None


class FakeConnector:
    def __init__(self, cid):
        self.id = cid
        self.evse = FakeEvse()
        self.tx = None
        self.pending = None
        self.transaction_id = None

    def begin(self, ref, t0, tid=None):
        self.tx = Transaction(ref, "TAG", None, 0, t0, [])
        self.transaction_id = tid


class FakeApp:
    def __init__(self, n=1):
        self.config = Config({"NumberOfConnectors": n, "Phases": 3})
        self.clock = Clock()
        self.connectors = [FakeConnector(i + 1) for i in range(n)]
        self.evses = [c.evse for c in self.connectors]
        self.smart = None
        self.tasks = {}

    def connector(self, cid):
        return self.connectors[cid - 1] if 1 <= cid <= len(self.connectors) else None

    def spawn(self, name, coro):
        t = self.tasks[name] = asyncio.create_task(coro)
        return t


def profile(pid=1, purpose="TxDefaultProfile", stack=0, periods=((0, 16),), unit="A", kind="Relative",
            start=None, **kw):
    sched = {"chargingRateUnit": unit,
             "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods]}
    if start is not None:
        sched["startSchedule"] = iso(start)
    p = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
         "chargingProfileKind": kind, "chargingSchedule": sched}
    p.update(kw)
    return p


def send(app, cid, p):
    return sc.set_charging_profile(app, {"connectorId": cid, "csChargingProfiles": p})["status"]


def files():
    try:
        return sorted(os.listdir(sc.DIR))
    except OSError:
        return None


async def test_rejections():
    app = FakeApp()
    app.connectors[0].begin(1, 0, tid=7)
    bad = [
        (1, profile(purpose="ChargePointMaxProfile")),  # CP max on a connector
        (2, profile()),  # no connector 2
        (0, profile(purpose="TxProfile")),  # TxProfile on connector 0
        (1, profile(purpose="TxProfile", transactionId=8)),  # not the running transaction
        (1, profile(transactionId=7)),  # transactionId in a TxDefaultProfile
        (0, profile(stack=11)),  # beyond ChargeProfileMaxStackLevel (10)
        (0, profile(stack=-1)),
        (0, profile(periods=[(i * 60, 16) for i in range(25)])),  # beyond ChargingScheduleMaxPeriods
        (0, profile(periods=())),
        (0, profile(periods=((60, 16),))),  # does not start at 0
        (0, profile(periods=((0, 16), (600, 10), (600, 8)))),  # does not ascend
        (0, profile(periods=((0, -1),))),
        (0, profile(kind="Recurring", recurrencyKind="Daily")),  # no startSchedule
        (0, profile(validFrom="2025-01-02T00:00:00Z", validTo="2025-01-01T00:00:00Z")),
    ]
    for cid, p in bad:
        assert send(app, cid, p) == "Rejected", (cid, p)
    p = profile()
    p["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = 4
    assert send(app, 0, p) == "Rejected"
    app.connectors[0].tx = None
    assert send(app, 1, profile(purpose="TxProfile")) == "Rejected"  # no transaction
    assert app.smart is None and files() is None  # nothing installed, nothing started


async def test_accepted_profiles_persist():
    app = FakeApp()
    assert send(app, 0, profile(1, "ChargePointMaxProfile", periods=((0, 20),))) == "Accepted"
    assert send(app, 1, profile(2, unit="W", periods=((0, 11040),))) == "Accepted"
    assert files() == ["1.json", "2.json"]
    for name, text in (("3.json.tmp", "{"), ("4.json", "{}"), ("5.json", "[1")):  # cut short, not ours
        with open(sc.DIR + "/" + name, "w") as f:
            f.write(text)
    again = sc.Scheduler(FakeApp())  # after a reboot
    assert sorted((q.id, q.cid, q.purpose) for q in again.profiles) == [(1, 0, 0), (2, 1, 1)]
    assert files() == ["1.json", "2.json"]


async def test_replacement_by_id_and_by_stack_level():
    app = FakeApp(2)
    assert send(app, 0, profile(1, stack=1)) == "Accepted"
    assert send(app, 0, profile(1, stack=2, periods=((0, 10),))) == "Accepted"  # same id
    assert [(q.id, q.stack) for q in app.smart.profiles] == [(1, 2)]
    assert send(app, 0, profile(2, stack=2)) == "Accepted"  # same purpose, level, connector
    assert [q.id for q in app.smart.profiles] == [2] and files() == ["2.json"]
    assert send(app, 1, profile(3, stack=2)) == "Accepted"  # another connector: both stay
    assert send(app, 0, profile(4, "ChargePointMaxProfile", stack=2)) == "Accepted"  # another purpose
    assert sorted(q.id for q in app.smart.profiles) == [2, 3, 4] and files() == ["2.json", "3.json", "4.json"]


async def test_max_profiles_installed():
    app = FakeApp()
    for i in range(20):
        purpose = ("TxDefaultProfile", "ChargePointMaxProfile")[i // 11]
        assert send(app, 0, profile(i + 1, purpose, stack=i % 11)) == "Accepted", i
    assert send(app, 1, profile(99)) == "Rejected"
    assert send(app, 0, profile(5, stack=4, periods=((0, 8),))) == "Accepted"  # a replacement fits
    assert len(app.smart.profiles) == 20 and len(files()) == 20


async def test_clear():
    app = FakeApp(2)
    clear = lambda **kw: sc.clear_charging_profile(app, kw)["status"]  # noqa: E731
    assert clear() == "Unknown"  # nothing installed
    send(app, 0, profile(1, "ChargePointMaxProfile"))
    send(app, 0, profile(2, stack=1))
    send(app, 1, profile(3, stack=1))
    send(app, 2, profile(4, stack=2))
    assert clear(id=9) == "Unknown"
    assert clear(id=2) == "Accepted" and sorted(q.id for q in app.smart.profiles) == [1, 3, 4]
    assert clear(connectorId=1, chargingProfilePurpose="ChargePointMaxProfile") == "Unknown"
    assert clear(connectorId=1, chargingProfilePurpose="TxDefaultProfile", stackLevel=1) == "Accepted"
    assert clear(stackLevel=2) == "Accepted" and [q.id for q in app.smart.profiles] == [1]
    assert clear(chargingProfilePurpose="ChargePointMaxProfile") == "Accepted"
    assert app.smart.profiles == [] and files() is None  # the folder goes with the last profile
    send(app, 1, profile(5))
    send(app, 2, profile(6))
    assert clear() == "Accepted" and files() is None  # no filter: all


async def test_composite_schedule_answer():
    app = FakeApp()
    get = lambda **kw: sc.get_composite_schedule(app, kw)  # noqa: E731
    assert get(connectorId=2, duration=60) == {"status": "Rejected"}
    assert get(connectorId=-1, duration=60) == {"status": "Rejected"}
    r = get(connectorId=1, duration=600)  # no profile: the board's current
    assert r["status"] == "Accepted" and r["connectorId"] == 1, r
    s = r["chargingSchedule"]
    assert r["scheduleStart"] == s["startSchedule"] and s["duration"] == 600, r
    assert s["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 32.0}], r
    send(app, 0, profile(1, periods=((0, 16), (300, 10))))
    s = get(connectorId=0, duration=600, chargingRateUnit="W")["chargingSchedule"]
    assert s["chargingRateUnit"] == "W" and s["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 11040.0}, {"startPeriod": 300, "limit": 6900.0}], s


async def test_tx_profile_ends_with_its_transaction():
    app = FakeApp()
    c = app.connectors[0]
    c.begin(3, app.clock.now(), tid=70)
    assert send(app, 1, profile(1, "TxProfile", periods=((0, 10),), transactionId=70)) == "Accepted"
    assert send(app, 1, profile(2, stack=0, periods=((0, 20),))) == "Accepted"
    app.smart.apply()
    assert c.evse.limit_a == 10.0
    c.tx = None
    app.smart.apply()
    assert [q.id for q in app.smart.profiles] == [2] and files() == ["2.json"]
    assert c.evse.limit_a == 20.0


async def test_stale_tx_profiles_go_at_boot():
    app = FakeApp()
    app.connectors[0].begin(3, app.clock.now())
    send(app, 1, profile(1, "TxProfile"))
    app2 = FakeApp()  # rebooted: the transaction ended with the power
    sc.scheduler(app2).apply()
    assert app2.smart.profiles == [] and files() is None


async def test_remote_start_profile():
    app = FakeApp()
    p = profile(1, "TxProfile", periods=((0, 8),))
    assert sc.acceptable(app, 1, p)
    assert not sc.acceptable(app, 1, profile(2))  # not a TxProfile
    assert not sc.acceptable(app, 1, profile(3, "TxProfile", stack=20))
    c = app.connectors[0]
    c.pending = ("TAG", {}, 0)  # waiting for the plug
    sc.remote_profile(app, 1, p)
    app.smart.apply()
    assert app.smart.profiles == [] and 1 in app.smart.pending
    c.pending = None
    c.begin(4, app.clock.now())
    app.smart.apply()
    assert [(q.id, q.ref) for q in app.smart.profiles] == [(1, 4)] and c.evse.limit_a == 8.0
    sc.remote_profile(app, 1, profile(5, "TxProfile"))  # its transaction never starts
    c.tx = None
    app.smart.apply()
    assert app.smart.pending == {} and app.smart.profiles == []


async def test_pilot_task_follows_profiles_boundaries_and_clock():
    app = FakeApp()
    e = app.evses[0]
    c = app.connectors[0]
    c.begin(1, app.clock.now())
    now = int(app.clock.now())
    send(app, 1, profile(1, kind="Absolute", start=now, periods=((0, 16), (2, 10), (3600, 4))))
    await asyncio.sleep_ms(50)
    assert e.limit_a == 16.0, e.limit_a  # at once
    while e.limit_a == 16.0:  # at the boundary, 2 s after the start
        await asyncio.sleep_ms(2)
    late = (app.clock.now() - now) * 1000 + app.clock.subsec_ms() - 2000  # ms after the boundary
    assert e.limit_a == 10.0 and 0 <= late < 100, (e.limit_a, late)
    app.clock.advance(3600)  # a clock jump
    await asyncio.sleep_ms(50)
    assert e.limit_a == 0.0, e.limit_a  # 4 A: pause
    send(app, 1, profile(2, stack=1, periods=((0, 13),)))
    await asyncio.sleep_ms(50)
    assert e.limit_a == 13.0, e.limit_a
    sc.clear_charging_profile(app, {})
    await asyncio.sleep_ms(50)
    assert e.limit_a is None, e.limit_a


async def test_task_ends_with_the_last_profile():
    """The last profile gone, the Scheduler lifts the limits and its task ends: smartcharging.py
    and schedule.py leave the heap; the next profile starts a Scheduler again."""
    import sys
    app = FakeApp()
    e = app.evses[0]
    app.connectors[0].begin(1, app.clock.now())
    assert send(app, 1, profile(1, periods=((0, 10),))) == "Accepted"
    task = app.tasks["smart-charging"]
    for _ in range(5):
        await asyncio.sleep_ms(0)
    assert e.limit_a == 10.0 and app.clock.listener is not None and not task.done()
    assert sc.clear_charging_profile(app, {})["status"] == "Accepted"
    await asyncio.wait_for_ms(task, 1000)  # it ends by itself
    assert e.limit_a is None and app.smart is None and app.clock.listener is None
    assert "smart-charging" not in app.tasks
    assert "uwallbox.profiles.smartcharging" not in sys.modules
    assert "uwallbox.station.schedule" not in sys.modules
    sc2 = __import__("uwallbox.profiles.smartcharging", None, None, ("scheduler",))
    assert sc2.set_charging_profile(app, {"connectorId": 1, "csChargingProfiles": profile(2)}) \
        == {"status": "Accepted"}
    for _ in range(5):
        await asyncio.sleep_ms(0)
    assert e.limit_a == 16.0 and app.smart is not None and not app.tasks["smart-charging"].done()


async def test_watts_follow_the_measured_phases_in_the_safe_direction_only():
    # a limit of 11040 W on 230 V. The meter's phases_in_use never lowers the divisor below the
    # board's wiring (an EV on one phase may switch to three: 48 A would then draw 33 kW); it only
    # raises it (a board that says 1 phase but whose meter sees current on 3: 16 A, not 48 A)
    app = FakeApp(2)
    volts = app.config["NominalVoltage"]
    a, b = app.connectors
    a.begin(1, app.clock.now())
    b.begin(2, app.clock.now())
    send(app, 0, profile(1, periods=((0, 11040),), unit="W"))
    s = sc.scheduler(app)
    a.phases_in_use, b.phases_in_use = 1, None   # on one phase / a meter that does not tell
    s.apply()
    per3 = 11040 / (volts * 3)
    assert [abs(e.limit_a - per3) < 0.01 for e in app.evses] == [True, True], app.evses[0].limit_a
    app.config.fixed["Phases"] = 1   # the board claims one phase
    s.apply()
    assert app.evses[1].limit_a == 32.0, app.evses[1].limit_a   # 48 A, capped by max_a
    a.phases_in_use = 3   # ... but the meter sees three: the lower current
    s.apply()
    assert abs(app.evses[0].limit_a - per3) < 0.01, app.evses[0].limit_a
    sc.clear_charging_profile(app, {})


async def test_full_table_ram():
    # MaxChargingProfilesInstalled (20) profiles of ChargingScheduleMaxPeriods (24) periods: their
    # RAM (10.7 KB on the 32-bit build, like the ESP32; 14.2 KB on the 64-bit port) and a week's
    # composite schedule
    app = FakeApp(2)
    gc.collect()
    before = gc.mem_alloc()
    for i in range(20):
        p = profile(i + 1, stack=i % 10, periods=[(k * 3600, 6 + (i + k) % 20) for k in range(24)],
                    kind="Recurring", recurrencyKind="Daily", start=app.clock.now() + i * 600)
        assert send(app, i // 10, p) == "Accepted", i
    gc.collect()
    used = gc.mem_alloc() - before
    assert used < 16000, used
    r = sc.get_composite_schedule(app, {"connectorId": 1, "duration": 7 * 86400})
    assert len(r["chargingSchedule"]["chargingSchedulePeriod"]) == 24, r
