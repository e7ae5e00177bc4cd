"""Row "heap": the standard scenario, and the smallest heap at which it still completes, for the
device image (.mpy, as on the ESP32) and for the sources (compiled at import, as the simulator runs).

The scenario: boot, MeterValueSampleInterval 1 s, GetConfiguration of every key, a local list of
CARDS entries (SendLocalList in messages of SendLocalListMaxLength), then three charging sessions:
by card (with a SetChargingProfile that lowers the offer while it charges), by
RemoteStartTransaction, and by card while the CSMS refuses connections (offline, from the local
list), whose messages are delivered once it accepts them again.
"""
import time

from .launch import LaunchFailed, device_image, firmware, frozen, registered, run_mpy, running
from simapi import SimApiError  # noqa: E402  (sim/, on the path once harness is imported)

TAG = "CARD%05d"  # idTags of the local list
_BAD = ("MemoryError", "firmware reset", "firmware exited", "Traceback")


class ProbeFailed(Exception):
    """The firmware failed the scenario (its reason is the message)."""


class Probe:
    """One run of the scenario on one firmware, within a time budget."""

    def __init__(self, cp, csms, budget_s):
        self.cp, self.csms, self.api = cp, csms, cp.api
        self.deadline = time.monotonic() + budget_s
        self._seen = 0  # characters of the log checked so far (less an overlap)

    def check(self):
        """Raise ProbeFailed if the firmware died, logged a MemoryError, or ran out of time."""
        log = self.cp.log()
        bad = next((b for b in _BAD if b in log[self._seen:]), None)
        self._seen = max(0, len(log) - 40)
        if bad or not self.cp.running:
            raise ProbeFailed(bad or "the simulator exited")
        if time.monotonic() > self.deadline:
            raise ProbeFailed("out of time")

    def left(self):
        return max(0.1, self.deadline - time.monotonic())

    def until(self, predicate):
        """The first GET /state for which PREDICATE holds, checking the firmware meanwhile."""
        while True:
            self.check()
            try:
                return self.api.wait(predicate, timeout=min(1, self.left()))
            except TimeoutError:
                pass
            except SimApiError as e:  # e.g. no heap left for the state's answer
                raise ProbeFailed(f"control API: {e}") from None

    def status(self, *statuses):
        return self.until(lambda s: s["connectors"][0]["status"] in statuses)["connectors"][0]

    def call(self, action, payload, expect=None):
        """The firmware's answer to a CALL; ProbeFailed without one, or if it differs from EXPECT."""
        self.check()
        try:
            answer = self.csms.call(self.cp.id, (action, payload), timeout=min(15, self.left()))
        except Exception as e:  # CallErrorResponse, TimeoutError, ConnectionError
            raise ProbeFailed(f"{action}: {e!r}") from None
        if expect is not None and answer != expect:
            raise ProbeFailed(f"{action}: {answer}")
        return answer

    def wait_for(self, action, predicate, since):
        """Csms.wait_for() for our charge point, checking the firmware meanwhile."""
        while True:
            self.check()
            try:
                return self.csms.wait_for(action, predicate, min(1, self.left()), self.cp.id, since)
            except TimeoutError:
                pass


def scenario(p, cards):
    """Run the standard scenario on probe P."""
    p.until(lambda s: s["ocpp"]["registration"] == "Accepted" and s["ocpp"]["connected"])
    ok = {"status": "Accepted"}
    p.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"}, ok)
    keys = p.call("GetConfiguration", {})["configurationKey"]
    chunk = int(next(k["value"] for k in keys if k["key"] == "SendLocalListMaxLength"))
    for n, first in enumerate(range(0, cards, chunk)):
        entries = [{"idTag": TAG % i, "idTagInfo": {"status": "Accepted"}}
                   for i in range(first, min(cards, first + chunk))]
        p.call("SendLocalList", {"listVersion": n + 1, "updateType": "Differential" if n else "Full",
                                 "localAuthorizationList": entries}, ok)

    def card(i):
        return lambda *_: p.api.rfid(TAG % i)

    _session(p, card(1), card(1), profile=True)
    _session(p, lambda: p.call("RemoteStartTransaction", {"idTag": TAG % 2, "connectorId": 1}, ok),
             lambda tid: p.call("RemoteStopTransaction", {"transactionId": tid}, ok))
    p.csms.auth = {}  # every connection refused (HTTP 401): offline
    p.csms.disconnect(p.cp.id)
    p.until(lambda s: not s["ocpp"]["connected"])
    mark = p.csms.mark()
    _session(p, card(cards - 1), card(cards - 1), online=False)
    p.csms.auth = None
    p.wait_for("StopTransaction", lambda q: q.get("idTag") == TAG % (cards - 1), mark)


