# MicroPython unit tests of the composite schedule (firmware/uwallbox/station/schedule.py): hand-computed
# cases. T0 is Monday 2025-01-06T00:00:00Z; the board gives 32 A per connector, 230 V, 3 phases.
from uwallbox.clock import iso
from uwallbox.station.schedule import compact, composite, offers, period

T0 = 1736121600
H = 3600
DAY = 86400
V = 230
IDLE = (None, None, False, 32)  # a connector without a transaction


def prof(pid, purpose, stack, periods, cid=0, unit="A", kind="Absolute", start=T0, ref=None, **kw):
    """A Profile; PERIODS: [(startPeriod, limit[, numberPhases])]; KW: duration, minChargingRate,
    recurrencyKind, validFrom, validTo (times in Unix seconds)."""
    sched = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        dict(zip(("startPeriod", "limit", "numberPhases"), q)) for q in periods]}
    if start is not None:
        sched["startSchedule"] = iso(start)
    p = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
         "chargingProfileKind": kind, "chargingSchedule": sched}
    for k, v in kw.items():
        if k in ("duration", "minChargingRate"):
            sched[k] = v
        else:
            p[k] = iso(v) if k.startswith("valid") else v
    return compact(p, cid, ref)


def default(pid, periods, stack=0, cid=0, **kw):
    return prof(pid, "TxDefaultProfile", stack, periods, cid, **kw)


def cpmax(pid, periods, stack=0, **kw):
    return prof(pid, "ChargePointMaxProfile", stack, periods, **kw)


def tx(ref, start, charging=True, max_a=32):
    """A connector with transaction REF started at START."""
    return (ref, start, charging, max_a)


def check(profiles, expect, cid=1, conns=(IDLE,), start=T0, duration=DAY, unit="A", covered=None,
          phases=3):
    """The composite schedule is EXPECT: [(startPeriod, limit[, numberPhases])]; PHASES: the
    board's wiring."""
    got, d = composite(profiles, list(conns), cid, start, duration, unit, V, phases, 24)
    periods = [(q["startPeriod"], q["limit"]) + ((q["numberPhases"],) if "numberPhases" in q else ())
               for q in got]
    assert periods == expect, "got %r, expected %r" % (periods, expect)
    for q in got:
        assert type(q["startPeriod"]) is int, q
    assert d == (duration if covered is None else covered), d


def test_no_profile_is_the_board_limit():
    check([], [(0, 32.0)])


def test_absolute_periods():
    check([default(1, [(0, 16), (H, 10)])], [(0, 16.0), (H, 10.0)])


def test_absolute_starting_later():
    check([default(1, [(0, 16)], start=T0 + 1800)], [(0, 32.0), (1800, 16.0)])


def test_duration_ends_the_schedule():
    check([default(1, [(0, 10)], duration=2 * H)], [(0, 10.0), (2 * H, 32.0)])


def test_higher_stack_level_wins_while_it_runs():
    check([default(1, [(0, 16)]), default(2, [(0, 8)], stack=1, start=T0 + H, duration=H)],
          [(0, 16.0), (H, 8.0), (2 * H, 16.0)])


def test_higher_stack_level_only_while_valid():
    check([default(1, [(0, 16)]), default(2, [(0, 6)], stack=1, validFrom=T0 + 600, validTo=T0 + 1200)],
          [(0, 16.0), (600, 6.0), (1200, 16.0)])


def test_valid_to_ends_a_profile():
    check([default(1, [(0, 10)], validTo=T0 + H)], [(0, 10.0), (H, 32.0)])


def test_connector_profile_beats_connector_0_at_equal_level():
    ps = [default(1, [(0, 16)], stack=1), default(2, [(0, 10)], stack=1, cid=1)]
    check(ps, [(0, 10.0)], cid=1, conns=(IDLE, IDLE))
    check(ps, [(0, 16.0)], cid=2, conns=(IDLE, IDLE))


def test_connector_0_profile_at_a_higher_level_wins():
    check([default(1, [(0, 12)], stack=2), default(2, [(0, 20)], stack=1, cid=1)], [(0, 12.0)])


