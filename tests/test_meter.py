"""A real meter used by OCPP, end to end: the simulator's Modbus meters (sim/mpy/simmeter.py, real
RTU frames with CRC on a simulated RS-485 line, read by the firmware's drivers) and CT clamps
report what they measure in StartTransaction, MeterValues and StopTransaction; a meter that stops
answering turns the connector's errorCode to PowerMeterFailure while charging goes on, and the
energy resumes from its register; a register that goes backwards is never sent as negative
energy; the energy is continuous across a power cut, which does not unplug the car."""
import pytest

from harness import EAIR, configure, connector, energy_wh, registered, start_session, status

pytestmark = pytest.mark.timeout(240)

MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"


def samples(payload, measurand):
    return [sv for mv in payload["meterValue"] for sv in mv["sampledValue"]
            if sv.get("measurand", EAIR) == measurand]


def metering(cp, csms):
    registered(cp, csms)
    configure(csms, cp, "MeterValueSampleInterval", "1")
    configure(csms, cp, "MeterValuesSampledData", MEASURANDS)


def test_sdm630_energy_reaches_the_csms_and_survives_a_silent_meter(csms, charge_point):
    cp = charge_point(meter="sdm630", meter_start=1234567)
    metering(cp, csms)
    s = cp.api.state()
    assert connector(s)["meter"]["kind"] == "sdm630" and connector(s)["meter"]["ok"]
    assert connector(s)["meter_wh"] == 1234567
    tid = start_session(cp, csms, max_a=16)
    start = csms.wait_for("StartTransaction", cp_id=cp.id)
    assert start["meterStart"] == 1234567  # the meter's lifetime register, not 0

    # MeterValues: what the meter measures, per phase
    mv = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid
                       and samples(p, "Power.Active.Import")
                       and float(samples(p, "Power.Active.Import")[0]["value"]) > 10000, cp_id=cp.id)
    assert 1234567 <= energy_wh(mv) < 1234567 + 1000
    currents = samples(mv, "Current.Import")
    assert [c["phase"] for c in currents] == ["L1", "L2", "L3"]
    assert all(float(c["value"]) == pytest.approx(16, abs=0.2) for c in currents)
    volts = samples(mv, "Voltage")
    assert [v["phase"] for v in volts] == ["L1-N", "L2-N", "L3-N"]
    assert all(float(v["value"]) == pytest.approx(230, abs=0.5) for v in volts)
    assert float(samples(mv, "Power.Active.Import")[0]["value"]) == pytest.approx(16 * 230 * 3, rel=0.02)
    s = cp.api.state()
    assert connector(s)["meter"]["phases_in_use"] == 3
    assert connector(s)["meter"]["amps"] == pytest.approx([16, 16, 16], abs=0.2)

    # the meter goes silent: PowerMeterFailure, the EV keeps charging, no made-up samples
    mark = csms.mark()
    cp.api.meter(fail=True)
    csms.wait_for("StatusNotification", status(1, "Charging", error="PowerMeterFailure"),
                  cp_id=cp.id, since=mark, timeout=30)
    s = cp.api.state()
    assert connector(s)["relay"] and connector(s)["ev"]["state"] == "C"
    assert not connector(s)["meter"]["ok"]
    silent = csms.mark()
    cp.api.meter(energy_wh=1300000)   # what the meter counts while we cannot read it
    cp.api.meter(fail=False)
    csms.wait_for("StatusNotification", status(1, "Charging", error="NoError"),
                  cp_id=cp.id, since=silent, timeout=30)
    back = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid
                         and (energy_wh(p) or 0) >= 1300000, cp_id=cp.id, since=silent)
    assert energy_wh(back) < 1300000 + 1000  # resumed from the meter's register

    mark = csms.mark()
    cp.api.rfid("TAG0001")
    stop = csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    assert 1300000 <= stop["meterStop"] < 1300000 + 1000
    assert stop["transactionId"] == tid


def test_a_register_that_goes_backwards_is_never_negative_energy(csms, charge_point):
    cp = charge_point(meter="sdm630", meter_start=2000000)
    metering(cp, csms)
    tid = start_session(cp, csms, max_a=10)
    first = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid
                          and energy_wh(p) is not None, cp_id=cp.id)
    mark = csms.mark()
    cp.api.meter(energy_wh=500)   # a new meter, fitted while charging
    csms.wait_for("StatusNotification", status(1, "Charging", error="PowerMeterFailure"),
                  cp_id=cp.id, since=mark)
    later = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid
                          and (energy_wh(p) or 0) > energy_wh(first) + 5, cp_id=cp.id, since=mark)
    readings = [energy_wh(m.payload) for m in csms.messages(cp.id, "MeterValues", "in", "call")
                if m.payload.get("transactionId") == tid and energy_wh(m.payload) is not None]
    assert readings == sorted(readings), readings   # never backwards, continues from the old one
    assert energy_wh(later) < 2000000 + 1000
    assert "went backwards from" in cp.log()
    mark = csms.mark()
    cp.api.rfid("TAG0001")
    stop = csms.wait_for("StopTransaction", cp_id=cp.id, since=mark)
    assert stop["meterStop"] >= readings[-1] >= 2000000
    # the next transaction starts from the new meter's register, and the warning is over
    mark = csms.mark()
    cp.api.ev(plug=False)
    csms.wait_for("StatusNotification", status(1, "Available", error="NoError"), cp_id=cp.id, since=mark)
    start_session(cp, csms, tag="TAG0002", max_a=10)
    start = csms.wait_for("StartTransaction", lambda p: p["idTag"] == "TAG0002", cp_id=cp.id, since=mark)
    assert 500 <= start["meterStart"] < 2000


