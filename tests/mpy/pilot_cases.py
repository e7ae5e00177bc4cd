# MicroPython cases for firmware/uwallbox/hw/pilot.py (run by tests/test_pilot.py).
import board
import machine
from uwallbox.hw import pilot
from uwallbox.hw.pilot import Pilot, classify, duty_for

CONN = board.CONNECTORS[0]


def close(a, b, tol):
    return abs(a - b) <= tol


def test_duty_for_table():
    table = ((6, 10.0), (10, 16.667), (16, 26.667), (32, 53.333), (51, 85.0), (52, 84.8),
             (63, 89.2), (80, 96.0), (100, 96.0), (6.0, 10.0), (13, 21.667))
    for amps, want in table:
        got = duty_for(amps)
        assert got is not None and close(got, want, 0.001), (amps, got, want)
    for amps in (5.9, 0, -1, None):
        assert duty_for(amps) is None, amps


def test_amps_for_inverts_duty_for():
    for amps in (6, 10, 16, 20, 32, 40, 51, 53, 63, 70, 80):
        assert close(pilot.amps_for(duty_for(amps)), amps, 0.01), amps
    # IEC's two formulas overlap: 52 A -> 84.8 %, which an EV reads as 50.88 A
    assert close(pilot.amps_for(duty_for(52)), 50.88, 0.01)
    assert pilot.amps_for(5.0) is None      # digital communication only
    assert pilot.amps_for(100.0) is None
    assert pilot.amps_for(8.5) == 6.0


def test_classify_table():
    table = ((12000, "A"), (10600, "A"), (10400, "B"), (9000, "B"), (7600, "B"), (7400, "C"),
             (6000, "C"), (4600, "C"), (4400, "D"), (3000, "D"), (1600, "D"), (1400, "E"),
             (0, "E"), (-1400, "E"), (-9000, "E"), (-10100, "F"), (-12000, "F"))
    for mv, want in table:
        assert classify(mv) == want, (mv, classify(mv), want)


def test_classify_hysteresis():
    # within 400 mV beyond a threshold the previous state holds
    assert classify(10300, "A") == "A"
    assert classify(10000, "A") == "B"
    assert classify(10800, "B") == "B"
    assert classify(11000, "B") == "A"
    assert classify(7200, "B") == "B"
    assert classify(7000, "B") == "C"
    assert classify(7800, "C") == "C"
    assert classify(8000, "C") == "B"
    assert classify(4300, "C") == "C"
    assert classify(1700, "E") == "E"
    assert classify(2000, "E") == "D"
    # no hysteresis across more than one band
    assert classify(6000, "A") == "C"
    assert classify(-12000, "B") == "F"
    # nominal levels never depend on the previous state
    for mv, want in ((12000, "A"), (9000, "B"), (6000, "C"), (3000, "D"), (0, "E"), (-12000, "F")):
        for prev in ("A", "B", "C", "D", "E", "F", None):
            assert classify(mv, prev) == want, (mv, prev)


def test_sample_levels_through_the_plant():
    ev = board.plants[0]
    p = Pilot(CONN["pilot_pwm"], CONN["pilot_adc"], board.PILOT_CAL)
    # (plug, charge, diode_fault) -> expected high (mV) with PWM on; EV in C only with an offer
    cases = ((False, False, False, 12000, -12000), (True, False, False, 9000, -12000),
             (True, True, False, 6000, -12000), (True, False, True, 9000, -9000),
             (True, True, True, 6000, -6000))
    for duty in (5.0, 8.0, 10.0, 26.667, 50.0, 85.0, 96.0, 97.0):
        p.set_duty(duty)
        for plug, charge, diode, hi, lo in cases:
            ev.update({"plug": plug, "charge": charge, "diode_fault": diode})
            if duty < 8 and charge:
                hi, lo = 9000, (-9000 if diode else -12000)   # 5 %: no analog offer, EV in B
            for _ in range(3):
                h, l = p.sample()
                assert close(h, hi, 100) and close(l, lo, 100), (duty, plug, charge, diode, h, l)


def test_sample_steady_levels():
    ev = board.plants[0]
    p = Pilot(CONN["pilot_pwm"], CONN["pilot_adc"], board.PILOT_CAL)
    ev.update({"plug": False})
    p.standby()
    assert p.duty == 100.0 and not p.oscillating
    h, l = p.sample()
    assert close(h, 12000, 100) and close(l, 12000, 100), (h, l)
    ev.update({"plug": True, "charge": True})
    h, l = p.sample()
    assert close(h, 9000, 100) and close(l, 9000, 100), (h, l)   # no PWM: EV stays in B
    assert classify(h) == "B"
    p.disable()
    assert p.duty == 0.0 and not p.oscillating
    h, l = p.sample()
    assert close(h, -12000, 100) and close(l, -12000, 100), (h, l)
    assert classify(h) == "F"
    ev.update({"pilot_short": True}, ("pilot_short",))
    p.offer(16)
    h, l = p.sample()
    assert classify(h) == "E" and close(l, 0, 100), (h, l)


