"""Energy meters behind the board's meter contract (docs/ARCHITECTURE.md, "Board definition").

Every meter here is an object with
- `read() -> (energy_wh: int, power_w: float, (A L1, L2, L3), (V L1, L2, L3))`: the last good
  values, at once (never waits for the meter); a phase the meter does not have reads 0.0;
- `ok`: False once `fail_after` polls in a row have failed (PowerMeterFailure), True again at the
  next good poll; `error`: what the last failed poll ran into; `polls`: good polls so far;
- `ready`: an asyncio.Event set by the first good poll (until then read() gives zeros: await it,
  with a timeout, before taking a meter reading that goes into a transaction);
- `phases_in_use`: the phases (1..3) whose current is above `threshold_a`;
- `start()` / `deinit()`: create / cancel the task that polls it every `interval_ms`.

Modbus RTU meters (SDM630, SDM120, B23) share one `modbus.Master` per bus: several meters (one
per connector, each at its own address) can poll the same bus, one request at a time. Their
polling task allocates nothing once running: each request drives the master's state machine
inline and copies the registers into a buffer; values are decoded only in read().

CtMeter measures the current only: current transformers on ADC pins give it, the voltage is the
configured nominal one, so power and energy are "measured current, nominal voltage" (LABEL),
with the power factor taken as 1.
"""
import asyncio
import time

# lib/modbus.py is imported where a value is decoded (read()), not here: a board with CtMeter
# alone never loads it (and one with a Modbus meter has imported it to make its Master)


class _Poller:
    """The task, the health counters and the contract's properties."""

    def __init__(self, interval_ms, fail_after, threshold_a):
        self.interval_ms = interval_ms
        self.fail_after = fail_after
        self.threshold_a = threshold_a
        self.ok = True
        self.fails = 0      # failed polls in a row
        self.polls = 0      # good polls
        self.error = None
        self.ready = asyncio.Event()
        self._task = None

    def start(self):
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return self

    def deinit(self):
        t = self._task
        if t is not None:
            self._task = None
            t.cancel()

    def _good(self):
        self.fails = 0
        self.ok = True
        self.polls += 1
        if not self.ready.is_set():
            self.ready.set()

    def _bad(self, err):
        self.error = err
        self.fails += 1
        if self.fails >= self.fail_after:
            self.ok = False

    @property
    def phases_in_use(self):
        amps = self.read()[2]
        return tuple(i + 1 for i in range(3) if amps[i] > self.threshold_a)


# -- Modbus meters ---------------------------------------------------------------------------

def _f32(raw, off):
    import modbus
    return modbus.decode(raw, off, modbus.F32)


def _f32_ok(raw, off):
    """A float32 (high word first) that is a finite number >= 0 (sign and exponent bits)."""
    b0 = raw[off]
    return not b0 & 0x80 and not (b0 == 0x7F and raw[off + 1] & 0x80)


def _kwh_f32_to_wh(raw, off):
    """A float32 register pair in kWh as whole Wh, rounded, in integer arithmetic: the same on
    every port (an ESP32's floats are 32-bit, so kWh * 1000 in floats would not be exact)."""
    import modbus
    bits = modbus.decode(raw, off, modbus.U32)
    e = (bits >> 23) & 0xFF
    if not e:
        return 0  # zero or subnormal (< 1e-38 kWh)
    m = ((bits & 0x7FFFFF) | 0x800000) * 1000   # value = m * 2 ** (e - 150)
    s = 150 - e
    if s <= 0:
        return m << -s
    return (m + (1 << (s - 1))) >> s


