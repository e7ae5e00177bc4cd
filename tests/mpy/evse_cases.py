# MicroPython cases for firmware/uwallbox/hw/evse.py driven by the sim plant.
# Most cases call Evse.step() directly (deterministic); test_timer_* run the real machine.Timer.
import asyncio
import time

import board
import ev as plant
import machine
from uwallbox.hw import evse as evse_mod
from uwallbox.hw.evse import GRANT, Evse
from uwallbox.hw.pilot import WINDOW

EV = board.plants[0]


def make():
    return Evse(board, 0)


def run(e, n=3):
    for _ in range(n):
        e.step()


def charging(e):
    """Plug, allow, charge: returns once the contactor is closed (after the start-up and the
    session's RCD self-tests: 3 steps each with the plant's instant RCD)."""
    EV.update({"plug": True, "charge": True})
    e.allow = True
    run(e, 8)
    assert e.cp == "C" and e.relay and e.ready, (e.cp, e.relay, e.fault)
    return e


def session(e):
    """Plug and allow (EV in B, PWM offered): returns once the session's self-test is over."""
    EV.update({"plug": True})
    e.allow = True
    run(e, 8)
    assert e.cp == "B" and e.offered_a > 0 and e.rcd.phase == 0 and not e.rcd.due
    return e


def test_initial_state():
    e = make()
    run(e)
    assert e.cp == "A" and not e.plugged and not e.relay and e.fault is None
    assert e.pilot.duty == 100.0 and e.offered_a == 0.0
    assert e.max_a == board.MAX_CURRENT_A and e.available and not e.allow and e.limit_a is None


def test_plug_gives_b_and_standby():
    e = make()
    run(e)
    e.changed.set()   # drain: a fresh flag state for the check below
    EV.update({"plug": True})
    e.step()
    assert e.cp == "A"            # debounce: one sample is not enough
    e.step()
    assert e.cp == "B" and e.plugged and not e.ready
    assert e.pilot.duty == 100.0 and e.offered_a == 0.0   # not allowed: steady +12 V
    assert not e.locked           # socket locks only once allowed


def test_changed_flag_set_on_output_change():
    e = make()
    run(e)

    async def main():
        # consume any pending set
        try:
            await asyncio.wait_for_ms(e.changed.wait(), 20)
        except asyncio.TimeoutError:
            pass
        e.step()                  # nothing changed: no set
        try:
            await asyncio.wait_for_ms(e.changed.wait(), 20)
            raise AssertionError("changed set without an output change")
        except asyncio.TimeoutError:
            pass
        EV.update({"plug": True})
        run(e, 2)
        await asyncio.wait_for_ms(e.changed.wait(), 100)
        assert e.cp == "B"
    asyncio.run(main())


def test_allow_offers_pwm_and_locks():
    e = make()
    EV.update({"plug": True})
    run(e)
    e.allow = True
    run(e, 2)
    assert abs(e.pilot.duty - 53.333) < 0.01, e.pilot.duty    # 32 A
    assert e.offered_a == 32.0 and e.locked and e.cp == "B" and not e.relay
    assert abs(EV.offered_a() - 32.0) < 0.1


def test_charge_closes_relay_and_meters():
    charging(make())
    assert EV.contacts_closed() and EV.amps() == 32.0
    r = board.meter(0).read()
    assert r[1] == 32.0 * 230 * 3 and r[2] == (32.0, 32.0, 32.0), r
    assert plant.violations == [], plant.violations


def test_relay_closes_only_after_debounced_c():
    e = session(make())
    EV.update({"charge": True})
    e.step()
    assert not e.relay            # one C sample: not yet
    n = 1
    while not e.relay and n < 10:
        e.step()
        n += 1
    # a second C sample, from a burst that saw the high level itself (the pilot window)
    assert e.relay and e.cp == "C" and e.pilot.fresh and n <= 6, n


