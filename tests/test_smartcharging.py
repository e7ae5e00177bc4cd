"""Smart Charging end to end in the simulator (the handlers under MicroPython:
tests/mpy/smartcharging_cases.py)."""
import time
from datetime import datetime, timezone

import pytest

import harness
from harness import connector, status


# -- end to end: the firmware in the simulator against the test CSMS --------------------------------
e2e = pytest.mark.timeout(120)
H = 3600
V3 = 230 * 3  # W per A on three phases


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def iec_duty(amps):
    return amps / 0.6 if amps <= 51 else amps / 2.5 + 64


def profile(pid, purpose="TxDefaultProfile", periods=((0, 16),), stack=0, unit="A", kind="Relative",
            start=None, duration=None, **extra):
    """csChargingProfiles; PERIODS: (startPeriod, limit); START: Unix seconds (Absolute)."""
    sched = {"chargingRateUnit": unit,
             "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods]}
    if start is not None:
        sched["startSchedule"] = iso(start)
    if duration is not None:
        sched["duration"] = duration
    return {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": sched, **extra}


def set_profile(csms, cp, cid, p):
    return csms.call(cp.id, ("SetChargingProfile", {"connectorId": cid, "csChargingProfiles": p}))["status"]


def composite(csms, cp, cid, duration, unit=None):
    """(scheduleStart as Unix seconds, [(startPeriod, limit)]) of GetCompositeSchedule."""
    req = {"connectorId": cid, "duration": duration}
    if unit:
        req["chargingRateUnit"] = unit
    r = csms.call(cp.id, ("GetCompositeSchedule", req))
    assert r["status"] == "Accepted" and r["connectorId"] == cid, r
    s = r["chargingSchedule"]
    assert s["chargingRateUnit"] == (unit or "A") and s["duration"] == duration, r
    return unix(r["scheduleStart"]), [(q["startPeriod"], q["limit"]) for q in s["chargingSchedulePeriod"]]


def offering(cp, amps, cid=1, timeout=1.0):
    """Wait until connector CID offers AMPS on the pilot (0: no PWM offer); its GET /state entry."""
    def ok(s):
        c = connector(s, cid)
        duty = 100.0 if amps == 0 else iec_duty(amps)
        return (c["offered_a"] == pytest.approx(amps, abs=0.05)
                and c["pwm_duty"] == pytest.approx(duty, abs=0.1))
    return connector(cp.api.wait(ok, timeout), cid)



def online(csms, charge_point, connectors=1, **launch):
    """A simulated charge point, registered, its connectors Available."""
    cp = charge_point(connectors=connectors, **launch)
    harness.online(csms, cp, connectors)
    return cp


def charge(csms, cp, cid=1, tag="TAG0001", max_a=32):
    """Plug an EV into connector CID, present TAG, let it charge; the transactionId."""
    mark = csms.mark()
    cp.api.ev(connector=cid, plug=True)
    cp.api.wait(lambda s: connector(s, cid)["cp"] == "B", 10)
    cp.api.rfid(tag)
    cp.api.ev(connector=cid, charge=True, max_a=max_a)
    csms.wait_for("StatusNotification", status(cid, "Charging"), cp_id=cp.id, since=mark)
    state = cp.api.wait(lambda s: connector(s, cid)["transaction_id"] is not None, 10)
    return connector(state, cid)["transaction_id"]


@e2e
def test_composite_schedule_stacking_capping_units(csms, charge_point):
    cp = online(csms, charge_point)
    b = int(time.time()) + 120  # B: the base of the schedules below, shortly after the request
    assert set_profile(csms, cp, 0, profile(1, "ChargePointMaxProfile", ((0, 20), (600, 14)),
                                            kind="Absolute", start=b)) == "Accepted"
    assert set_profile(csms, cp, 0, profile(2, periods=((0, 16),), kind="Absolute",
                                            start=b - H)) == "Accepted"
    assert set_profile(csms, cp, 1, profile(3, periods=((0, 8 * V3),), stack=1, unit="W", kind="Absolute",
                                            start=b + 300, duration=600)) == "Accepted"
    assert set_profile(csms, cp, 0, profile(4, periods=((0, 12),), stack=2, validFrom=iso(b + 1200),
                                            validTo=iso(b + 1500))) == "Accepted"
    # B..B+300 16 A (CP max 20) | +300..+900 8 A (stack 1, in W) | +900.. CP max 14 A,
    # except +1200..+1500 12 A (stack 2, valid then)
    def expected(s, scale=1.0):
        return [(0, 16.0 * scale), (b + 300 - s, 8.0 * scale), (b + 900 - s, 14.0 * scale),
                (b + 1200 - s, 12.0 * scale), (b + 1500 - s, 14.0 * scale)]
    s, periods = composite(csms, cp, 1, 1800)
    assert periods == expected(s), (s, periods)
    s, periods = composite(csms, cp, 1, 1800, "W")
    assert periods == expected(s, V3), (s, periods)
    s, periods = composite(csms, cp, 0, 1800)  # the charge point as a whole: its one connector
    assert periods == expected(s), (s, periods)
    no_connector = {"connectorId": 2, "duration": 60}
    assert csms.call(cp.id, ("GetCompositeSchedule", no_connector)) == {"status": "Rejected"}


@e2e
def test_composite_schedule_daily_recurrence(csms, charge_point):
    cp = online(csms, charge_point)
    now = int(time.time())
    midnight = now - now % 86400
    # every night 22:00-06:00: 10 A until 02:00, then 20 A; 32 A (the board) by day
    night = profile(1, periods=((0, 10), (4 * H, 20)), kind="Recurring", recurrencyKind="Daily",
                    start=midnight - 2 * H - 86400 * 3, duration=8 * H)
    assert set_profile(csms, cp, 0, night) == "Accepted"
    s, periods = composite(csms, cp, 1, 2 * 86400)

    def limit(t):
        hour = (t % 86400) // H
        return 10.0 if hour >= 22 or hour < 2 else 20.0 if hour < 6 else 32.0
    expected = [(0, limit(s))]
    for t in range(s - s % H + H, s + 2 * 86400, H):  # the pattern changes on whole hours only
        if limit(t) != expected[-1][1]:
            expected.append((t - s, limit(t)))
    assert periods == expected and len(periods) >= 6, periods


@e2e
def test_validation(csms, charge_point):
    cp = online(csms, charge_point, 2)
    rejected = [
        (1, profile(1, "ChargePointMaxProfile")),
        (0, profile(2, "TxProfile")),
        (1, profile(3, "TxProfile")),  # no transaction on connector 1
        (3, profile(4)),  # no connector 3
        (0, profile(5, stack=11)),  # ChargeProfileMaxStackLevel is 10
        (0, profile(6, periods=[(i * 60, 16) for i in range(25)])),  # ChargingScheduleMaxPeriods is 24
        (0, profile(7, periods=((30, 16),))),
        (0, profile(8, kind="Recurring", recurrencyKind="Daily")),  # no startSchedule
        (0, profile(9, transactionId=1)),
    ]
    for cid, p in rejected:
        assert set_profile(csms, cp, cid, p) == "Rejected", (cid, p)
    tx = charge(csms, cp, 1)
    assert set_profile(csms, cp, 1, profile(10, "TxProfile", transactionId=tx + 1)) == "Rejected"
    assert set_profile(csms, cp, 2, profile(11, "TxProfile")) == "Rejected"  # connector 2 is idle
    assert set_profile(csms, cp, 1, profile(12, "TxProfile", ((0, 10),), transactionId=tx)) == "Accepted"
    offering(cp, 10)
    clear = lambda **kw: csms.call(cp.id, ("ClearChargingProfile", kw))["status"]  # noqa: E731
    assert clear(id=99) == "Unknown"
    assert clear(connectorId=2, chargingProfilePurpose="TxProfile") == "Unknown"
    assert clear(connectorId=1, chargingProfilePurpose="TxProfile", stackLevel=0) == "Accepted"
    offering(cp, 32)
    assert clear() == "Unknown"


@e2e
def test_solar_surplus_follows_within_a_second(csms, charge_point):
    cp = online(csms, charge_point)
    for key, value in (("MeterValuesSampledData", "Energy.Active.Import.Register,Current.Offered"),
                       ("MeterValueSampleInterval", "1")):
        assert csms.call(cp.id, ("ChangeConfiguration", {"key": key, "value": value}))["status"] == "Accepted"
    tx = charge(csms, cp)
    offering(cp, 32)
    for limit in (16, 10, 24, 6, 13.5, 32, 7):  # the surplus of the moment, as evcc would send it
        assert set_profile(csms, cp, 1, profile(1, periods=((0, limit),))) == "Accepted"
        c = offering(cp, limit, timeout=1.0)
        assert c["status"] == "Charging" and c["relay"], c
    mark = csms.mark()

    def offered(p):
        return p.get("transactionId") == tx and any(
            v.get("measurand") == "Current.Offered" and float(v["value"]) == 7.0
            for mv in p["meterValue"] for v in mv["sampledValue"])
    csms.wait_for("MeterValues", offered, cp_id=cp.id, since=mark, timeout=10)
    assert cp.api.state()["violations"] == []


@e2e
def test_watt_limit_marked_one_phase_holds_on_a_three_phase_car(csms, charge_point):
    # The case: a TxDefaultProfile of 4140 W with numberPhases 1 became 18 A per phase
    # and a 3-phase car drew 12,420 W. The power drawn must stay within the limit.
    cp = online(csms, charge_point)
    p = profile(1, unit="W", periods=((0, 4140),))
    p["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    assert set_profile(csms, cp, 0, p) == "Accepted"
    charge(csms, cp, max_a=32)
    c = offering(cp, 6.0)
    cp.api.wait(lambda s: connector(s, 1)["power_w"] > 0, 10)
    c = connector(cp.api.state(), 1)
    assert c["relay"] and 0 < c["power_w"] <= 4140 + 1, c
    s, periods = composite(csms, cp, 1, 600, "W")
    assert periods == [(0, 4140.0)], periods
    s, periods = composite(csms, cp, 1, 600)
    assert periods == [(0, 6.0)], periods


@e2e
def test_remote_start_with_tx_profile(csms, charge_point):
    cp = online(csms, charge_point)
    cp.api.ev(plug=True, charge=True, max_a=32)
    tx_profile = profile(7, "TxProfile", ((0, 10), (H, 16)))
    answer = csms.call(cp.id, ("RemoteStartTransaction", {"connectorId": 1, "idTag": "REMOTE01",
                                                           "chargingProfile": tx_profile}))
    assert answer == {"status": "Accepted"}
    csms.wait_for("StartTransaction", cp_id=cp.id)
    csms.wait_for("StatusNotification", status(1, "Charging"), cp_id=cp.id)
    offering(cp, 10, timeout=5)
    s, periods = composite(csms, cp, 1, 2 * H)
    assert len(periods) == 2 and periods[0] == (0, 10.0) and periods[1][1] == 16.0, periods
    assert abs(s + periods[1][0] - H - unix(csms.wait_for("StartTransaction", cp_id=cp.id)["timestamp"])) <= 1
    tx = connector(cp.api.state())["transaction_id"]
    assert csms.call(cp.id, ("RemoteStopTransaction", {"transactionId": tx})) == {"status": "Accepted"}
    csms.wait_for("StopTransaction", cp_id=cp.id)
    assert composite(csms, cp, 1, 60)[1] == [(0, 32.0)]  # the TxProfile ended with its transaction
    assert csms.call(cp.id, ("ClearChargingProfile", {"id": 7})) == {"status": "Unknown"}
    bad = profile(8, "TxDefaultProfile")
    assert csms.call(cp.id, ("RemoteStartTransaction", {"connectorId": 1, "idTag": "REMOTE01",
                                                         "chargingProfile": bad})) == {"status": "Rejected"}


@e2e
def test_period_boundary_on_clock_advance(csms, charge_point):
    cp = online(csms, charge_point)
    charge(csms, cp)
    now = int(time.time())
    assert set_profile(csms, cp, 0, profile(1, periods=((0, 16), (H, 8)), kind="Absolute",
                                            start=now - 60)) == "Accepted"
    offering(cp, 16)
    cp.api.clock(H)
    offering(cp, 8)


@e2e
def test_below_6_a_pauses_and_resumes(csms, charge_point):
    cp = online(csms, charge_point)
    charge(csms, cp)
    mark = csms.mark()
    assert set_profile(csms, cp, 1, profile(1, periods=((0, 4),))) == "Accepted"
    c = offering(cp, 0)
    csms.wait_for("StatusNotification", status(1, "SuspendedEVSE"), cp_id=cp.id, since=mark, timeout=10)
    c = connector(cp.api.wait(lambda s: not connector(s)["relay"], 10))
    assert c["transaction_id"] is not None, c
    mark = csms.mark()
    assert set_profile(csms, cp, 1, profile(1, periods=((0, 10),))) == "Accepted"
    offering(cp, 10)
    csms.wait_for("StatusNotification", status(1, "Charging"), cp_id=cp.id, since=mark, timeout=10)
    # minChargingRate: 7 A offered, the EV needs 8 A
    p = profile(1, periods=((0, 7),))
    p["chargingSchedule"]["minChargingRate"] = 8
    assert set_profile(csms, cp, 1, p) == "Accepted"
    offering(cp, 0)
    assert cp.api.state()["violations"] == []


@e2e
def test_two_connectors_share_the_charge_point_max(csms, charge_point):
    cp = online(csms, charge_point, 2)
    assert set_profile(csms, cp, 0, profile(1, "ChargePointMaxProfile", ((0, 20),))) == "Accepted"
    charge(csms, cp, 1, "TAG0001")
    offering(cp, 20, 1)
    charge(csms, cp, 2, "TAG0002")
    offering(cp, 10, 1)
    offering(cp, 10, 2)
    assert composite(csms, cp, 2, 60)[1] == [(0, 10.0)]
    assert composite(csms, cp, 0, 60)[1] == [(0, 20.0)]
    cp.api.ev(connector=2, charge=False)
    cp.api.ev(connector=2, plug=False)  # ends its transaction: connector 1 gets it all
    offering(cp, 20, 1, timeout=5)


@e2e
def test_profiles_survive_a_restart(csms, charge_point):
    cp = online(csms, charge_point)
    assert set_profile(csms, cp, 0, profile(1, "ChargePointMaxProfile", ((0, 20),))) == "Accepted"
    assert set_profile(csms, cp, 1, profile(2, periods=((0, 12),))) == "Accepted"
    charge(csms, cp)
    assert set_profile(csms, cp, 1, profile(3, "TxProfile", ((0, 8),))) == "Accepted"
    offering(cp, 8)
    cp.kill()  # power cut during the transaction: it ends, and its TxProfile with it
    mark = csms.mark()
    cp.restart()
    csms.wait_for("BootNotification", cp_id=cp.id, since=mark)
    csms.wait_for("StopTransaction", lambda p: p["reason"] == "PowerLoss", cp_id=cp.id, since=mark)
    assert composite(csms, cp, 1, 60)[1] == [(0, 12.0)]
    assert csms.call(cp.id, ("ClearChargingProfile", {"id": 3})) == {"status": "Unknown"}
    charge(csms, cp)  # the plant restarted too: plug in again
    offering(cp, 12)
    assert csms.call(cp.id, ("ClearChargingProfile", {})) == {"status": "Accepted"}
    assert not (cp.state_dir / "chp").exists()
    cp.restart()  # no profiles left: smart charging is not even imported
    cp.api.wait(lambda s: s["ocpp"]["registration"] == "Accepted", 30)
    last_boot = cp.log().rsplit("=== ", 1)[1]
    assert " smart " not in last_boot, last_boot[-2000:]


@e2e
def test_full_profile_table(csms, charge_point):
    """MaxChargingProfilesInstalled (20) profiles of ChargingScheduleMaxPeriods (24) periods:
    installed, composed for a week (cut short at 24 periods, honestly), reloaded at boot.
    (Their RAM is measured by smartcharging_cases.test_full_table_ram.)"""
    cp = online(csms, charge_point)
    now = int(time.time())
    for i in range(20):
        periods = [(k * H, 6 + (i + k) % 20) for k in range(24)]
        p = profile(i + 1, periods=periods, stack=i % 10, kind="Recurring", recurrencyKind="Daily",
                    start=now - 86400 + i * 600)
        assert set_profile(csms, cp, i // 10, p) == "Accepted", i
    assert set_profile(csms, cp, 0, profile(21, "ChargePointMaxProfile")) == "Rejected"  # the 21st
    r = csms.call(cp.id, ("GetCompositeSchedule", {"connectorId": 1, "duration": 7 * 86400}))
    s = r["chargingSchedule"]
    starts = [q["startPeriod"] for q in s["chargingSchedulePeriod"]]
    assert r["status"] == "Accepted" and len(starts) == 24 and 0 < s["duration"] < 7 * 86400, r
    assert starts[0] == 0 and starts == sorted(set(starts)) and starts[-1] < s["duration"], starts
    cp.restart()
    cp.api.wait(lambda st: st["ocpp"]["registration"] == "Accepted" and st["ocpp"]["connected"], 30)
    assert csms.call(cp.id, ("GetCompositeSchedule", {"connectorId": 1, "duration": 7 * 86400})) \
        ["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == s["chargingSchedulePeriod"][0]["limit"]
    assert csms.call(cp.id, ("ClearChargingProfile", {"stackLevel": 9})) == {"status": "Accepted"}
    assert len(list((cp.state_dir / "chp").iterdir())) == 18