class ModbusMeter(_Poller):
    """A meter read over Modbus RTU. A subclass gives FC (3 or 4), BLOCKS (the register ranges
    read each poll, in order: their bytes are laid end to end in one buffer), _valid(raw) (checked
    on the bytes, before they replace the last good ones) and _decode(raw)."""
    FC = 4   # modbus.INPUT; modbus.HOLDING = 3
    BLOCKS = ()

    def __init__(self, master, addr=1, *, interval_ms=1000, fail_after=3, threshold_a=0.5):
        super().__init__(interval_ms, fail_after, threshold_a)
        self.master = master
        self.addr = addr
        size = 0
        for _, n in self.BLOCKS:
            size += 2 * n
        self._raw = bytearray(size)   # the last good poll's registers
        self._new = bytearray(size)   # the poll under way
        self._mine = False            # a request of ours is on the bus

    def read(self):
        return self._decode(self._raw)

    async def _run(self):
        m = self.master
        blocks = self.BLOCKS
        nb = len(blocks)
        fc = self.FC
        try:
            while True:
                t0 = time.ticks_ms()
                err = None
                at = 0
                for i in range(nb):
                    reg, count = blocks[i]
                    while not m.begin(self.addr, fc, reg, count):
                        await asyncio.sleep_ms(2)
                    self._mine = True
                    while True:
                        w = m.step()
                        if w < 0:
                            break
                        await asyncio.sleep_ms(w)
                    self._mine = False
                    err = m.error
                    if err is not None:
                        break
                    m.data(self._new, at)
                    at += 2 * count
                if err is None and not self._valid(self._new):
                    err = ValueError("implausible reading")
                if err is None:
                    self._raw, self._new = self._new, self._raw
                    self._good()
                else:
                    self._bad(err)
                d = self.interval_ms - time.ticks_diff(time.ticks_ms(), t0)
                await asyncio.sleep_ms(d if d > 0 else 0)
        finally:
            if self._mine:
                self._mine = False
                m.abort()

    def _valid(self, raw):
        return True


class SDM630(ModbusMeter):
    """Eastron SDM630 (Modbus V2), three-phase. Input registers (function 4), every value an
    IEEE-754 float32, high word first. Addresses from Eastron's SDM630 Modbus protocol
    (30001-based register numbers minus 30001), as used by many open-source integrations:
    0x0000/02/04 phase 1-3 line-to-neutral volts, 0x0006/08/0A phase 1-3 current (A), 0x0034 total
    system power (W), 0x0048 total import active energy (kWh). Read in three requests without
    gaps: whether the meter answers a range that spans undocumented registers is not something
    we rely on."""
    FC = 4
    BLOCKS = ((0x0000, 12), (0x0034, 2), (0x0048, 2))
    # bytes in the buffer: V1 0, V2 4, V3 8, I1 12, I2 16, I3 20, P 24, E 28

    def _valid(self, raw):
        return _f32_ok(raw, 28)

    def _decode(self, raw):
        return (_kwh_f32_to_wh(raw, 28), _f32(raw, 24),
                (_f32(raw, 12), _f32(raw, 16), _f32(raw, 20)),
                (_f32(raw, 0), _f32(raw, 4), _f32(raw, 8)))


class SDM120(ModbusMeter):
    """Eastron SDM120-Modbus, single-phase: the SDM630's phase-1 addresses (input registers,
    float32, high word first): 0x0000 volts, 0x0006 current, 0x000C active power (W), 0x0048
    import active energy (kWh). Four requests, again never spanning undocumented registers."""
    FC = 4
    BLOCKS = ((0x0000, 2), (0x0006, 2), (0x000C, 2), (0x0048, 2))
    # bytes: V 0, I 4, P 8, E 12

    def _valid(self, raw):
        return _f32_ok(raw, 12)

    def _decode(self, raw):
        return (_kwh_f32_to_wh(raw, 12), _f32(raw, 8), (_f32(raw, 4), 0.0, 0.0),
                (_f32(raw, 0), 0.0, 0.0))


def _u32(raw, off, div):
    import modbus
    v = modbus.decode(raw, off, modbus.U32)
    return 0.0 if v == 0xFFFFFFFF else v / div


