"""Smart Charging profile: the CSMS's charging profiles, and the pilot following them.

Imported only when needed: at boot when profiles are installed (app.py), else by the first Smart
Charging request. Each profile is one file in flash, DIR/<chargingProfileId>.json; the folder goes
when the last profile does. The Scheduler task sets every Evse's limit_a from the composite
schedule (schedule.py) now, then sleeps until the next period boundary or an event: a profile
change, a transaction start or end (Connector.apply), a clock jump (Clock.listener).
"""
import asyncio
import os
import sys
from micropython import const

from .. import files, unload
from ..clock import iso, parse
from ..flash import store
from ..log import log
from ..station.schedule import PURPOSES, TX, compact, composite, offers

DIR = files.PROFILES  # app.py starts the Scheduler at boot when this folder exists
_UNITS = {"A": "Current", "W": "Power"}
_MAX_SLEEP = const(3600)  # s: the task looks again at least this often
_LATE_MS = const(5)  # wake this much after a boundary, so that it has passed


def _path(pid):
    return "%s/%d.json" % (DIR, pid)


def _phases(app):
    """The phases each connector's limit in W is divided by: the board's wiring, or more when its
    meter measures current on more phases (a board that says fewer than it has). Never fewer: an
    EV drawing on one phase of three may switch to three at any time, and an offer made for one
    phase would then let it draw three times the power limit."""
    wired = app.config["Phases"]
    out = []
    for c in app.connectors:
        n = getattr(c, "phases_in_use", None)
        out.append(n if n is not None and n > wired else wired)
    return out


def _connectors(app):
    """What schedule.offers needs of each connector."""
    return [(c.tx.ref, int(c.tx.started), c.tx.allowed, c.evse.max_a) if c.tx
            else (None, None, False, c.evse.max_a) for c in app.connectors]


class Scheduler:
    """The installed profiles (compact in RAM, one file each in flash) and the pilot task."""

    def __init__(self, app):
        self.app = app
        self.profiles = []
        self.pending = {}  # connectorId -> RemoteStartTransaction's TxProfile until its transaction
        self.wake = asyncio.Event()
        self.limits = None  # the last limit_a of each Evse
        store.mkdir(DIR)
        for name in os.listdir(DIR):
            d = store.load(DIR + "/" + name) if name.endswith(".json") else None
            try:
                self.profiles.append(compact(d["p"], d["c"], d["r"]))
            except (KeyError, TypeError, ValueError):  # a write cut short, or not ours: no boot loop
                store.remove(DIR + "/" + name)
        app.clock.listener = self.wake.set
        app.spawn("smart-charging", self.run())

    def install(self, cid, p, ref=None):
        """Install profile P on connector CID (REF: a TxProfile's transaction), replacing the one
        with its id and the one with its purpose, stackLevel and connector. None, or why not."""
        new = compact(p, cid, ref)
        old = [q for q in self.profiles if q.id == new.id
               or q.purpose == new.purpose and q.stack == new.stack and q.cid == cid]
        if len(self.profiles) - len(old) >= self.app.config["MaxChargingProfilesInstalled"]:
            return "MaxChargingProfilesInstalled reached"
        store.mkdir(DIR)
        store.save(_path(new.id), {"c": cid, "r": ref, "p": p})
        for q in old:
            self.profiles.remove(q)
            if q.id != new.id:
                store.remove(_path(q.id))
        self.profiles.append(new)
        self.wake.set()
        return None

    def remove(self, q):
        """Uninstall profile Q."""
        self.profiles.remove(q)
        store.remove(_path(q.id))
        if not self.profiles:
            try:
                os.rmdir(DIR)
            except OSError:
                pass
        self.wake.set()

    def _sync(self):
        """A RemoteStartTransaction's TxProfile begins with its transaction; TxProfiles end with theirs."""
        for cid in list(self.pending):
            c = self.app.connector(cid)
            if c.tx:
                why = self.install(cid, self.pending.pop(cid), c.tx.ref)
                if why:
                    log("smart", "RemoteStartTransaction profile dropped: " + why)
            elif c.pending is None:
                del self.pending[cid]
        for q in [q for q in self.profiles if q.purpose == TX]:
            c = self.app.connector(q.cid)
            if c is None or c.tx is None or c.tx.ref != q.ref:
                self.remove(q)

    def apply(self):
        """Set every Evse's limit_a for now; return the time of the next change."""
        app = self.app
        self._sync()
        now = int(app.clock.now())
        if self.profiles:
            cfg = app.config
            amps, _, nxt = offers(self.profiles, _connectors(app), now, now, cfg["NominalVoltage"],
                                  _phases(app))
        else:
            amps, nxt = [None] * len(app.evses), now + _MAX_SLEEP
        for e, a in zip(app.evses, amps):
            e.limit_a = a
        if amps != self.limits:
            self.limits = amps
            log("smart", "limit per connector (A): " + ", ".join("-" if a is None else "%.1f" % a
                                                               for a in amps))
        return nxt

    async def run(self):
        while True:
            self.wake.clear()
            clk = self.app.clock
            nxt = self.apply()
            if not self.profiles and not self.pending:
                return self._end()
            delay = min(nxt - clk.now(), _MAX_SLEEP)  # whole seconds of the wall clock
            # ... less the part of the present second already gone: the boundary is met on time,
            # not up to a second late
            ms = max(delay * 1000 - clk.subsec_ms(), 0) + _LATE_MS
            try:
                await asyncio.wait_for_ms(self.wake.wait(), ms)
            except asyncio.TimeoutError:
                pass


    def _end(self):
        """No profile left (limits lifted by apply()): the task ends and this module and
        schedule.py leave the heap (~2 KB); the next profile starts a Scheduler again."""
        app = self.app
        app.smart = app.clock.listener = None
        app.tasks.pop("smart-charging", None)  # a finished task would keep the module's functions
        unload([k for k in sys.modules if k not in _MODULES])


