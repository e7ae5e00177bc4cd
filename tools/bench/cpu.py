"""Row "cpu": the firmware's periodic work, counted and timed on the unix port
(tools/bench/cpu_mpy.py), and what it would cost an ESP32 (docs/ESP32.md, "CPU budget").

Counted in the mocked hardware (sim/mpy/machine.py): ADC reads, PWM duty writes, output Pin
writes and files the firmware opens for writing, over simulated seconds (the clocks and the
plant's meter moved 1 s per second) idle and with a transaction charging at 32 A on 3 phases.
Timed with time.ticks_us under the 32-bit micropython: each Evse step, and each second's work
(98 steps and the once-a-second tasks' work).

The ESP32 estimate, per connector, is the cost model of docs/ESP32.md: the step's own Python (its
unix time less its mocked reads, counted in the step and timed alone) times SLOWDOWN, plus its ADC reads times READ_US,
98 times a second, plus the once-a-second work times SLOWDOWN. SLOWDOWN and READ_US are
assumptions (stated there), not measurements.
"""
import json
import tempfile
from pathlib import Path

from .launch import run_mpy
from .measure import spread

SCRIPT = Path(__file__).with_name("cpu_mpy.py")
# assumptions of the cost model (docs/ESP32.md, "CPU budget"): MHz -> (bytecode slowdown vs the
# unix port on a current x86-64 core, one machine.ADC.read_uv() in us)
ESP32 = {240: (50, 25), 160: (75, 30)}


def _median(xs):
    return spread(xs)["median"]


def measure(steps, seconds):
    with tempfile.TemporaryDirectory(prefix="uwb-bench-") as tmp:
        r = run_mpy([str(SCRIPT), str(steps), str(seconds)], cwd=tmp, timeout=600)
    if r.returncode:
        raise RuntimeError(f"{SCRIPT.name} failed:\n{r.stdout}{r.stderr}")
    d = json.loads(r.stdout.splitlines()[-1])
    per_s = d["steps_per_s"]
    out = {"burst": d["burst"], "grant": d["grant"],
           "steps_per_s": per_s, "mock_read_us": d["mock_read_us"],
           "assumptions": {str(mhz): {"slowdown": k, "read_us": us} for mhz, (k, us) in ESP32.items()},
           "esp32": {}}
    for name in ("idle", "charging"):
        p = d[name]
        c, n = p["second_counts"], p["seconds"]
        step = spread(p["step_us"], 99)
        pilot_per_step = p["step_counts"]["adc_pilot"] / d["steps"]
        pp_per_step = p["step_counts"]["adc_pp"] / d["steps"]
        reads_per_step = pilot_per_step + pp_per_step
        # the mocked reads of a step (their number differs idle and charging), timed alone
        reads_mock_us = pilot_per_step * d["mock_read_us"] + pp_per_step * d["pp_read_us"]
        rest_us = _median(p["second_rest_us"])
        out[name] = {
            "cp": p["cp"], "relay": p["relay"], "step_us": step,
            "second_ms": (_median(p["second_steps_us"]) + rest_us) / 1000, "rest_us": rest_us,
            "adc_reads_per_s": (c["adc_pilot"] + c["adc_pp"]) / n, "adc_pilot_per_s": c["adc_pilot"] / n,
            "pwm_writes_per_s": c["pwm"] / n, "pin_writes_per_s": c["pin"] / n,
            "flash_writes_per_h": c["flash"] * 3600 / n, "reads_per_step": reads_per_step,
        }
        py_us = max(0.0, step["median"] - reads_mock_us)      # the step's own Python, unix
        for mhz, (k, read_us) in ESP32.items():
            step_esp = py_us * k + reads_per_step * read_us
            sec_ms = (per_s * step_esp + rest_us * k) / 1000
            out["esp32"].setdefault(str(mhz), {})[name] = {
                "step_us": round(step_esp), "python_us": round(py_us * k), "reads_us": round(reads_per_step * read_us),
                "second_ms": round(sec_ms, 1), "core_pct": round(sec_ms / 10, 1)}
    out["adc_reads_per_s"] = out["charging"]["adc_reads_per_s"]
    out["sim_seconds"] = seconds
    return out