def test_ev_leaving_c_opens_relay_next_step():
    e = charging(make())
    EV.update({"charge": False})
    e.step()
    assert not e.relay and not EV.relay_out()
    assert len(EV.latency_ms) == 1 and EV.latency_ms[0] < 100, EV.latency_ms
    run(e, 2)
    assert e.cp == "B" and not e.ready
    assert plant.violations == [], plant.violations


def test_unplug_while_charging_opens_and_unlocks():
    e = charging(make())
    assert e.locked
    EV.update({"plug": False})
    e.step()
    assert not e.relay
    run(e, 2)
    assert e.cp == "A" and not e.plugged and not e.locked
    assert plant.violations == [], plant.violations


def test_allow_false_opens_relay_then_standby():
    e = charging(make())
    e.allow = False
    e.step()
    assert not e.relay and e.pilot.duty == 100.0 and e.offered_a == 0.0
    run(e)
    assert e.cp == "B"
    assert plant.violations == [], plant.violations   # contactor opened before the PWM stopped


def test_rcd_trip_opens_and_latches_ground_failure():
    e = charging(make())
    EV.update({"rcd": True}, plant.FAULT_FIELDS)
    e.step()
    assert not e.relay and e.fault == "GroundFailure" and e.pilot.duty == 100.0
    EV.update({"rcd": False}, plant.FAULT_FIELDS)
    run(e, 5)
    assert e.fault == "GroundFailure" and not e.relay   # latched until unplug
    EV.update({"plug": False})
    run(e, 3)
    assert e.fault is None and e.cp == "A"
    EV.update({"plug": True})
    run(e, 10)
    assert e.relay                # charges again (charge and allow still set)


def test_rcd_self_test_pulse_trips_input():
    e = make()
    run(e)
    trip = machine.Pin(board.CONNECTORS[0]["rcd_trip"])
    assert trip.value() == 0
    e.rcd.test_out.on()
    assert trip.value() == 1
    e.rcd.test_out.off()
    assert trip.value() == 0
    EV.update({"rcd_broken": True}, plant.FAULT_FIELDS)
    e.rcd.test_out.on()
    assert trip.value() == 0      # a dead RCD does not answer the test



TRIP = machine.Pin(board.CONNECTORS[0]["rcd_trip"])
TEST_OUT = machine.Pin(board.CONNECTORS[0]["rcd_test"])


def test_rcd_self_test_at_start_up():
    e = make()
    e.step()
    assert EV.rcd_tests == 1 and TEST_OUT.value() == 1 and TRIP.value() == 1
    assert e.fault is None            # the test masks the trip input
    e.step()
    assert TEST_OUT.value() == 0 and TRIP.value() == 0 and e.rcd.phase != 0   # released: waiting
    e.step()
    assert e.rcd.phase == 0 and e.fault is None and not e.rcd.dead
    run(e, 30)
    assert EV.rcd_tests == 1          # once


def test_rcd_self_test_before_each_session():
    e = make()
    run(e)
    EV.update({"plug": True, "charge": True})
    run(e, 3)
    assert EV.rcd_tests == 1          # plugging in alone: no test
    e.allow = True
    closed_at = None
    for i in range(10):
        e.step()
        if e.relay and closed_at is None:
            closed_at = i
    assert EV.rcd_tests == 2 and closed_at == 2, closed_at  # pulse, release, close
    e.allow = False                   # the session ends, the EV stays: a new one tests again
    run(e, 3)
    e.allow = True
    run(e, 8)
    assert EV.rcd_tests == 3 and e.relay
    assert plant.violations == [], plant.violations


