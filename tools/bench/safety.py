"""Row "safety": how fast the contactor opens when the EV leaves state C.

One session charges; the EV stops and resumes asking for energy SAMPLES times while the firmware
is idle, then SAMPLES times while a CSMS thread keeps it busy with SendLocalList messages of
SendLocalListMaxLength entries. The plant times each opening in the mocked pins: from the moment
the EV leaves C to the relay output falling (GET /state `relay_open_latency_ms`).
"""
import threading

from .launch import firmware, registered
from .measure import spread
from .scenario import TAG


def _load(csms, cp_id, chunk, stop):
    """SendLocalList after SendLocalList (Differential, the same 10 x CHUNK cards) until STOP."""
    version = 1
    while not stop.is_set():
        first = version % 10 * chunk
        csms.call(cp_id, ("SendLocalList", {"listVersion": version, "updateType": "Differential",
                                            "localAuthorizationList": [
                                                {"idTag": TAG % i, "idTagInfo": {"status": "Accepted"}}
                                                for i in range(first, first + chunk)]}))
        version += 1


def _openings(api, n):
    """Let the EV stop and resume charging N times; the N latencies the plant measured, ms."""
    for _ in range(n):
        api.ev(charge=False)
        api.wait(lambda s: not s["connectors"][0]["relay"])
        api.ev(charge=True)
        api.wait(lambda s: s["connectors"][0]["relay"])
    return api.state()["connectors"][0]["relay_open_latency_ms"][-n:]


def measure(samples):
    with firmware() as (cp, csms):
        registered(cp, csms)
        cp.api.ev(plug=True, charge=True, max_a=16)
        cp.api.rfid("SAFETY1")
        cp.api.wait(lambda s: s["connectors"][0]["status"] == "Charging")
        idle = _openings(cp.api, samples)
        chunk = int(csms.call(cp.id, ("GetConfiguration", {"key": ["SendLocalListMaxLength"]}))
                    ["configurationKey"][0]["value"])
        stop = threading.Event()
        busy = threading.Thread(target=_load, args=(csms, cp.id, chunk, stop))
        busy.start()
        try:
            loaded = _openings(cp.api, samples)
        finally:
            stop.set()
            busy.join()
        load = len(csms.messages(cp.id, "SendLocalList", "in", "result"))
    return {"idle_ms": spread(idle, 99), "busy_ms": spread(loaded, 99), "load_messages": load}