class B23(ModbusMeter):
    """ABB B23 (B-series; the B24 shares the map), three-phase. Holding registers (function 3),
    integers, high word first, from the register map in ABB's B23/B24 user manual 2CMC485003M0201
    as reproduced by several open-source integrations (which agree; we did not check the PDF
    itself): 0x5000 active import energy, u64 in 0.01 kWh; 0x5B00/02/04 L1-L3 to neutral voltage,
    u32 in 0.1 V; 0x5B06-0x5B0B the line-to-line voltages; 0x5B0C/0E/10 L1-L3 current, u32 in
    0.01 A; 0x5B12 neutral current; 0x5B14 total active power, s32 in 0.01 W. The all-ones
    "not available" values (u32 0xFFFFFFFF, u64 all ones) come from those integrations too: a
    missing voltage or current reads 0.0, a missing energy register fails the poll. Energy
    resolution is 10 Wh."""
    FC = 3
    BLOCKS = ((0x5000, 4), (0x5B00, 22))
    # bytes: E 0; V1 8, V2 12, V3 16; (L-L 20, 24, 28); I1 32, I2 36, I3 40; (IN 44); P 48

    def _valid(self, raw):
        for i in range(8):
            if raw[i] != 0xFF:
                return not raw[0] & 0x80   # (2**63 * 10 Wh would be no reading either)
        return False

    def _decode(self, raw):
        import modbus
        d = modbus.decode
        p = d(raw, 48, modbus.S32)
        return (d(raw, 0, modbus.U64) * 10, 0.0 if p == 0x7FFFFFFF else p / 100,
                (_u32(raw, 32, 100), _u32(raw, 36, 100), _u32(raw, 40, 100)),
                (_u32(raw, 8, 10), _u32(raw, 12, 10), _u32(raw, 16, 10)))


# -- current transformers --------------------------------------------------------------------