def test_rcd_self_test_failure_at_start_up_latches():
    EV.update({"rcd_broken": True}, plant.FAULT_FIELDS)
    e = make()
    run(e, 20)                        # the pulse, then 190 ms of waiting for the trip
    assert e.fault is None and TEST_OUT.value() == 1     # still within the 200 ms bound
    e.step()
    assert e.fault == "GroundFailure" and TEST_OUT.value() == 0 and e.rcd.dead
    EV.update({"plug": True, "charge": True})
    e.allow = True
    run(e, 60)
    assert e.fault == "GroundFailure" and not e.relay and e.pilot.duty == 100.0
    assert EV.rcd_tests == 2          # start-up, then the plug-in of an allowed session
    EV.update({"plug": False})
    run(e, 5)
    assert e.fault == "GroundFailure"  # unplugging does not clear a dead RCD
    EV.update({"rcd_broken": False}, plant.FAULT_FIELDS)
    run(e, 30)
    assert e.fault == "GroundFailure"  # nor its repair alone: a test must pass
    EV.update({"plug": True})
    run(e, 5)                         # the plug-in retries the test, which passes
    assert e.fault is None and not e.rcd.dead and EV.rcd_tests == 3
    run(e, 8)
    assert e.relay
    assert plant.violations == [], plant.violations


def test_rcd_self_test_failure_before_a_session():
    e = make()
    run(e)
    EV.update({"rcd_broken": True}, plant.FAULT_FIELDS)
    EV.update({"plug": True, "charge": True})
    e.allow = True
    run(e, 40)
    assert e.fault == "GroundFailure" and not e.relay and EV.rcd_tests == 2
    assert e.clear_fault() is False   # cause not gone: clear_fault() retests, which fails again
    run(e, 25)
    assert EV.rcd_tests == 3 and e.fault == "GroundFailure"
    EV.update({"rcd_broken": False}, plant.FAULT_FIELDS)
    e.clear_fault()
    run(e, 3)
    assert e.fault is None and EV.rcd_tests == 4
    run(e, 8)
    assert e.relay
    assert plant.violations == [], plant.violations


def test_rcd_that_stays_tripped_after_its_test_is_a_trip():
    e = make()
    EV.update({"plug": True, "charge": True})
    e.step()                          # pulse: tripped
    EV.update({"rcd": True}, plant.FAULT_FIELDS)      # ... and the trip does not release
    e.allow = True
    run(e, 20)
    assert e.fault is None and e.rcd.phase != 0 and not e.relay   # still waiting for the release
    e.step()
    assert e.fault == "GroundFailure" and not e.rcd.dead and not e.relay
    EV.update({"rcd": False}, plant.FAULT_FIELDS)
    run(e, 10)
    assert e.fault == "GroundFailure" and not e.relay  # latched like any trip: until unplugged
    EV.update({"plug": False})
    run(e, 3)
    assert e.fault is None
    assert plant.violations == [], plant.violations


def test_board_without_rcd_test_pin():
    class NoTest:
        pass
    b = NoTest()
    for k in ("NAME", "MAX_CURRENT_A", "PHASES", "SOCKET", "VENTILATION", "PILOT_CAL", "PP_CAL"):
        setattr(b, k, getattr(board, k))
    pins = dict(board.CONNECTORS[0])
    del pins["rcd_test"]
    b.CONNECTORS = (pins,)
    e = Evse(b, 0)
    EV.update({"plug": True, "charge": True})
    e.allow = True
    run(e, 5)
    assert e.relay and EV.rcd_tests == 0
    EV.update({"rcd": True}, plant.FAULT_FIELDS)      # the trip input still works
    e.step()
    assert not e.relay and e.fault == "GroundFailure"


def test_hold_lock_keeps_the_socket_locked_after_unplug():
    e = charging(make())
    e.hold_lock = True
    EV.update({"plug": False})
    e.step()
    assert not e.relay
    run(e, 5)
    assert e.cp == "A" and e.locked and e.fault is None
    EV.update({"plug": True, "charge": True})         # back: another test, then charging
    run(e, 8)
    assert e.relay and e.locked and EV.rcd_tests == 3
    EV.update({"plug": False})
    run(e, 3)
    e.hold_lock = False               # the transaction ended: unlock
    run(e, 2)
    assert not e.locked
    assert plant.violations == [], plant.violations