def test_tx_profile_overrides_tx_default():
    ps = [default(1, [(0, 16)]),
          prof(2, "TxProfile", 0, [(0, 24)], cid=1, kind="Relative", start=None, ref=5)]
    check(ps, [(0, 24.0)], conns=(tx(5, T0),))
    check(ps, [(0, 16.0)], conns=(tx(6, T0),))  # another transaction: not its profile


def test_relative_from_the_transaction_start():
    ps = [default(1, [(0, 6), (1800, 16)], kind="Relative", start=None)]
    check(ps, [(0, 6.0), (1200, 16.0)], conns=(tx(1, T0 - 600),))


def test_relative_without_transaction_starts_now():
    check([default(1, [(0, 6), (1800, 16)], kind="Relative", start=None)], [(0, 6.0), (1800, 16.0)])


def test_daily_recurrence_across_midnight():
    # 22:00 to 06:00 every night: 10 A, from midnight + 2 h 20 A; the day is free (32 A)
    night = default(1, [(0, 10), (4 * H, 20)], kind="Recurring", recurrencyKind="Daily",
                    start=T0 - 2 * H, duration=8 * H)
    check([night], [(0, 10.0), (2 * H, 20.0), (6 * H, 32.0), (22 * H, 10.0)])


def test_weekly_recurrence():
    # weekdays 16 A, from Saturday 00:00 20 A; asked on Saturday 01:00 for 3 days
    week = default(1, [(0, 16), (5 * DAY, 20)], kind="Recurring", recurrencyKind="Weekly")
    check([week], [(0, 20.0), (2 * DAY - H, 16.0)], start=T0 + 5 * DAY + H, duration=3 * DAY)


def test_recurrence_before_its_start_schedule():
    # the daily pattern holds on days before startSchedule too: startSchedule gives its phase
    daily = default(1, [(0, 8), (12 * H, 16)], kind="Recurring", recurrencyKind="Daily", start=T0 + 3 * DAY)
    check([daily], [(0, 8.0), (12 * H, 16.0)])


def test_power_limit_in_amps_and_watts():
    p = default(1, [(0, 11040)], unit="W")  # 11040 W / (230 V * 3) = 16 A
    check([p], [(0, 16.0)])
    check([p], [(0, 11040.0)], unit="W")


def test_watts_use_the_phases_in_use_not_numberphases():
    # 8280 W marked numberPhases 1: the car charges on the board's 3 phases, so 8280 / (230 * 3) =
    # 12 A per phase (36 A per phase would draw 24,840 W, three times the limit)
    p = default(1, [(0, 8280, 1)], unit="W")
    check([p], [(0, 12.0)])
    check([p], [(0, 8280.0)], unit="W")
    # 4140 W on 3 phases is exactly 6 A; the same marked 1 phase must not become 18 A
    check([default(1, [(0, 4140, 1)], unit="W")], [(0, 6.0)])
    # below the pilot minimum on 3 phases: a pause, never more power than the limit
    check([default(1, [(0, 3680, 1)], unit="W")], [(0, 0.0)])
    # a single-phase board: 3680 W / 230 V = 16 A, whatever numberPhases says
    check([default(1, [(0, 3680, 3)], unit="W")], [(0, 16.0, 1)], phases=1)
    check([default(1, [(0, 3680, 3)], unit="W")], [(0, 3680.0, 1)], unit="W", phases=1)


def test_offered_power_never_exceeds_a_watt_limit():
    # every limit in W, any numberPhases, on 1- or 3-phase wiring: offer x V x phases <= limit
    for phases in (1, 3):
        for marked in (1, 2, 3):
            for w in (1380, 4140, 5000, 7360, 11040, 22080):
                amps, _, _ = offers([default(1, [(0, w, marked)], unit="W")], [IDLE], T0, T0, V, phases)
                assert amps[0] * V * phases <= w + 0.01, (phases, marked, w, amps)


def test_mixed_units_cap_in_watts():
    # TxDefault 16 A, ChargePointMax 8280 W = 12 A on 3 phases
    ps = [default(1, [(0, 16)]), cpmax(2, [(0, 8280)], unit="W")]
    check(ps, [(0, 12.0)])
    check(ps, [(0, 8280.0)], unit="W")


def test_charge_point_max_caps():
    check([default(1, [(0, 16)]), cpmax(2, [(0, 20), (H, 10)])], [(0, 16.0), (H, 10.0)])


def test_board_current_caps():
    check([default(1, [(0, 20)])], [(0, 16.0)], conns=((None, None, False, 16),))