class CtMeter(_Poller):
    """Current transformers (with a burden resistor, biased to mid-supply) on ADC1 pins, one per
    phase (PINS: up to three GPIO numbers, None = no CT on that phase). Each poll takes a burst of
    SAMPLES evenly spaced reads over CYCLES mains periods (HZ) per phase: the RMS of the reads
    minus their mid-point (the bias, tracked from burst to burst, starting at mid-scale), times
    AMPS_PER_UNIT (amperes per 12-bit ADC unit: the CT ratio, the burden and the ADC scale, see
    docs/METERS.md). Currents below FLOOR_A read 0.

    Power = the sum of the phase currents x VOLTS (nominal, power factor 1); energy integrates it
    between polls. With PATH the energy register is kept in flash (written at most every
    PERSIST_S seconds, and when the current stops) and read() reports what is written, so it never
    goes backwards across a restart; without it the register starts at 0 at each boot.
    A poll fails when a burst's mid-point is outside 10-90 % of the ADC range (CT bias circuit
    open or shorted). The burst blocks the event loop for CYCLES / HZ per phase (40 ms at the
    defaults; a burst held up by something else is taken again, at most three times); SAMPLES
    reads must fit in that window. Not allocation-free (a few floats per phase and poll)."""
    LABEL = "measured current, nominal voltage"

    def __init__(self, pins, amps_per_unit, *, volts=230.0, hz=50, cycles=2, samples=200,
                 interval_ms=1000, fail_after=3, threshold_a=0.5, floor_a=0.1, path=None,
                 persist_s=30):
        super().__init__(interval_ms, fail_after, threshold_a)
        from machine import ADC, Pin
        self._adcs = [None if p is None else ADC(Pin(p), atten=ADC.ATTN_11DB)
                      for p in (tuple(pins) + (None, None, None))[:3]]
        self.amps_per_unit = amps_per_unit
        self.volts = float(volts)
        self.samples = samples
        self.window_us = cycles * 1000000 // hz
        self.floor_a = floor_a
        self.bias = [2048, 2048, 2048]   # ADC units
        self.late = 0                    # bursts abandoned because the loop held them up
        self._sums = None
        self.amps = [0.0, 0.0, 0.0]      # of the last poll, with its power
        self._amps = [0.0, 0.0, 0.0]     # the poll under way
        self.power = 0.0
        self.path = path
        self.persist_s = persist_s
        self._saved = 0
        if path:
            from ..flash import store
            self._saved = int(store.load(path, {}).get("wh", 0))
        self._whole = self._saved       # the integrated energy: whole Wh (int) + a fraction,
        self._frac = 0.0                # so 32-bit floats keep their precision at any total
        self._t = time.ticks_ms()
        self._t_saved = self._t

    def read(self):
        wh = self._saved if self.path else self._whole
        a = self.amps
        v = self.volts
        ad = self._adcs
        return (wh, self.power, (a[0], a[1], a[2]),
                (v if ad[0] is not None else 0.0, v if ad[1] is not None else 0.0,
                 v if ad[2] is not None else 0.0))

    def burst(self, k):
        """RMS current of phase K (0..2) from one burst; None when its bias is out of range. A
        burst in which a read comes more than a sample's spacing late (the loop was held up, so
        the reads would no longer cover whole periods evenly) is abandoned and taken again;
        the third attempt is kept whatever happens."""
        for i in range(3):
            if self._burst(k, i == 2):
                break
            self.late += 1
        return self._rms(k)

    def _burst(self, k, last):
        read = self._adcs[k].read_u16
        n = self.samples
        step = self.window_us // n
        b = self.bias[k]
        s = 0
        ss = 0
        t = time.ticks_us()
        for _ in range(n):
            while time.ticks_diff(t, time.ticks_us()) > 0:
                pass
            if not last and time.ticks_diff(time.ticks_us(), t) > step:
                return False
            d = (read() >> 4) - b
            s += d
            ss += d * d
            t = time.ticks_add(t, step)
        self._sums = (b, s, ss)
        return True

    def _rms(self, k):
        b, s, ss = self._sums
        n = self.samples
        mean = s / n
        mid = b + int(mean + (0.5 if mean >= 0 else -0.5))
        self.bias[k] = mid
        if not 410 <= mid <= 3686:
            return None
        var = ss / n - mean * mean
        amps = (var ** 0.5 if var > 0 else 0.0) * self.amps_per_unit
        return amps if amps >= self.floor_a else 0.0

    def energy(self):
        """The integrated energy, Wh (float, not yet persisted)."""
        return self._whole + self._frac

    def _phase(self, k):
        a = self.burst(k)
        self._amps[k] = 0.0 if a is None else a
        return a is not None

    def _integrate(self, power):
        now = time.ticks_ms()
        f = self._frac + self.power * time.ticks_diff(now, self._t) / 3600000
        self._t = now
        self.power = power
        if f >= 1.0:
            w = int(f)
            self._whole += w
            f -= w
        self._frac = f
        wh = self._whole
        if self.path and wh > self._saved and (
                power == 0.0 or time.ticks_diff(now, self._t_saved) >= self.persist_s * 1000):
            from ..flash import store
            store.save(self.path, {"wh": wh})
            self._saved = wh
            self._t_saved = now

    async def _run(self):
        while True:
            t0 = time.ticks_ms()
            good = True
            for k in range(3):
                if self._adcs[k] is not None:
                    good = self._phase(k) and good
                    await asyncio.sleep_ms(0)   # one burst at a time, then let the others run
            a = self._amps
            self._integrate((a[0] + a[1] + a[2]) * self.volts)
            self.amps, self._amps = a, self.amps   # the currents and their power together
            if good:
                self._good()
            else:
                self._bad(ValueError("CT bias out of range"))
            d = self.interval_ms - time.ticks_diff(time.ticks_ms(), t0)
            await asyncio.sleep_ms(d if d > 0 else 0)