def test_weld_detected_after_open():
    e = charging(make())
    EV.update({"weld": True}, plant.FAULT_FIELDS)
    EV.update({"charge": False})
    e.step()
    assert not e.relay and e.fault is None
    run(e, 25)                    # > 200 ms of steps
    assert e.fault == "PowerSwitchFailure"
    EV.update({"charge": True})
    run(e, 5)
    assert not e.relay            # never closes on a welded contactor


def test_weld_prevents_closing():
    e = make()
    EV.update({"weld": True}, plant.FAULT_FIELDS)
    EV.update({"plug": True, "charge": True})
    e.allow = True
    run(e, 5)
    assert e.fault == "PowerSwitchFailure" and not e.relay and not EV.relay_out()
    EV.update({"weld": False}, plant.FAULT_FIELDS)
    EV.update({"plug": False})
    run(e, 3)
    assert e.fault is None


def test_lock_jam_gives_connector_lock_failure():
    e = make()
    EV.update({"lock_jam": True}, plant.FAULT_FIELDS)
    EV.update({"plug": True, "charge": True})
    e.allow = True
    run(e, 10)
    assert not e.relay and not e.locked and e.fault is None   # actuator still travelling
    run(e, 50)
    assert e.fault == "ConnectorLockFailure" and not e.relay
    EV.update({"lock_jam": False}, plant.FAULT_FIELDS)
    run(e, 5)
    assert e.fault is None and e.locked and e.relay


def test_unlock_command():
    e = charging(make())
    assert e.unlock() is True
    assert not e.relay and not e.locked and not EV.relay_out()
    run(e, 5)
    assert not e.relay and not e.locked     # stays unlocked: no relock while allowed
    EV.update({"lock_jam": True}, plant.FAULT_FIELDS)
    e.allow = False
    run(e)
    e.allow = True                # a new authorization locks again, but the lock is jammed
    run(e, 3)
    assert not e.locked


def test_diode_fault():
    e = make()
    EV.update({"plug": True, "diode_fault": True})
    e.allow = True
    run(e, 12)                    # the low level: over a whole pilot window of PWM
    assert e.fault == "EVCommunicationError" and not e.relay and e.pilot.duty == 100.0
    EV.update({"diode_fault": False, "plug": False})
    run(e, 3)
    assert e.fault is None


def test_unavailable_gives_state_f():
    e = make()
    EV.update({"plug": True})
    run(e)
    e.available = False
    run(e)
    assert e.pilot.duty == 0.0 and e.cp == "F" and not e.relay
    assert EV.duty_u16() == 0
    assert e.plugged              # unknown while disabled: keeps the last value
    e.available = True
    run(e)
    assert e.cp == "B" and e.pilot.duty == 100.0


def test_unavailable_while_charging_opens():
    e = charging(make())
    e.available = False
    e.step()
    assert not e.relay and e.pilot.duty == 0.0
    assert plant.violations == [], plant.violations


def test_limit_below_6a_standby():
    e = charging(make())
    e.limit_a = 5.0
    e.step()
    assert not e.relay and e.pilot.duty == 100.0 and e.offered_a == 0.0
    run(e)
    assert e.cp == "B" and not e.relay
    e.limit_a = 10.0
    run(e, 10)                    # 16.7 %: a 10-read burst sees the high level 1 step in 3
    assert e.relay and e.offered_a == 10.0 and abs(e.pilot.duty - 16.667) < 0.01
    assert abs(EV.amps() - 10.0) < 0.01, EV.amps()
    e.limit_a = None
    run(e)
    assert e.offered_a == 32.0 and e.relay


