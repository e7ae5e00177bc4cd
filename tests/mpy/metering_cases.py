# MicroPython unit cases of how a connector uses its meter (uwallbox/station/connector.py,
# station/meter.py): the register is the source of truth, a silent meter is PowerMeterFailure
# and never a made-up sample, a register going backwards never makes negative energy, a PowerLoss
# stop takes the meter's register (uwallbox/lifecycle.py, at boot). The real App of the sim board
# on a fake Rpc, with a meter double in place of the board's.
import asyncio

import fakes
from uwallbox.lifecycle import recover


class Meter:
    """The contract of hw/meters.py: read() gives the last good values, `ok`, `ready`."""

    def __init__(self, wh):
        self.wh = wh
        self.ok = True
        self.ready = asyncio.Event()
        self.ready.set()
        self.amps = (10.0, 10.0, 10.0)

    def read(self):
        return (self.wh, 6900.0, self.amps, (230.0, 230.0, 230.0))

    @property
    def phases_in_use(self):
        return tuple(i + 1 for i in range(3) if self.amps[i] > 0.5)


def setup(wh):
    app = fakes.app()
    c = app.connectors[0]
    c.meter = Meter(wh)
    app.evses[0].plugged = True
    return app, c


def step(c):
    """What a second does: the metering tick reads the meter, the connector task updates."""
    c.read_meter()
    c.update()


def messages(app, action):
    out = []
    for name in app.journal.names():
        m = app.journal.read(name)
        if m["a"] == action:
            out.append(m["p"])
    return out


def energy(payload):
    return [int(sv["value"]) for mv in payload["meterValue"] for sv in mv["sampledValue"]
            if sv.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"]


def test_transaction_uses_the_register():
    app, c = setup(1234567)
    c.start("TAG", {"status": "Accepted"})
    assert messages(app, "StartTransaction")[0]["meterStart"] == 1234567
    c.meter.wh = 1234600
    c.stop("Local")
    assert messages(app, "StopTransaction")[0]["meterStop"] == 1234600


def test_silent_meter_is_power_meter_failure_and_no_sample():
    app, c = setup(5000)
    app.config.set("MeterValueSampleInterval", 1)
    c.start("TAG", {"status": "Accepted"})
    step(c)
    assert c.error == "NoError"
    c.meter.ok = False
    c.meter.wh = 9999999  # whatever a driver would hold: not read while it fails
    step(c)
    assert c.error == "PowerMeterFailure" and c.tx is not None
    before = len(messages(app, "MeterValues"))
    m = app.metering
    for _ in range(3):
        m.mono += 2
        m.tick()
    assert len(messages(app, "MeterValues")) == before  # no sample from a silent meter
    assert c.meter_wh == 5000
    c.meter.ok = True   # back: the energy resumes from its register
    c.meter.wh = 5400
    step(c)
    assert c.error == "NoError"
    m.mono += 2
    m.tick()
    assert energy(messages(app, "MeterValues")[-1]) == [5400]


def test_register_going_backwards_is_never_negative_energy():
    app, c = setup(800000)
    c.start("TAG", {"status": "Accepted"})
    c.meter.wh = 800100
    step(c)
    c.meter.wh = 40   # a swapped meter
    step(c)
    assert c.error == "PowerMeterFailure"
    assert c.meter_wh == 800100 and c.tx.offset == 800060
    c.meter.wh = 90   # 50 Wh more on the new meter
    assert c.read_meter()[0] == 800150
    saved = c.tx.__class__.load(c.path)   # the offset survives a restart
    assert saved.offset == 800060
    c.stop("Local")
    assert messages(app, "StopTransaction")[0]["meterStop"] == 800150
    step(c)
    assert c.error == "NoError"
    c.start("TAG", {"status": "Accepted"})   # the next one starts from the new register
    assert messages(app, "StartTransaction")[-1]["meterStart"] == 90


def test_power_loss_stop_takes_the_meter_register():
    app, c = setup(1000)
    c.start("TAG", {"status": "Accepted"})
    c.persist_meter(1050)   # the last persisted reading
    c.meter.wh = 1080   # what the meter counted up to the cut
    recover(c)
    assert messages(app, "StopTransaction")[0]["meterStop"] == 1080
    assert messages(app, "StopTransaction")[0]["reason"] == "PowerLoss"


def test_power_loss_with_a_lower_register_keeps_the_persisted_reading():
    app, c = setup(1000)
    c.start("TAG", {"status": "Accepted"})
    c.persist_meter(1050)
    c.meter.wh = 20   # a meter swapped while the power was off
    recover(c)
    assert messages(app, "StopTransaction")[0]["meterStop"] == 1050


def test_phases_in_use_wake_the_scheduler():
    app, c = setup(0)
    from uwallbox.profiles.smartcharging import scheduler
    s = scheduler(app)
    step(c)
    assert c.phases == 3
    s.wake.clear()
    c.meter.amps = (16.0, 0.0, 0.0)   # the EV went down to one phase
    step(c)
    assert c.phases == 1 and s.wake.is_set()
    for t in app.tasks.values():
        t.cancel()


def test_transaction_begun_before_the_meter_answered_never_jumps():
    app, c = setup(0)
    c.meter.ready = asyncio.Event()   # no answer since boot
    c.meter.wh = 1234567
    c.start("TAG", {"status": "Accepted"})
    assert messages(app, "StartTransaction")[0]["meterStart"] == 0
    step(c)
    assert c.error == "PowerMeterFailure"
    c.meter.ready.set()   # it answers: the energy counts from meterStart
    step(c)
    assert c.error == "NoError" and c.meter_wh == 0
    c.meter.wh = 1234600
    c.stop("Local")
    assert messages(app, "StopTransaction")[0]["meterStop"] == 33


def _reference_board(meter_kind):
    """boards/esp32-devkitc/board.py as a fresh namespace, with METER set to METER_KIND."""
    import sys
    path = [p for p in sys.path if p.endswith("boards/sim")][0][:-3] + "esp32-devkitc/board.py"
    with open(path) as f:
        src = f.read()
    assert "\nMETER = None\n" in src
    ns = {"__name__": "board"}
    exec(src.replace("\nMETER = None\n", "\nMETER = %r\n" % meter_kind), ns)
    return ns


def test_reference_board_picks_its_meter():
    import machine
    from modbus_slave import FakeUart
    from uwallbox.hw import estimated, meters
    ns = _reference_board(None)
    assert isinstance(ns["meter"](0), estimated.EstimatedMeter)
    opened = []
    machine.UART = lambda *a, **k: opened.append((a, k)) or FakeUart(k["baudrate"], 10)
    try:
        ns = _reference_board("SDM630")
        m1, m2 = ns["meter"](0), ns["meter"](1)
    finally:
        del machine.UART
    assert isinstance(m1, meters.SDM630) and isinstance(m2, meters.SDM630)
    assert (m1.addr, m2.addr) == (1, 2) and m1.master is m2.master   # one bus, two addresses
    assert len(opened) == 1 and opened[0][0] == (2,) and opened[0][1]["tx"] == 17