def _session(p, start, stop, online=True, profile=False):
    """Plug in, START(), charge with meter values every second (ONLINE: wait for the first; PROFILE:
    set a TxProfile of 10 A and wait for the offer to follow), STOP(transactionId), unplug."""
    mark = p.csms.mark()
    p.api.ev(plug=True, charge=True, max_a=16)
    start()
    # Charging may show before the CSMS's transactionId has come back: online, wait for both
    tid = p.until(lambda s: s["connectors"][0]["status"] == "Charging"
                  and (not online or s["connectors"][0]["transaction_id"] is not None))["connectors"][0]["transaction_id"]
    if profile:
        p.call("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 1, "transactionId": tid, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]}}},
            {"status": "Accepted"})
        p.until(lambda s: s["connectors"][0]["offered_a"] == 10)
    if online:
        p.wait_for("MeterValues", None, mark)
    time.sleep(1.5)  # a couple of samples
    stop(tid)
    p.status("Finishing")
    p.api.ev(plug=False)
    p.status("Available")


def probe(heap_k, cards, budget_s):
    """(passed, why, seconds): the scenario at -X heapsize=<heap_k>K."""
    t = time.monotonic()
    try:
        with firmware(f"{heap_k}K") as (cp, csms):
            scenario(Probe(cp, csms, budget_s), cards)
    except (ProbeFailed, LaunchFailed) as e:
        return False, str(e).split(";")[0], time.monotonic() - t
    return True, "", time.monotonic() - t


def after_boot():
    """(heap in use once registered, after a gc.collect() (GET /state), bytes: the least of 3
    reads; the part of it the simulated hardware holds)."""
    with firmware() as (cp, csms):
        registered(cp, csms)
        time.sleep(1)
        heaps = [cp.api.state()["heap"] for _ in range(3)]
        return min(h["alloc"] for h in heaps), heaps[0]["sim"]


def word_bytes():
    """Bytes of a machine word of the micropython binary (4: the 32-bit build, like the ESP32's)."""
    return int(run_mpy(["-c", "import sys; print(8 if sys.maxsize >> 32 else 4)"]).stdout)


def smallest_heap(cards, lo, hi, step, log):
    """Bisection: the smallest heap (whole KiB, to STEP) at which the scenario passes, LO taken as
    failing, HI tried first (doubled until it passes). {"heap_k", "probes": [...]}."""
    probes = []

    def run(k):
        budget = 3 * min([p["seconds"] for p in probes if p["passed"]] or [120])
        ok, why, s = probe(k, cards, budget)
        probes.append({"heap_k": k, "passed": ok, "why": why, "seconds": round(s, 1)})
        log(f"heap {k}K: {'passed' if ok else 'failed (' + why + ')'} in {s:.1f} s")
        return ok

    while not run(hi):
        lo, hi = hi, hi * 2
    while hi - lo > step:
        mid = (lo + hi) // 2
        if run(mid):
            hi = mid
        else:
            lo = mid
    # passing is not monotonic within a few K (where a large block lands): the figure is the
    # smallest heap at which the next WINDOW sizes above it pass too
    k, inc = hi, max(step, 2)
    while k < hi + WINDOW:
        k += inc
        if not run(k):  # a failure above: the figure moves past it, to a size that passes
            hi = k + inc
            while not run(hi):
                hi += inc
            k = hi
    return {"heap_k": hi, "probes": probes}


WINDOW = 6  # K above the bisection's figure that must pass too


def measure(cards, lo, hi, step, log):
    """smallest_heap() and after_boot() of the device image ("mpy"), of the firmware frozen into the
    32-bit binary ("frozen") and of the sources ("source")."""
    out = {"cards": cards, "word_bytes": word_bytes()}
    with device_image() as image:
        for name, folder in (("mpy", image), ("frozen", None), ("source", None)):
            with running(folder), frozen(name == "frozen"):
                log(f"heap of the {name} firmware")
                used, sim = after_boot()
                out[name] = {**smallest_heap(cards, lo, hi, step, log), "after_boot_bytes": used,
                             "sim_bytes": sim}
    return out