def test_offered_current_is_the_minimum():
    e = make()
    EV.update({"plug": True, "cable_a": 13})
    e.allow = True
    run(e)
    assert e.cable_a == 13 and e.offered_a == 13.0 and abs(e.pilot.duty - 21.667) < 0.01
    EV.update({"cable_a": 63})
    run(e)
    assert e.offered_a == 32.0    # board maximum
    e.max_a = 20.0
    run(e)
    assert e.offered_a == 20.0
    e.limit_a = 16
    run(e)
    assert e.offered_a == 16.0
    EV.update({"max_a": 10.0, "charge": True})
    run(e, 10)
    assert e.relay and EV.amps() == 10.0 and e.offered_a == 16.0


def test_state_d_without_ventilation_is_a_fault():
    e = make()
    EV.update({"plug": True, "charge": True, "ventilation": True})
    e.allow = True
    run(e, 5)
    assert e.cp == "D" and not e.relay and e.fault == "OtherError"
    assert e.pilot.oscillating    # the PWM stays: the EV may go back to C
    EV.update({"ventilation": False})
    run(e, 5)
    assert e.cp == "C" and e.relay and e.fault is None


def _no_alloc(e, n=5):
    import gc
    import micropython
    gc.collect()
    micropython.heap_lock()
    try:
        run(e, n)
    finally:
        micropython.heap_unlock()


def test_steady_step_allocates_nothing():
    # a step whose outputs do not change allocates nothing (MemoryError under heap_lock otherwise)
    e = make()
    run(e)
    _no_alloc(e)                  # A, standby
    EV.update({"plug": True})
    e.allow = True
    run(e)
    _no_alloc(e)                  # B, PWM offered, locked
    charging(e)
    _no_alloc(e)                  # C, relay closed
    e.limit_a = 6.0
    run(e, 20)
    _no_alloc(e)                  # C at 6 A: the pilot's read budget binds
    e._t = time.ticks_add(time.ticks_us(), -30000)
    _no_alloc(e)                  # a late step: its budget from the time it waited
    assert e.relay and e.offered_a == 6.0


async def _charging_on_timer(e):
    """Plug in an EV that asks for energy, allow it; ms until the timer-stepped Evse closes."""
    EV.update({"plug": True, "charge": True})
    e.allow = True
    t0 = time.ticks_ms()
    while not e.relay:
        await asyncio.wait_for_ms(e.changed.wait(), 1000)
    return time.ticks_diff(time.ticks_ms(), t0)


async def test_timer_opens_relay_while_main_thread_busy():
    e = make()
    evse_mod.start_timer([e])
    idle = asyncio.create_task(machine._idle_loop(5))
    try:
        assert await _charging_on_timer(e) < 500
        EV.update({"charge": False})
        # busy main thread: no await for 300 ms
        t = time.ticks_ms()
        n = 0
        while time.ticks_diff(time.ticks_ms(), t) < 300:
            n += 1
        assert not e.relay and not EV.relay_out()
        assert len(EV.latency_ms) == 1 and EV.latency_ms[0] < 100, EV.latency_ms
        assert plant.violations == [], plant.violations
    finally:
        idle.cancel()
        evse_mod.stop_timer()
    assert evse_mod._timer is None


def test_timer_steps_every_10ms():
    e = make()
    count = [0]
    step = e.step

    def counting():
        count[0] += 1
        step()
    e.step = counting
    evse_mod.start_timer([e])
    t = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t) < 200:
        pass
    evse_mod.stop_timer()
    n = count[0]
    assert 12 <= n <= 21, n        # 20 nominal; a loaded machine may delay a few
    t = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t) < 50:
        pass
    assert count[0] <= n + 1      # stopped


def test_step_exception_gives_safe_state():
    e = charging(make())

    def broken():
        raise ValueError("boom")
    e.pilot.measure = broken
    evse_mod._Ticker([e]).tick(None)
    assert not e.relay and not EV.relay_out() and e.fault == "InternalError"


def test_meter_persists_and_never_goes_backwards():
    m = board.meter(0)
    m.energy = 1234.7             # as if it had charged
    assert m.read()[0] == 1234
    with open("sim_meter1.json") as f:
        assert "1234" in f.read()
    m2 = plant.Meter(EV)          # a restart reads the persisted register
    assert m2.read()[0] == 1234
    charging(make())
    time.sleep_ms(200)            # 22 kW for 0.2 s = 1.2 Wh
    r = m.read()[0]
    assert r >= 1235, r