_MODULES = ("uwallbox.profiles.smartcharging", "uwallbox.station.schedule")


def scheduler(app):
    """The Scheduler, started on first use."""
    if app.smart is None:
        app.smart = Scheduler(app)
    return app.smart


def _refusal(app, cid, p, remote=False):
    """Why profile P cannot go on connector CID (None: it can). REMOTE: P comes with a
    RemoteStartTransaction, for the transaction it starts."""
    cfg = app.config
    purpose = p["chargingProfilePurpose"]
    s = p["chargingSchedule"]
    periods = s["chargingSchedulePeriod"]
    c = app.connector(cid)
    if cid and c is None or cid < 0:
        return "no connector %d" % cid
    if purpose == "ChargePointMaxProfile" and cid:
        return "ChargePointMaxProfile on connector 0 only"
    if purpose == "TxProfile":
        if not cid:
            return "TxProfile on connector 0"
        if not remote and c.tx is None:
            return "no transaction on connector %d" % cid
        if not remote and "transactionId" in p and p["transactionId"] != c.transaction_id:
            return "transaction %d is not running on connector %d" % (p["transactionId"], cid)
    elif remote:
        return "RemoteStartTransaction takes a TxProfile"
    elif "transactionId" in p:
        return "transactionId in a TxProfile only"
    if not 0 <= p["stackLevel"] <= cfg["ChargeProfileMaxStackLevel"]:
        return "stackLevel beyond ChargeProfileMaxStackLevel"
    if not 0 < len(periods) <= cfg["ChargingScheduleMaxPeriods"]:
        return "number of periods beyond 1..ChargingScheduleMaxPeriods"
    if _UNITS[s["chargingRateUnit"]] not in cfg["ChargingScheduleAllowedChargingRateUnit"].split(","):
        return "unit not in ChargingScheduleAllowedChargingRateUnit"
    starts = [q["startPeriod"] for q in periods]
    if starts[0] != 0 or any(a >= b for a, b in zip(starts, starts[1:])):
        return "periods must start at 0 and ascend"
    if any(q["limit"] < 0 or not 1 <= q.get("numberPhases", 3) <= 3 for q in periods):
        return "a limit below 0 or numberPhases not 1-3"
    if p["chargingProfileKind"] == "Recurring" and not ("recurrencyKind" in p and "startSchedule" in s):
        return "Recurring needs recurrencyKind and startSchedule"
    if s.get("duration", 0) < 0 or s.get("minChargingRate", 0) < 0:
        return "negative duration or minChargingRate"
    if "validFrom" in p and "validTo" in p and parse(p["validFrom"]) >= parse(p["validTo"]):
        return "validTo not after validFrom"
    return None


def set_charging_profile(app, p):
    cid, prof = p["connectorId"], p["csChargingProfiles"]
    why = _refusal(app, cid, prof)
    if why is None:
        tx = app.connector(cid).tx if prof["chargingProfilePurpose"] == "TxProfile" else None
        why = scheduler(app).install(cid, prof, tx and tx.ref)
    if why:
        log("smart", "profile %d refused: %s" % (prof["chargingProfileId"], why))
        return {"status": "Rejected"}
    return {"status": "Accepted"}


def acceptable(app, cid, p):
    """May RemoteStartTransaction's profile P go on connector CID? (core.remote_start)"""
    why = _refusal(app, cid, p, True)
    if why:
        log("smart", "RemoteStartTransaction profile refused: " + why)
    return why is None


def remote_profile(app, cid, p):
    """RemoteStartTransaction's TxProfile P: installed when its transaction starts on connector CID."""
    s = scheduler(app)
    s.pending[cid] = p
    s.wake.set()


def _matches(q, p):
    if "id" in p:
        return q.id == p["id"]
    return (p.get("connectorId", q.cid) == q.cid and p.get("stackLevel", q.stack) == q.stack
            and p.get("chargingProfilePurpose", PURPOSES[q.purpose]) == PURPOSES[q.purpose])


def clear_charging_profile(app, p):
    s = app.smart
    gone = [q for q in s.profiles if _matches(q, p)] if s else ()
    for q in gone:
        s.remove(q)
    return {"status": "Accepted" if gone else "Unknown"}


def get_composite_schedule(app, p):
    cid, unit = p["connectorId"], p.get("chargingRateUnit", "A")
    cfg = app.config
    if not 0 <= cid <= len(app.connectors) or p["duration"] < 0 \
            or _UNITS[unit] not in cfg["ChargingScheduleAllowedChargingRateUnit"].split(","):
        return {"status": "Rejected"}
    now = int(app.clock.now())
    periods, duration = composite(app.smart.profiles if app.smart else (), _connectors(app), cid, now,
                                  p["duration"], unit, cfg["NominalVoltage"], cfg["Phases"],
                                  cfg["ChargingScheduleMaxPeriods"])
    return {"status": "Accepted", "connectorId": cid, "scheduleStart": iso(now),
            "chargingSchedule": {"duration": duration, "startSchedule": iso(now), "chargingRateUnit": unit,
                                 "chargingSchedulePeriod": periods}}
