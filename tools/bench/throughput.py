"""Row "rpc": CALLs answered per second and CPU seconds per CALL, of the firmware (micropython)
and of the reference charge point (tools/bench/refcp.py, CPython + `ocpp`), side by side: one CSMS
sends both the same CALLs one after another (GetConfiguration of one key and DataTransfer,
alternating), in batches that take turns, so that both see the same machine load. The CPU a
process uses while idle (the simulated firmware steps its Evse every 10 ms and ticks every 5 ms),
measured just before, is also subtracted: "net" CPU per call.
"""
import subprocess
import sys
import time
from pathlib import Path

from .launch import firmware, firmware_pid, registered
from .measure import cpu_seconds, spread

REF = Path(__file__).with_name("refcp.py")
REF_ID = "REF001"


def _request(i):
    if i % 2:
        return "DataTransfer", {"vendorId": "bench", "messageId": "ping", "data": str(i)}
    return "GetConfiguration", {"key": ["HeartbeatInterval"]}


def _idle(pid, seconds=2):
    """The share of a core process PID uses while nobody talks to it."""
    cpu = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / seconds


def _batch(csms, cp_id, pid, n, idle):
    """(calls per second, CPU seconds per call of process PID, the same less its IDLE share of a
    core) for N calls to CP_ID."""
    cpu, t = cpu_seconds(pid), time.perf_counter()
    for i in range(n):
        csms.call(cp_id, _request(i))
    wall, cpu = time.perf_counter() - t, cpu_seconds(pid) - cpu
    return n / wall, cpu / n, (cpu - idle * wall) / n


def measure(calls, batches):
    """CALLS calls to each charge point in BATCHES batches each."""
    runs = {"firmware": [], "reference": []}
    with firmware() as (cp, csms):
        registered(cp, csms)
        ref = subprocess.Popen([sys.executable, str(REF), csms.url, REF_ID])
        try:
            csms.wait_for("BootNotification", cp_id=REF_ID)
            pids = {"firmware": (cp.id, firmware_pid(cp)), "reference": (REF_ID, ref.pid)}
            idle = {side: _idle(pid) for side, (_, pid) in pids.items()}
            for _ in range(batches):
                for side, (cp_id, pid) in pids.items():
                    runs[side].append(_batch(csms, cp_id, pid, calls // batches, idle[side]))
        finally:
            ref.terminate()
            ref.wait()
    out = {side: {"calls_per_s": spread([r[0] for r in rs]), "cpu_s_per_call": spread([r[1] for r in rs]),
                  "net_cpu_s_per_call": spread([r[2] for r in rs]), "idle_cpu_share": idle[side]}
           for side, rs in runs.items()}
    fw, ref = out["firmware"], out["reference"]
    out.update(calls=calls, batches=batches,
               cpu_ratio=fw["net_cpu_s_per_call"]["median"] / ref["net_cpu_s_per_call"]["median"],
               rate_ratio=fw["calls_per_s"]["median"] / ref["calls_per_s"]["median"])
    return out
