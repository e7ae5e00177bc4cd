"""Composite charging schedules (OCPP 1.6 section 3.13; the rules in docs/OCPP.md, "Composite
schedule"). Pure: no I/O.

A profile covers an instant when it is valid then (validFrom <= t < validTo) and a period of its
schedule runs then. Per purpose, the covering profile with the highest stackLevel wins (at equal
level a connector's own TxDefaultProfile beats the connector-0 one); a TxProfile overrides the
TxDefaultProfile; the board's current (max_a) caps the result, and the ChargePointMaxProfile caps
the sum of the connectors that charge, which share it. An offer below the pilot minimum (6 A) or
below the schedule's minChargingRate cannot be made: it is 0 and charging pauses.
Times are integer Unix seconds; limits are compared in A. A limit in W becomes A with the phases
the connector actually uses (the board's wiring), never with the period's numberPhases: a 4140 W
limit marked numberPhases 1 on a car that charges on 3 phases is 6 A per phase, not 18 A, so the
power drawn never exceeds the limit whatever the profile claims (the lower current when unsure).
"""
from array import array
from collections import namedtuple
from micropython import const

from ..clock import parse

PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
CP_MAX = const(0)
TX_DEFAULT = const(1)
TX = const(2)
PILOT_MIN_A = 6.0
_RECURRENCE = {"Daily": 86400, "Weekly": 604800}
_NEVER = const(1 << 40)  # a time after every other
_STEPS = const(512)  # evaluations for one composite schedule at most


# One installed charging profile, compact: a tuple, its periods one array of (startPeriod,
# limit in tenths of its unit, numberPhases or 0) triples; few allocations, so the heap stays whole.
Profile = namedtuple("Profile", ("id", "cid", "ref", "purpose", "stack", "recur", "start", "duration",
                                 "valid_from", "valid_to", "watts", "min_rate", "periods"))


def compact(p, cid, ref=None):
    """The Profile of P (a csChargingProfiles dict) on connector CID; REF: a TxProfile's
    transaction (the connector's local reference)."""
    s = p["chargingSchedule"]
    kind = p["chargingProfileKind"]
    start = s.get("startSchedule")
    return Profile(
        p["chargingProfileId"], cid, ref, PURPOSES.index(p["chargingProfilePurpose"]), p["stackLevel"],
        _RECURRENCE[p.get("recurrencyKind", "Daily")] if kind == "Recurring" else 0,
        None if start is None or kind == "Relative" else int(parse(start)),  # None: from the anchor
        s.get("duration") or 0,
        int(parse(p["validFrom"])) if "validFrom" in p else 0,
        int(parse(p["validTo"])) if "validTo" in p else _NEVER,
        s["chargingRateUnit"] == "W", s.get("minChargingRate", 0),
        array("i", [v for q in s["chargingSchedulePeriod"]
                    for v in (q["startPeriod"], int(q["limit"] * 10 + 0.5), q.get("numberPhases", 0))]))


def period(p, t, anchor):
    """(index of the period of profile P running at T or -1, time of the next change after T).
    ANCHOR starts a schedule without startSchedule (the transaction start)."""
    if t < p.valid_from:
        return -1, p.valid_from
    if t >= p.valid_to:
        return -1, _NEVER
    s = anchor if p.start is None else p.start
    nxt = p.valid_to
    rec = p.recur
    if rec:  # the occurrence running at t
        s += (t - s) // rec * rec
        nxt = min(nxt, s + rec)
        end = s + min(p.duration or rec, rec)
    else:
        end = s + p.duration if p.duration else _NEVER
    per = p.periods
    if t < s:
        return -1, min(nxt, s + per[0])
    if t >= end:
        return -1, nxt
    i = len(per) - 3
    while i >= 0 and s + per[i] > t:
        i -= 3
    if i < 0:
        return -1, min(nxt, s + per[0])
    return i // 3, min(nxt, end, s + per[i + 3] if i + 3 < len(per) else _NEVER)


def _amps(p, value, volts, phases):
    """VALUE (in the unit of profile P) in A per phase, on PHASES phases in use."""
    return value / (volts * phases) if p.watts else value


def _limit(p, i, volts, phases):
    """The limit of period I of profile P, in A per phase on PHASES phases in use."""
    return _amps(p, p.periods[3 * i + 1] / 10, volts, phases)