async def test_timer_rcd_trip_opens_within_100ms():
    e = make()
    evse_mod.start_timer([e])
    idle = asyncio.create_task(machine._idle_loop(5))
    try:
        await _charging_on_timer(e)
        EV.update({"rcd": True}, plant.FAULT_FIELDS)
        while e.relay:
            await asyncio.wait_for_ms(e.changed.wait(), 1000)
        assert e.fault == "GroundFailure" and not EV.relay_out()
        assert len(plant.relay_open_latency_ms) == 1 and plant.relay_open_latency_ms[0] < 100
        assert plant.violations == [], plant.violations
    finally:
        idle.cancel()
        evse_mod.stop_timer()


async def test_board_attach_owns_cancellable_tasks():
    board.attach(None)            # UWB_SIM_CONTROL unset: only the idle tick
    assert len(board._tasks) == 1 and board.control is None
    t = board._tasks[0]
    await asyncio.sleep_ms(20)
    assert not t.done()
    board.detach()
    await asyncio.sleep_ms(10)
    assert t.done() and board._tasks == []


def test_plant_flags_safety_violations():
    # the plant's checker itself: a relay closed outside C, and a relay left closed too long
    e = make()
    relay = machine.Pin(board.CONNECTORS[0]["relay"])
    run(e)                        # the start-up self-test
    EV.update({"plug": True})     # no self-test since this plug-in
    run(e)
    relay.on()
    what = [v["what"] for v in plant.violations]
    assert {v["connector"] for v in plant.violations} == {1}, plant.violations
    assert what == ["relay closed in state B", "relay closed with the socket unlocked",
                    "relay closed without a passed RCD self-test since the plug-in"], what
    relay.off()
    plant.violations.clear()
    charging(e)
    assert plant.violations == []
    EV.update({"charge": False})
    time.sleep_ms(120)            # the firmware does not step: the relay stays closed
    EV.check()
    assert len(plant.violations) == 1 and "still closed" in plant.violations[0]["what"]
    e.step()
    assert EV.latency_ms[-1] >= 100


# -- the pilot's sampling budget (hw/pilot.py: BURST reads a step, levels over WINDOW steps)

def _until_open(e, n=20):
    """Steps until the contactor is open (at most N)."""
    k = 0
    while e.relay and k < n:
        e.step()
        k += 1
    return k


def test_leaving_c_opens_within_the_window_at_any_phase():
    # while the contactor is closed a burst reads until it has sampled the high level, within a
    # budget of 8 reads a step: at 32 A (53 %) that is always enough and the next step opens
    # it; at 6 A (10 %: the high level lasts 100 us) a burst may read only low phase, but
    # consecutive bursts cover the period (the ADC clock runs on with the reads, 27 us each), so
    # a step within the window (5 steps: 51 ms of the 100 ms an opening may take) sees the EV
    # leave C, wherever in the period it does
    e = charging(make())
    worst = {}
    for limit in (6.0, None):
        e.limit_a = limit
        for shift in range(0, 1000, 29):
            EV.update({"charge": True})
            run(e, 20)
            assert e.relay, (limit, shift)
            machine._sample_us += shift           # the PWM phase of the next read
            EV.update({"charge": False})
            k = _until_open(e)
            assert 1 <= k <= (1 if limit is None else WINDOW), (limit, shift, k)
            worst[limit] = max(worst.get(limit, 0), k)
    assert worst[6.0] > 1, worst                  # the budget does bind at 6 A
    EV.update({"charge": True})
    run(e, 20)
    EV.update({"pilot_short": True}, plant.FAULT_FIELDS)
    assert _until_open(e) == 1                    # E: every read says so, the next step opens
    assert plant.violations == [], plant.violations