def test_power_cut_keeps_the_car_plugged_and_the_energy_continuous(csms, charge_point):
    cp = charge_point(meter="sdm630", meter_start=700000)
    metering(cp, csms)
    tid = start_session(cp, csms, max_a=16)
    mv = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid
                       and (energy_wh(p) or 0) >= 700000 + 20, cp_id=cp.id)
    cp.kill()   # power cut while charging
    mark = csms.mark()
    cp.restart()
    # the EV is still plugged in (and asking): the firmware boots in state B/C
    stop = csms.wait_for("StopTransaction", lambda p: p["reason"] == "PowerLoss", cp_id=cp.id, since=mark)
    assert stop["transactionId"] == tid
    assert stop["meterStop"] >= energy_wh(mv)   # the meter's register, not an older reading
    s = cp.api.wait(lambda s: connector(s)["status"] == "Preparing")
    assert connector(s)["ev"]["plug"] and connector(s)["ev"]["charge"]
    assert connector(s)["cp"] in ("B", "C") and not connector(s)["relay"]
    assert connector(s)["meter_wh"] == stop["meterStop"]   # nothing flowed while off
    csms.wait_for("StatusNotification", status(1, "Preparing"), cp_id=cp.id, since=mark)
    assert not csms.messages(cp.id, "StartTransaction", "in", "call", since=mark)  # no card yet
    cp.api.rfid("TAG0009")
    start = csms.wait_for("StartTransaction", lambda p: p["idTag"] == "TAG0009", cp_id=cp.id, since=mark)
    assert start["meterStart"] == stop["meterStop"]   # continuous across the cut
    cp.api.wait(lambda s: connector(s)["status"] == "Charging")


@pytest.mark.parametrize("kind", ["sdm120", "b23", "ct", "estimated"])
def test_other_meters_report_measured_energy(csms, charge_point, kind):
    cp = charge_point(meter=kind, meter_start=50000)
    metering(cp, csms)
    phases = 1 if kind == "sdm120" else 3
    begin = 50000 if kind in ("sdm120", "b23") else 0   # CT and estimate integrate their own
    tid = start_session(cp, csms, max_a=16)
    start = csms.wait_for("StartTransaction", cp_id=cp.id)
    assert start["meterStart"] == begin
    mv = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid
                       and (energy_wh(p) or 0) >= begin + 10, cp_id=cp.id, timeout=60)
    currents = samples(mv, "Current.Import")
    assert len(currents) == phases
    drawn = 32 if kind == "estimated" else 16   # the estimate is the offer (32 A), an upper bound
    assert all(float(c["value"]) == pytest.approx(drawn, rel=0.05) for c in currents), currents
    s = cp.api.state()
    assert connector(s)["meter"]["kind"] == kind
    assert connector(s)["meter"]["phases_in_use"] == (None if kind == "estimated" else phases)
    if kind == "estimated":
        with pytest.raises(Exception, match="cannot fail"):
            cp.api.meter(fail=True)
    else:
        mark = csms.mark()
        cp.api.meter(fail=True)
        csms.wait_for("StatusNotification", status(1, "Charging", error="PowerMeterFailure"),
                      cp_id=cp.id, since=mark, timeout=30)
        cp.api.meter(fail=False)
        csms.wait_for("StatusNotification", status(1, "Charging", error="NoError"),
                      cp_id=cp.id, since=mark, timeout=30)


@pytest.mark.parametrize("charge", [False, True], ids=["state-B", "state-C"])
def test_boot_with_a_car_plugged_in_and_no_transaction(csms, charge_point, charge):
    """A restart (here a power cut) with the car plugged in and no transaction: the car is still
    there at boot (state B, or C when it asks), Preparing, no transaction and no energy until a
    card authorizes one."""
    cp = charge_point()
    registered(cp, csms)
    cp.api.ev(plug=True, charge=charge, max_a=16)
    cp.api.wait(lambda s: connector(s)["status"] == "Preparing")
    cp.kill()
    mark = csms.mark()
    cp.restart()
    csms.wait_for("StatusNotification", status(1, "Preparing"), cp_id=cp.id, since=mark)
    s = cp.api.state()
    c = connector(s)
    assert c["ev"]["plug"] and c["ev"]["charge"] == charge
    assert c["cp"] in ("B", "C"), c["cp"]   # (no PWM before a card: an EV that asks stays in B)
    assert not c["relay"] and c["transaction_id"] is None
    assert not csms.messages(cp.id, "StartTransaction", "in", "call", since=mark)
    assert not csms.messages(cp.id, "StopTransaction", "in", "call", since=mark)
    cp.api.rfid("TAG0042")
    start = csms.wait_for("StartTransaction", lambda p: p["idTag"] == "TAG0042", cp_id=cp.id, since=mark)
    if charge:
        cp.api.wait(lambda s: connector(s)["status"] == "Charging" and connector(s)["relay"])
    else:
        cp.api.ev(charge=True)
        cp.api.wait(lambda s: connector(s)["status"] == "Charging")
    assert start["connectorId"] == 1
    assert cp.api.state()["violations"] == []