def test_offer_sets_pwm_duty():
    p = Pilot(CONN["pilot_pwm"], CONN["pilot_adc"], board.PILOT_CAL)
    assert machine._pwm_state(CONN["pilot_pwm"]) == (1000, 65535)
    assert close(p.offer(16), 26.667, 0.001)
    f, d = machine._pwm_state(CONN["pilot_pwm"])
    assert f == 1000 and close(d, 65535 * 26.667 / 100, 2), d
    assert p.oscillating
    assert p.offer(5) == 100.0 and machine._pwm_state(CONN["pilot_pwm"])[1] == 65535
    p.disable()
    assert machine._pwm_state(CONN["pilot_pwm"])[1] == 0


def test_measure_allocates_nothing_in_loop():
    import gc
    import micropython
    p = Pilot(CONN["pilot_pwm"], CONN["pilot_adc"], board.PILOT_CAL)
    p.offer(16)
    # replace the mock's ADC read with an allocation-free stand-in: measures the loop itself
    vals = [700000, 2300000]
    k = [0]

    def read():
        k[0] ^= 1
        return vals[k[0]]
    p._read = read
    p.measure()
    gc.collect()
    micropython.heap_lock()
    try:
        p.measure()
    finally:
        micropython.heap_unlock()
    assert p.high_mv > p.low_mv


def test_amps_for_boundaries():
    table = ((7.9, None), (8.0, 6.0), (9.99, 6.0), (10.0, 6.0), (16.0, 9.6), (50.0, 30.0),
             (85.0, 51.0), (85.1, 52.75), (90.0, 65.0), (96.0, 80.0), (96.5, 80.0), (97.0, 80.0),
             (97.1, None), (0.0, None), (100.0, None))
    for duty, want in table:
        got = pilot.amps_for(duty)
        ok = got is None if want is None else got is not None and close(got, want, 0.001)
        assert ok, (duty, got, want)


def test_classify_exact_thresholds():
    # a level exactly on a threshold belongs to the lower state
    table = ((10501, "A"), (10500, "B"), (7501, "B"), (7500, "C"), (4501, "C"), (4500, "D"),
             (1501, "D"), (1500, "E"), (-9999, "E"), (-10000, "F"))
    for mv, want in table:
        assert classify(mv) == want, (mv, classify(mv), want)


def test_offer_as_the_ev_reads_it():
    # the 16-bit duty the PWM really runs at: the EV reads the offered current, never more
    ev = board.plants[0]
    p = Pilot(CONN["pilot_pwm"], CONN["pilot_adc"], board.PILOT_CAL)
    for amps in (6, 6.5, 8, 10, 13, 16, 20, 25, 32, 40, 48, 51, 53, 60, 63, 70, 75, 80):
        p.offer(amps)
        got = ev.offered_a()
        assert close(got, amps, 0.01) and got <= amps + 0.005, (amps, got, p.duty)
    for amps in (0, 5.99, None):
        p.offer(amps)
        assert p.duty == 100.0 and ev.offered_a() == 0.0, amps


def test_state_table_through_the_plant():
    # what the EV does -> the state the EVSE classifies (PWM offering 16 A)
    ev = board.plants[0]
    p = Pilot(CONN["pilot_pwm"], CONN["pilot_adc"], board.PILOT_CAL)
    p.offer(16)
    table = (({"plug": False}, "A"), ({"plug": True}, "B"), ({"plug": True, "charge": True}, "C"),
             ({"plug": True, "charge": True, "ventilation": True}, "D"),
             ({"plug": True, "charge": False, "ventilation": True}, "B"))
    for kw, want in table:
        ev.update({"plug": False, "charge": False, "ventilation": False})
        ev.update(kw)
        assert classify(p.sample()[0]) == want, (kw, p.high_mv)
    ev.update({"plug": True})
    ev.update({"pilot_short": True}, ("pilot_short",))
    assert classify(p.measure()) == "E", p.high_mv       # E: at once, from one burst
    ev.update({"pilot_short": False}, ("pilot_short",))
    p.disable()
    assert classify(p.measure()) == "F", p.high_mv       # a steady level: at once