def test_a_late_step_reads_a_whole_period():
    # a step that runs late (the soft timer waited for a collection, a flash write, a long C
    # call) may read for the time it lost, a whole period at most: the EV leaving C shows in it
    # at any phase, even at 6 A
    e = charging(make())
    e.limit_a = 6.0
    for shift in range(0, 1000, 97):
        EV.update({"charge": True})
        run(e, 20)
        machine._sample_us += shift
        EV.update({"charge": False})
        e._t = time.ticks_add(time.ticks_us(), -50000)  # the next step runs 50 ms late: FULL
        assert _until_open(e) == 1, shift
    assert plant.violations == [], plant.violations


def test_a_brief_c_never_closes_on_stale_readings():
    # the EV asks for energy for 1..8 steps, then stops: the contactor may close only while it
    # is in C (the plant flags a relay closed in B), at any phase, at 6 A and at 32 A
    e = session(make())
    for limit in (6.0, None):
        e.limit_a = limit
        run(e, 6)
        for k in range(1, 9):
            for shift in (0, 111, 357, 600, 845):
                machine._sample_us += shift
                EV.update({"charge": True})
                run(e, k)
                EV.update({"charge": False})
                assert _until_open(e) <= 6
                run(e, 6)
                assert not e.relay and e.cp == "B", (limit, k, shift, e.cp)
    assert plant.violations == [], plant.violations


_STEP_US = 10200  # hw/evse.py's timer period: _PERIOD_MS ms + _SHIFT_US (consts: not importable)


