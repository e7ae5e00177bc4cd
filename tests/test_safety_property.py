"""Property-based safety test: random EV, fault, card and CSMS sequences against the simulator.

Hypothesis plays random steps through the control API and the CSMS on one firmware process (two
connectors), reset between examples. After every step:
- the plant saw no violation (sim/mpy/ev.py checks on every pin change: the relay closes only
  in state C with the PWM on, the RCD quiet, the socket locked, an authorized transaction and a
  passed RCD self-test since the plug-in; the PWM never offers more than the board's or the
  cable's rating) and every relay opening it timed took less than 100 ms;
- the snapshot (GET /state, taken between two Evse steps) agrees: a closed relay means the
  firmware reads C, an offer of 6 A or more, its duty on the pilot and no fault, and the EV is in
  C or left it less than 100 ms ago (the time IEC 61851-1 gives to open; the firmware's pilot
  window may take a few 10 ms steps to see a lower level); the offer never exceeds the board's
  32 A nor the cable's rating;
- every StatusNotification so far pairs its status and error code as OCPP 1.6 requires, and the
  CSMS saw no schema violation.
About 200 steps by default; UWB_SOAK=1 plays thousands.
"""
import os
import time

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, rule,
                                 run_state_machine_as_test)

from harness import connector

SOAK = bool(os.environ.get("UWB_SOAK"))
EXAMPLES, STEPS = (120, 40) if SOAK else (10, 20)
CONNECTORS = (1, 2)
BOARD_A = 32                                # boards/sim/board.py MAX_CURRENT_A
TAGS = ("CARD0001", "CARD0002", "BLOCKED1")
WARNED = ("Preparing", "SuspendedEV", "SuspendedEVSE", "Finishing")  # with EVCommunicationError
FAULTS = ("rcd", "weld", "lock_jam", "rcd_broken", "pilot_short")

pytestmark = [pytest.mark.soak, pytest.mark.timeout(7200 if SOAK else 180)]


def iec_duty(amps):
    return amps / 0.6 if amps <= 51 else amps / 2.5 + 64


def tx_default(limit):
    return {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 100, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}}}


