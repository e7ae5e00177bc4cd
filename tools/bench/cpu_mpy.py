# Run by tools/bench/cpu.py under micropython (the sim board, firmware/, lib/ and tests/mpy/ on
# MICROPYPATH), in a fresh folder: what the firmware's periodic work costs; prints one JSON line.
#   micropython cpu_mpy.py STEPS SECONDS
# - an Evse step (connector 1 of the real App on the sim board, tests/mpy/fakes.py: FakeRpc),
#   timed one by one with time.ticks_us: idle (no EV, steady +12 V) and charging (state C, PWM,
#   contactor closed); STEPS of each
# - a mocked ADC read (the plant's Python), timed alone: the step time less its reads is the
#   firmware's own Python
# - the once-a-second work (the metering task's tick, each connector's status update) and the
#   counters of the mocked hardware (sim/mpy/machine.py) over SECONDS simulated seconds, idle and
#   charging: the monotonic and wall clocks and the plant's meter move 1 s per second, the Evse
#   steps 98 times (10.2 ms)
import gc
import json
import sys
import time
from array import array

import board
import fakes
import machine
from uwallbox.hw.evse import GRANT
from uwallbox.hw.pilot import BURST, WINDOW

machine._count_flash()
STEPS = int(sys.argv[1])
SECONDS = int(sys.argv[2])
STEP_US = 10200                      # hw/evse.py: the timer period
PER_S = 1000000 // STEP_US           # Evse steps a second

app = fakes.app()
e = app.evses[0]
ev = board.plants[0]
conn = app.connectors[0]
pins = board.CONNECTORS[0]


def timed_steps(n):
    out = array("i", bytes(4 * n))
    for i in range(n):
        t = time.ticks_us()
        e.step()
        out[i] = time.ticks_diff(time.ticks_us(), t)
    return out


def counts():
    return {"adc_pilot": machine._adc_reads[pins["pilot_adc"]], "adc_pp": machine._adc_reads[pins["pp_adc"]],
            "pwm": machine._counts["pwm"], "pin": machine._counts["pin"], "flash": machine._counts["flash"]}


def second():
    """One simulated second of the firmware's periodic work: its Evse steps, then the metering
    tick and the status updates. Returns the us of the steps and of the rest."""
    ev.meter.energy += ev.meter.power / 3600      # the plant meter: 1 s of energy
    app.clock.advance(1)
    app.metering._ms += 1000                      # the metering task's monotonic second
    t = time.ticks_us()
    for _ in range(PER_S):
        e.step()
    t1 = time.ticks_us()
    app.metering.tick()
    for c in app.connectors:
        c.update()
    t2 = time.ticks_us()
    return time.ticks_diff(t1, t), time.ticks_diff(t2, t1)


def phase(name):
    for _ in range(3 * WINDOW):
        e.step()
        conn.update()
    machine._counts_reset()
    steps = timed_steps(STEPS)
    per_step = counts()
    machine._counts_reset()
    st = array("i", bytes(4 * SECONDS))
    rest = array("i", bytes(4 * SECONDS))
    for i in range(SECONDS):
        st[i], rest[i] = second()
        if i % 64 == 63:
            gc.collect()     # outside the timed parts: a collection is no part of a second's work
    c = counts()
    return {"step_us": list(steps), "step_counts": per_step, "second_steps_us": list(st),
            "second_rest_us": list(rest), "second_counts": c, "seconds": SECONDS,
            "relay": e.relay, "cp": e.cp}


def read_us(fn, n=2000):
    t = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t) / n


ev.update({"plug": False, "charge": False})
out = {"burst": BURST, "grant": GRANT, "steps_per_s": PER_S, "steps": STEPS}
out["idle"] = phase("idle")
ev.update({"plug": True, "charge": True})
conn.start("BENCH001", {"status": "Accepted"})   # a transaction: the contactor closes
for _ in range(200):
    conn.update()
    e.step()
    if e.relay:
        break
out["charging"] = phase("charging")
out["mock_read_us"] = read_us(e.pilot._read)
out["pp_read_us"] = read_us(e.pp._adc.read_uv) if e.pp is not None else 0
print(json.dumps(out))