def _winner(profiles, purpose, cid, ref, t, anchor):
    """(profile, period index, next change) in force for PURPOSE on connector CID at T."""
    best, bi, nxt = None, -1, _NEVER
    for p in profiles:
        if p.purpose != purpose or (p.cid != cid or p.ref != ref if purpose == TX else p.cid not in (0, cid)):
            continue
        i, n = period(p, t, anchor)
        nxt = min(nxt, n)
        if i >= 0 and (best is None or p.stack > best.stack or p.stack == best.stack and p.cid > best.cid):
            best, bi = p, i
    return best, bi, nxt


def _share(cap, own, floor, charging):
    """OWN (A per connector) capped so that the charging ones share CAP (None: no cap). A share
    below its FLOOR is 0 and frees its part for the others: the highest connector pauses first."""
    out = list(own)
    if cap is not None:
        out = [min(a, cap) for a in own]
        group = [k for k in range(len(own)) if charging[k] and own[k] >= floor[k]]
        while group:
            rem, left = cap, len(group)
            for k in sorted(group, key=lambda k: own[k]):
                out[k] = min(own[k], rem / left)
                rem -= out[k]
                left -= 1
            short = [k for k in group if out[k] < floor[k]]
            if not short:
                break
            group.remove(short[-1])
    return [a if a >= f else 0.0 for a, f in zip(out, floor)]


def offers(profiles, conns, t, origin, volts, phases=3):
    """The current each connector may be offered at T: (amps list, phases list, next change).
    CONNS: per connector (1, 2, ...) a tuple (transaction ref, anchor, charging, max_a); anchor is
    its transaction start, None for ORIGIN. PHASES: the phases each connector uses (the board's
    wiring), one number for all or a list per connector; a period's numberPhases does not change
    them (no 3-to-1 phase switching). The ChargePointMaxProfile's W become A on the most phases
    any connector uses."""
    n = len(conns)
    own, floor = [c[3] for c in conns], [PILOT_MIN_A] * n
    phs = list(phases) if isinstance(phases, (list, tuple)) else [phases] * n
    nxt = _NEVER
    for k in range(n):
        ref, anchor = conns[k][0], conns[k][1]
        anchor = origin if anchor is None else anchor
        p, i, nxt_tx = _winner(profiles, TX, k + 1, ref, t, anchor)
        q, j, nxt_def = _winner(profiles, TX_DEFAULT, k + 1, None, t, anchor)
        nxt = min(nxt, nxt_tx, nxt_def)
        if p is None:
            p, i = q, j
        if p is not None:
            own[k] = min(own[k], _limit(p, i, volts, phs[k]))
            floor[k] = max(PILOT_MIN_A, _amps(p, p.min_rate, volts, phs[k]))
    p, i, n_max = _winner(profiles, CP_MAX, 0, None, t, origin)
    cap = None if p is None else _limit(p, i, volts, max(phs))
    return _share(cap, own, floor, [c[2] for c in conns]), phs, min(nxt, n_max)


def composite(profiles, conns, cid, start, duration, unit, volts, phases, most):
    """GetCompositeSchedule: (chargingSchedulePeriod list, duration covered) for connector CID
    (0: the whole charge point) from START for DURATION s, limits in UNIT ('A' or 'W'), assuming
    the connector(s) charge. A schedule of more than MOST periods is cut short."""
    conns = [(c[0], c[1], cid in (0, k + 1) or c[2], c[3]) for k, c in enumerate(conns)]
    end = start + duration
    out = []
    t = start
    for _ in range(_STEPS):
        amps, phs, nxt = offers(profiles, conns, t, start, volts, phases)
        a, ph = (amps[cid - 1], phs[cid - 1]) if cid else (sum(amps), phases)
        v = round(a * volts * ph if unit == "W" else a, 1)
        last = out[-1] if out else None
        if last is None or last["limit"] != v or last.get("numberPhases", 3) != ph:
            if len(out) == most:
                return out, t - start
            out.append({"startPeriod": t - start, "limit": v})
            if ph != 3:
                out[-1]["numberPhases"] = ph
        if nxt >= end:
            return out, duration
        t = nxt
    return out, t - start