class Safety(RuleBasedStateMachine):
    """One example: a reset, then random steps. `cp` and `csms` are set by the test."""
    cp = csms = None
    closed = 0                              # snapshots that showed a closed relay

    def state(self):
        return self.cp.api.state()

    def call(self, action, payload):
        return self.csms.call(self.cp.id, (action, payload), timeout=10)

    @initialize(charging=st.lists(st.sampled_from(CONNECTORS), unique=True))
    def reset(self, charging):
        """Every fault cleared, EVs gone, no transaction, profile or pending card left; then
        charging sessions on the connectors CHARGING (the state that matters most)."""
        api = self.cp.api
        for cid in CONNECTORS:
            api.fault(connector=cid, **{f: False for f in FAULTS})
            api.ev(connector=cid, plug=False, charge=False, diode_fault=False, ventilation=False,
                   max_a=32, phases=3, cable_a=32)
        self.call("ClearChargingProfile", {})
        api.clock(120)                      # a card waiting for a plug times out
        deadline = time.monotonic() + 15
        while True:
            cs = self.state()["connectors"]
            if all(c["status"] == "Available" and c["transaction_id"] is None and not c["relay"]
                   for c in cs):
                break
            assert time.monotonic() < deadline, f"the simulator did not settle: {cs}"
            for c in cs:                    # a dead RCD's fault clears when a test passes:
                if c["fault"] == "GroundFailure" and c["cp"] == "A":   # a plug-in retests
                    api.ev(connector=c["id"], plug=True)
                    api.wait(lambda s, i=c["id"]: connector(s, i)["cp"] == "B", 5)
                    api.ev(connector=c["id"], plug=False)
            time.sleep(0.1)
        self.since = self.csms.mark()
        for cid in charging:
            api.ev(connector=cid, plug=True, charge=True)
            api.wait(lambda s, i=cid: connector(s, i)["cp"] == "B", 5)
            api.rfid(TAGS[cid - 1])
            api.wait(lambda s, i=cid: connector(s, i)["relay"], 10)

    # -- the EV
    @rule(cid=st.sampled_from(CONNECTORS), tag=st.sampled_from(TAGS))
    def arrive(self, cid, tag):
        """A whole arrival: plug in, ask for energy, show a card, and give it time."""
        self.plug_in(cid, 32)
        self.cp.api.ev(connector=cid, charge=True)
        self.cp.api.rfid(tag)
        time.sleep(0.3)

    @rule(cid=st.sampled_from(CONNECTORS), cable=st.sampled_from((13, 20, 32, 63)))
    def plug_in(self, cid, cable):
        if not connector(self.state(), cid)["ev"]["plug"]:  # a cable is chosen at the plug-in
            self.cp.api.ev(connector=cid, plug=True, cable_a=cable)

    @rule(cid=st.sampled_from(CONNECTORS))
    def unplug(self, cid):
        self.cp.api.ev(connector=cid, plug=False)
        self.cp.api.wait(lambda s: connector(s, cid)["cp"] == "A", 5)   # takes a human a while

    @rule(cid=st.sampled_from(CONNECTORS), on=st.booleans())
    def charge(self, cid, on):
        self.cp.api.ev(connector=cid, charge=on)

    @rule(cid=st.sampled_from(CONNECTORS), amps=st.floats(0, 80), phases=st.sampled_from((1, 3)))
    def ev_limits(self, cid, amps, phases):
        self.cp.api.ev(connector=cid, max_a=amps, phases=phases)

    @rule(cid=st.sampled_from(CONNECTORS), diode=st.booleans(), vent=st.booleans())
    def ev_defects(self, cid, diode, vent):
        self.cp.api.ev(connector=cid, diode_fault=diode, ventilation=vent)

    # -- the hardware
    @rule(cid=st.sampled_from(CONNECTORS), fault=st.sampled_from(FAULTS), on=st.booleans())
    def fault(self, cid, fault, on):
        self.cp.api.fault(connector=cid, **{fault: on})

    # -- people and the CSMS
    @rule(tag=st.sampled_from(TAGS))
    def card(self, tag):
        self.cp.api.rfid(tag)

    @rule(cid=st.sampled_from((0,) + CONNECTORS), tag=st.sampled_from(TAGS))
    def remote_start(self, cid, tag):
        payload = {"idTag": tag, "connectorId": cid} if cid else {"idTag": tag}
        assert self.call("RemoteStartTransaction", payload)["status"] in ("Accepted", "Rejected")

    @rule(cid=st.sampled_from(CONNECTORS))
    def remote_stop(self, cid):
        tid = connector(self.state(), cid)["transaction_id"]
        if tid is not None:
            self.call("RemoteStopTransaction", {"transactionId": tid})

    @rule(limit=st.sampled_from((None, 0, 4, 6, 10, 16, 40)))
    def smart_limit(self, limit):
        if limit is None:
            self.call("ClearChargingProfile", {"id": 100})
        else:
            assert self.call("SetChargingProfile", tx_default(limit)) == {"status": "Accepted"}

    @rule(ms=st.sampled_from((0, 20, 50, 150, 400)))
    def wait(self, ms):
        time.sleep(ms / 1000)

    # -- after every step
    @invariant()
    def safe(self):
        s = self.state()
        assert s["violations"] == [], s["violations"]
        assert all(ms < 100 for ms in s["relay_open_latency_ms"]), s["relay_open_latency_ms"]
        for c in s["connectors"]:
            ev = c["ev"]
            assert c["fault"] != "InternalError", c
            if c["relay"]:
                Safety.closed += 1
                assert c["cp"] == "C" and c["fault"] is None, c
                assert ev["state"] == "C" or (ev["left_ms"] is not None and ev["left_ms"] < 100), c
                assert c["offered_a"] >= 6 and 0 < c["pwm_duty"] < 100, c
            assert c["offered_a"] <= BOARD_A, c
            if ev["plug"]:
                assert c["offered_a"] <= ev["cable_a"], c
            if c["offered_a"]:
                assert c["pwm_duty"] == pytest.approx(iec_duty(c["offered_a"]), abs=0.01), c
            else:
                assert c["pwm_duty"] in (0.0, 100.0), c

    @invariant()
    def statuses_as_ocpp_requires(self):
        assert self.csms.errors == []
        for m in self.csms.messages(self.cp.id, "StatusNotification", "in", "call", since=self.since):
            status, error = m.payload["status"], m.payload["errorCode"]
            if error == "EVCommunicationError":
                assert status in WARNED, m.payload
            else:
                assert (status == "Faulted") == (error != "NoError"), m.payload
        self.since = self.csms.mark()


def test_random_sequences_stay_safe(csms, charge_point):
    csms.blocked.add("BLOCKED1")
    cp = charge_point(connectors=len(CONNECTORS))
    cp.api.wait(lambda s: s["ocpp"]["registration"] == "Accepted" and s["ocpp"]["connected"], 30)
    Safety.cp, Safety.csms, Safety.closed = cp, csms, 0
    try:
        run_state_machine_as_test(Safety, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
            suppress_health_check=list(HealthCheck)))
    finally:
        Safety.cp = Safety.csms = None
    print("snapshots with the relay closed:", Safety.closed)
    assert cp.api.state()["violations"] == []