def _closed_reads_per_s(e, n, esp32=False, off=0):
    """Pilot + PP reads a second over N closed steps, 98 a second; with ESP32, each step starts
    10.2 ms of PWM phase after the one before (as the ESP32's timer steps fall), the first OFF us
    into a period, otherwise the simulator's ADC clock runs on with the reads. Asserts that the
    contactor stayed closed and that the window always held the high level."""
    c = board.CONNECTORS[0]
    machine._counts_reset()
    t0 = (machine._sample_us // 1000 + 1) * 1000 + off
    for k in range(n):
        if esp32:
            machine._sample_us = t0 + _STEP_US * k
        e.step()
        assert e.relay and e.pilot.seen and e.cp == "C", (k, e.limit_a)
    return (machine._adc_reads[c["pilot_adc"]] + machine._adc_reads[c["pp_adc"]]) * (1000000 // _STEP_US) // n


def test_a_faster_adc_never_opens_for_want_of_a_reading():
    # the budget's 8 reads a step cover a PWM period over the window when a read takes 25 us or
    # more; with faster reads (12 us here) a window may miss the 100 us high phase at 6 A: the
    # step then reads on rather than open, so the contactor stays closed and the state stays C
    # at every phase
    e = charging(make())
    e.limit_a = 6.0
    run(e, 20)
    step = machine._ADC_STEP_US
    machine._ADC_STEP_US = 12
    try:
        for off in range(0, 1000, 50):
            _closed_reads_per_s(e, 100, True, off)   # asserts closed, seen and C at each step
    finally:
        machine._ADC_STEP_US = step
    assert plant.violations == [], plant.violations


def test_adc_reads_per_step():
    from uwallbox.hw.pilot import BURST, CLOSED, FULL
    e = charging(make())
    c = board.CONNECTORS[0]
    machine._counts_reset()
    run(e, 100)
    assert e.relay
    pilot = machine._adc_reads[c["pilot_adc"]]
    assert 100 * CLOSED <= pilot < 100 * BURST, pilot  # closed, 32 A: until the high level shows
    e.limit_a = 6.0
    run(e, 20)
    machine._counts_reset()
    run(e, 100)
    assert e.relay
    reads = machine._adc_reads[c["pilot_adc"]]
    assert reads <= FULL + 100 * GRANT, reads  # 6 A: the budget (GRANT a step) binds:
    assert reads >= 100 * (GRANT - 1), reads   # its reads are nearly all taken (806 measured)
    e.limit_a = None
    run(e, 20)
    machine._counts_reset()
    run(e, 100)
    assert machine._adc_reads[c["pp_adc"]] == 100       # the cable's rating, once a step
    EV.update({"charge": False})
    run(e, 3)
    assert not e.relay and e.pilot.oscillating
    machine._counts_reset()
    run(e, 10)
    assert machine._adc_reads[c["pilot_adc"]] == 10 * BURST  # open: BURST and the window


def test_closed_reads_per_second_by_offer():
    # while closed a burst stops at the second read of the high level, within a budget of 8
    # reads a step (FULL banked at most): never more than 1,000 reads a second with the PP's,
    # at any offer, with the simulator's phases and with an ESP32's (a step every 10.2 ms),
    # wherever the PWM period starts; at 32 A well under the budget
    e = charging(make())
    got = {}
    for limit in (None, 16.0, 6.0):
        e.limit_a = limit
        run(e, 20)
        got[limit] = r = _closed_reads_per_s(e, 500)
        esp = [_closed_reads_per_s(e, 100, True, off) for off in range(0, 200, 20)]
        assert r <= 1000 and max(esp) <= 1000, (limit, r, esp)
        got[(limit, "esp32")] = (sum(esp) // len(esp), min(esp), max(esp))
    print("closed reads/s by offer (sim; esp32 phases: mean, min, max):", got)
    assert got[None] < got[6.0], got


async def _reads_per_second(e, c):
    """ADC reads of connector C's pilot and PP over one second of the real timer."""
    machine._counts_reset()
    t = time.ticks_us()
    await asyncio.sleep_ms(1000)
    us = time.ticks_diff(time.ticks_us(), t)
    return (machine._adc_reads[c["pilot_adc"]] + machine._adc_reads[c["pp_adc"]]) * 1000000 // us


async def test_timer_adc_reads_per_second_per_connector():
    # counted in the mocked ADC over one second of the real timer: at most 1,000 a second with
    # the contactor closed (charging at 32 A and at 6 A) and with it open (EV plugged, PWM offering)
    e = make()
    c = board.CONNECTORS[0]
    evse_mod.start_timer([e])
    idle = asyncio.create_task(machine._idle_loop(5))
    try:
        await _charging_on_timer(e)
        closed = await _reads_per_second(e, c)
        assert e.relay
        e.limit_a = 6.0                          # 10 %: the budget binds
        closed6 = await _reads_per_second(e, c)
        assert e.relay and e.offered_a == 6.0
        EV.update({"charge": False})
        while e.relay:
            await asyncio.wait_for_ms(e.changed.wait(), 1000)
        assert e.pilot.oscillating
        open_ = await _reads_per_second(e, c)
    finally:
        idle.cancel()
        evse_mod.stop_timer()
    assert 500 <= open_ <= 1000, open_           # 9 pilot + 1 PP read every 10.2 ms: 980
    assert 200 <= closed <= 1000, closed         # ~5 pilot + 1 PP every 10.2 ms at 32 A
    assert 500 <= closed6 <= 1000, closed6       # the budget: 8 pilot + 1 PP every 10.2 ms


def test_mock_counts_hardware_writes():
    # the counters tools/bench/cpu.py reads: PWM duty writes, output Pin writes, flash files
    from uwallbox.flash import store
    e = make()
    run(e)
    machine._count_flash()
    machine._counts_reset()
    run(e, 5)                                     # nothing changes: nothing written
    assert machine._counts == {"pwm": 0, "pin": 0, "flash": 0}, machine._counts
    charging(e)                                   # the offer, the lock, the RCD test, the relay
    assert machine._counts["pwm"] >= 1 and machine._counts["pin"] >= 3, machine._counts
    store.save("cfg.json", {"a": 1})
    store.save("sim_x.json", {"a": 1})            # the simulator's own files are not counted
    assert machine._counts["flash"] == 1, machine._counts