def test_two_connectors_share_the_charge_point_max():
    ps = [cpmax(1, [(0, 20)])]
    both = (tx(1, T0), tx(2, T0))
    check(ps, [(0, 10.0)], cid=1, conns=both)
    check(ps, [(0, 10.0)], cid=2, conns=both)
    check(ps, [(0, 20.0)], cid=0, conns=both)
    check(ps, [(0, 20.0)], cid=1, conns=(IDLE, tx(2, T0, charging=False)))  # 2 does not charge


def test_uneven_share():
    # connector 1 wants 8 A, connector 2 takes the rest of 24 A
    ps = [cpmax(1, [(0, 24)]), default(2, [(0, 8)], cid=1)]
    both = (tx(1, T0), tx(2, T0))
    check(ps, [(0, 8.0)], cid=1, conns=both)
    check(ps, [(0, 16.0)], cid=2, conns=both)


def test_share_below_6_a_pauses_the_higher_connector():
    ps = [cpmax(1, [(0, 10)])]
    both = (tx(1, T0), tx(2, T0))
    check(ps, [(0, 10.0)], cid=1, conns=both)
    check(ps, [(0, 0.0)], cid=2, conns=both)


def test_equal_periods_merge():
    check([default(1, [(0, 16), (600, 16), (1200, 10)]),
           default(2, [(0, 16)], stack=1, start=T0 + 600, duration=600)],
          [(0, 16.0), (1200, 10.0)], duration=H)


def test_min_charging_rate():
    check([default(1, [(0, 10), (600, 7)], minChargingRate=8)], [(0, 10.0), (600, 0.0)], duration=H)


def test_below_6_a_is_a_pause():
    check([default(1, [(0, 4), (600, 6)])], [(0, 0.0), (600, 6.0)], duration=H)


def test_whole_charge_point():
    check([], [(0, 64.0)], cid=0, conns=(IDLE, IDLE))
    check([cpmax(1, [(0, 40)], start=T0 + H)], [(0, 64.0), (H, 40.0)], cid=0, conns=(IDLE, IDLE))


def test_long_schedules_are_cut_short():
    # 12 changes a day for 30 days: the first 24 periods (as many as a profile may hold), 2 days
    p = default(1, [(i * 2 * H, 6 + i) for i in range(12)], kind="Recurring", recurrencyKind="Daily")
    got, covered = composite([p], [IDLE], 1, T0, 30 * DAY, "A", V, 3, 24)
    assert len(got) == 24 and covered == 2 * DAY, (len(got), covered)
    assert got[-1] == {"startPeriod": 2 * DAY - 2 * H, "limit": 17.0}, got[-1]
    # hourly changes hidden under a constant profile: bounded work (512 steps), and the
    # covered duration says how far it got
    hidden = default(2, [(i * H, 6 + i) for i in range(24)], kind="Recurring", recurrencyKind="Daily")
    got, covered = composite([hidden, default(3, [(0, 10)], stack=1)], [IDLE], 1, T0, 30 * DAY, "A", V, 3, 24)
    assert got == [{"startPeriod": 0, "limit": 10.0}] and covered == 512 * H, (got, covered)


def test_offers_and_next_change():
    ps = [default(1, [(0, 16), (H, 4)])]
    amps, phases, nxt = offers(ps, [tx(1, T0)], T0 + 10.5, T0 + 10.5, V)
    assert amps == [16.0] and phases == [3] and nxt == T0 + H, (amps, phases, nxt)
    amps, _, nxt = offers(ps, [tx(1, T0)], T0 + H, T0 + H, V)
    assert amps == [0.0] and nxt > T0 + 1000 * DAY, (amps, nxt)
    assert offers([], [IDLE], T0, T0, V)[0] == [32.0]


def test_period_lookup():
    p = default(1, [(0, 16), (H, 10)], validFrom=T0 - H, duration=2 * H)
    assert period(p, T0 - 2 * H, 0) == (-1, T0 - H)
    assert period(p, T0 - 1, 0) == (-1, T0)
    assert period(p, T0, 0) == (0, T0 + H)
    assert period(p, T0 + H + 5, 0) == (1, T0 + 2 * H)
    assert period(p, T0 + 2 * H, 0)[0] == -1
