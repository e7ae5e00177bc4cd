# Mock of the MicroPython `machine` module for the unix port (the sim board).
#
# A `machine.py` on MICROPYPATH replaces the unix port's built-in `machine`. This module implements
# the subset of the ESP32 `machine` API the firmware uses, with the same semantics where it matters:
#
# - Timer callbacks are "soft": a `_thread` thread per running Timer calls `micropython.schedule()`
#   every period, so the callback preempts busy Python code of the main thread like an ESP32 soft
#   timer. Scheduled callbacks do NOT run while asyncio sleeps in poll(): whoever runs the firmware
#   must keep an asyncio task waking every ~5 ms (`_idle_loop()`, started by board.attach()).
# - Pin IRQ handlers are deferred (scheduled), like on the ESP32.
# - reset() exits the process with code 75 (the simulator restarts it on the same state folder).
#
# Plant hooks (used by sim/mpy/ev.py and tests; not part of the machine API):
# - `_adc_sources[pin_id] = fn`: `fn()` returns the pin voltage in microvolts. During the call
#   `_sample_us` holds the virtual instant of the sample (see ADC) and `_pwm_high(pin_id)` tells
#   whether a PWM output is high at that instant. Pins without a source read 0 uV.
# - `_listeners.append(fn)`: `fn(pin_id, value, t_us)` is called synchronously on every change of an
#   output Pin level (value 0/1) and of a PWM duty (value = duty_u16 0..65535; PWM.deinit() reports 0),
#   with t_us = time.ticks_us().
# - `_drive(pin_id, value)`: set the level an input pin reads (from the plant), firing its IRQ handler
#   (scheduled) on a matching edge.
# - `_pwm_state(pin_id)` -> (freq, duty_u16) or None; `_pins_out[pin_id]` -> output level.
# - `_reset_pending`: set by reset(); `_idle_loop()` raises SystemExit(75) when it is set (a
#   SystemExit raised inside a scheduled callback is printed and swallowed by the VM).
# - Counters (tools/bench/cpu.py, tests; running totals, `_counts_reset()` zeroes them):
#   `_adc_reads[pin_id]` ADC reads of that pin; `_counts["pwm"]` PWM duty writes (duty_u16(d)
#   calls, changed or not), `_counts["pin"]` output Pin writes, `_counts["flash"]` files the
#   firmware opens for writing or appending once `_count_flash()` has wrapped the builtin open()
#   (the simulator's own files, named sim_*, are left out).
import time
import micropython
import _thread

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None

# ---- constants
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
WAKE_IDLE = 0
PIN_WAKE = 2
EXT0_WAKE = 2
EXT1_WAKE = 3
TIMER_WAKE = 4
TOUCHPAD_WAKE = 5
ULP_WAKE = 6
SLEEP = 2
DEEPSLEEP = 4

# ---- plant hooks
_adc_sources = {}     # pin_id -> fn() -> microvolts
_listeners = []       # fn(pin_id, value, t_us)
_pins_out = {}        # pin_id -> output level 0/1 (output pins)
_pins_in = {}         # pin_id -> level driven by the plant
_pin_cfg = {}         # pin_id -> [mode, pull]
_pin_irq = {}         # pin_id -> [handler, trigger, Pin]
_pwms = {}            # pin_id -> PWM (active)
_sample_us = 0        # virtual instant (us) of the ADC read in progress
_ADC_STEP_US = 27     # virtual time between two ADC reads: coprime with the 1000 us PWM period,
                      # 38 successive reads cover one period with a 27 us grid (any duty 3-97 %
                      # shows both levels). The clock only moves with reads: a 9-read burst (an
                      # Evse step) starts 243 us of phase after the one before, as the ESP32's
                      # 10.2 ms step moves each burst 200 us (hw/pilot.py)
_reset_pending = False
_RESET_FILE = "sim_reset_cause"
_adc_reads = {}       # pin_id -> ADC reads (keys made by ADC(): counting allocates nothing)
_counts = {"pwm": 0, "pin": 0, "flash": 0}


def _counts_reset():
    for k in _adc_reads:
        _adc_reads[k] = 0
    for k in _counts:
        _counts[k] = 0


def _count_flash():
    """Count in _counts["flash"] the files opened for writing from now on (wraps the builtin
    open(); only on demand: the wrapper, a function of this module, keeps it alive)."""
    import builtins
    real = open

    def counting_open(path, mode="r", *args, **kw):
        if ("w" in mode or "a" in mode or "+" in mode) and not str(path).split("/")[-1].startswith("sim_"):
            _counts["flash"] += 1
        return real(path, mode, *args, **kw)
    builtins.open = counting_open


def _notify(pin_id, value):
    if _listeners:
        t = time.ticks_us()
        for fn in _listeners:
            fn(pin_id, value, t)


def _pin_id(pin):
    if isinstance(pin, Pin):
        return pin._id
    return pin


def _drive(pin_id, value):
    """Plant: set the level input PIN_ID reads; fires its IRQ handler on a matching edge."""
    value = 1 if value else 0
    old = _level(pin_id)
    _pins_in[pin_id] = value
    if old == value:
        return
    irq = _pin_irq.get(pin_id)
    if irq is None or irq[0] is None:
        return
    trig = Pin.IRQ_RISING if value else Pin.IRQ_FALLING
    if irq[1] & trig:
        try:
            micropython.schedule(irq[0], irq[2])
        except RuntimeError:  # schedule queue full: call it now rather than lose the edge
            irq[0](irq[2])


def _level(pin_id):
    # (no tuples built here: reading a pin allocates nothing)
    cfg = _pin_cfg.get(pin_id)
    if cfg is not None and (cfg[0] == 3 or cfg[0] == 7) and pin_id in _pins_out:   # OUT, OPEN_DRAIN
        if cfg[0] == 3 or _pins_out[pin_id] == 0:
            return _pins_out[pin_id]
    if pin_id in _pins_in:
        return _pins_in[pin_id]
    if cfg is not None and cfg[1] == Pin.PULL_UP:
        return 1
    return 0


def _pwm_state(pin_id):
    p = _pwms.get(pin_id)
    if p is None:
        return None
    return (p._freq, p._duty)


def _pwm_high(pin_id):
    """Plant: is PWM output PIN_ID high at the virtual sample instant `_sample_us`?"""
    p = _pwms.get(pin_id)
    if p is None:
        return bool(_pins_out.get(pin_id, 0))
    d = p._duty
    if d >= 65535:
        return True
    if d <= 0:
        return False
    period = 1000000 // p._freq
    return (_sample_us % period) * 65535 < d * period


_objects = {}  # (class, pin id) -> the Pin or ADC object of that pin


def _made(cls, pin):
    """The one object of class CLS (Pin, ADC) for PIN, as on an ESP32, where they are in ROM and
    a constructor (re)initialises and returns it: the sim board makes its pins' objects at
    import, in the simulated hardware's share of the heap, not in the firmware's."""
    k = (cls, _pin_id(pin))
    o = _objects.get(k)
    if o is None:
        o = _objects[k] = object.__new__(cls)
    return o


# ---- Pin
class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    PULL_HOLD = 4
    IRQ_RISING = 1
    IRQ_FALLING = 2
    WAKE_LOW = 4
    WAKE_HIGH = 5
    DRIVE_0 = 0
    DRIVE_1 = 1
    DRIVE_2 = 2
    DRIVE_3 = 3

    def __new__(cls, id, *args, **kw):
        return _made(cls, id)

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        self._id = _pin_id(id)
        if self._id not in _pin_cfg:
            _pin_cfg[self._id] = [Pin.IN, None]
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, hold=None):
        cfg = _pin_cfg[self._id]
        if mode != -1:
            cfg[0] = mode
        if pull != -1:
            cfg[1] = pull
        if value is not None:
            self._set(value)
        elif cfg[0] in (Pin.OUT, Pin.OPEN_DRAIN) and self._id not in _pins_out:
            _pins_out[self._id] = 0

    def _set(self, v):
        _counts["pin"] += 1
        v = 1 if v else 0
        old = _pins_out.get(self._id)
        _pins_out[self._id] = v
        if old != v and (_pin_cfg[self._id][0] == 3 or _pin_cfg[self._id][0] == 7):
            _notify(self._id, v)

    def value(self, v=None):
        if v is None:
            return _level(self._id)
        self._set(v)

    __call__ = value

    def on(self):
        self._set(1)

    def off(self):
        self._set(0)

    def irq(self, handler=None, trigger=3, *, priority=1, wake=None, hard=False):
        _pin_irq[self._id] = [handler, trigger, self]
        return _Irq(self._id)

    def __repr__(self):
        return "Pin(%s)" % (self._id,)


class _Irq:
    def __init__(self, pin_id):
        self._id = pin_id

    def trigger(self):
        irq = _pin_irq.get(self._id)
        return irq[1] if irq else 0

    def flags(self):
        return 0


class Signal:
    def __init__(self, pin, *args, invert=False):
        self._pin = pin if isinstance(pin, Pin) else Pin(pin, *args)
        self._inv = invert

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._inv
        self._pin.value((1 if v else 0) ^ self._inv)

    __call__ = value

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


# ---- PWM
class PWM:
    def __init__(self, dest, *, freq=None, duty_u16=None, duty_ns=None, duty=None, invert=False):
        self._id = _pin_id(dest)
        _pin_cfg.setdefault(self._id, [Pin.OUT, None])[0] = Pin.OUT
        self._freq = 5000
        self._duty = 0
        self._active = False
        self.init(freq=freq, duty_u16=duty_u16, duty_ns=duty_ns, duty=duty)

    def init(self, *, freq=None, duty_u16=None, duty_ns=None, duty=None, invert=False):
        old = _pwms.get(self._id)
        if old is not None and old is not self:
            old._active = False
        _pwms[self._id] = self
        was = self._active
        self._active = True
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)
        elif duty_ns is not None:
            self.duty_ns(duty_ns)
        elif duty is not None:
            self.duty(duty)
        elif not was:
            _notify(self._id, self._duty)

    def freq(self, f=None):
        if f is None:
            return self._freq
        f = int(f)
        if not 1 <= f <= 40000000:
            raise ValueError("frequency must be from 1Hz to 40MHz")
        self._freq = f

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        _counts["pwm"] += 1
        d = int(d)
        if d < 0 or d > 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        if not self._active:
            self.init()
        if d != self._duty:
            self._duty = d
            _notify(self._id, d)

    def duty(self, d=None):  # legacy 10-bit API
        if d is None:
            return self._duty * 1023 // 65535
        self.duty_u16(int(d) * 65535 // 1023)

    def duty_ns(self, ns=None):
        period = 1000000000 // self._freq
        if ns is None:
            return self._duty * period // 65535
        self.duty_u16(min(65535, int(ns) * 65535 // period))

    def deinit(self):
        if self._active:
            self._active = False
            if _pwms.get(self._id) is self:
                del _pwms[self._id]
            self._duty = 0
            _pins_out[self._id] = 0
            _notify(self._id, 0)


# ---- ADC
class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 9
    WIDTH_10BIT = 10
    WIDTH_11BIT = 11
    WIDTH_12BIT = 12
    _FULL = (950000, 1250000, 1750000, 3100000)   # read_uv range per attenuation (ESP32)

    def __new__(cls, pin, *args, **kw):
        return _made(cls, pin)

    def __init__(self, pin, *, atten=None):
        self._id = _pin_id(pin)
        self._atten = ADC.ATTN_0DB if atten is None else atten
        self._bits = 12
        _adc_reads.setdefault(self._id, 0)

    def init(self, *, atten=None):
        if atten is not None:
            self._atten = atten

    def atten(self, a):
        self._atten = a

    def width(self, w):
        self._bits = w

    def read_uv(self):
        global _sample_us
        _sample_us += _ADC_STEP_US
        _adc_reads[self._id] += 1
        fn = _adc_sources.get(self._id)
        uv = fn() if fn is not None else 0
        full = ADC._FULL[self._atten]
        if uv < 0:
            return 0
        if uv > full:
            return full
        return int(uv)

    def read_u16(self):
        return self.read_uv() * 65535 // ADC._FULL[self._atten]

    def read(self):
        return self.read_uv() * ((1 << self._bits) - 1) // ADC._FULL[self._atten]


# ---- Timer (soft timer: thread + micropython.schedule)
class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, *args, **kw):
        self._id = id
        self._st = None
        self._cb = None
        self._disp = self._dispatch      # preallocated bound method
        if args or kw:
            self.init(*args, **kw)

    def init(self, mode=PERIODIC, period=-1, callback=None, freq=-1, tick_hz=1000):
        self.deinit()
        if freq > 0:
            period = max(1, int(1000000 // freq))      # microseconds from here on
        elif period > 0:
            period = max(1, period * 1000000 // tick_hz)
        if period <= 0:
            raise ValueError("period")
        self._cb = callback
        # st[0]: 1 = running; st[1]: 1 = a callback is queued. A fresh state per init, so a thread
        # left over from a previous init stops on its own.
        st = bytearray(2)
        st[0] = 1
        self._st = st
        _thread.start_new_thread(self._run, (st, period, mode))

    def _run(self, st, period, mode):
        # PERIOD in us. No heap allocation in this loop: ints only, preallocated bound method
        # and argument
        sched = micropython.schedule
        disp = self._disp
        nxt = time.ticks_add(time.ticks_us(), period)
        while st[0]:
            d = time.ticks_diff(nxt, time.ticks_us())
            if d > 0:
                time.sleep_us(d)
            if not st[0]:
                break
            if not st[1]:
                st[1] = 1
                try:
                    sched(disp, st)
                except RuntimeError:   # queue full: drop this tick, like an ESP32 soft timer
                    st[1] = 0
            if mode == Timer.ONE_SHOT:
                break
            nxt = time.ticks_add(nxt, period)
            if time.ticks_diff(time.ticks_us(), nxt) > period:
                nxt = time.ticks_add(time.ticks_us(), period)   # fell behind: resynchronise

    def _dispatch(self, st):
        st[1] = 0
        if st[0] and self._cb is not None:
            self._cb(self)

    def deinit(self):
        if self._st is not None:
            self._st[0] = 0
            self._st = None

    def value(self):
        return 0


# ---- WDT
class WDT:
    """Watchdog: once created it cannot be stopped; not fed within `timeout` ms -> reset (exit 75)."""
    _timeout = 0
    _last = 0
    _started = False

    def __init__(self, id=0, timeout=5000):
        WDT._timeout = timeout
        WDT._last = time.ticks_ms()
        if not WDT._started:
            WDT._started = True
            _thread.start_new_thread(WDT._watch, ())

    def feed(self):
        WDT._last = time.ticks_ms()

    @staticmethod
    def _watch():
        while True:
            time.sleep_ms(50)
            if time.ticks_diff(time.ticks_ms(), WDT._last) > WDT._timeout:
                try:
                    micropython.schedule(_wdt_expired, None)
                    return
                except RuntimeError:
                    pass


def _wdt_expired(_):
    print("machine: WDT timeout, reset")
    _reset(WDT_RESET)


# ---- RTC
class RTC:
    _offset = 0

    def __init__(self, id=0):
        pass

    def init(self, dt):
        self.datetime(dt)

    def datetime(self, dt=None):
        if dt is None:
            t = time.time() + RTC._offset
            y, mo, d, h, mi, s, wd, _ = time.localtime(t)[:8]
            return (y, mo, d, wd, h, mi, s, 0)
        y, mo, d, wd, h, mi, s = dt[:7]
        RTC._offset = time.mktime((y, mo, d, h, mi, s, 0, 0)) - time.time()

    def memory(self, data=None):
        return b""


# ---- reset and misc
def _read_reset_cause():
    import os
    try:
        with open(_RESET_FILE) as f:
            c = int(f.read())
        os.remove(_RESET_FILE)
        return c
    except (OSError, ValueError):
        return PWRON_RESET


_cause = _read_reset_cause()


def _reset(cause):
    global _reset_pending
    _reset_pending = True
    try:
        with open(_RESET_FILE, "w") as f:
            f.write(str(cause))
    except OSError:
        pass
    # Propagates out of asyncio.run() when raised in a task or plain code; inside a scheduled
    # callback (Timer, IRQ) the VM swallows it and _idle_loop() re-raises it within 5 ms.
    raise SystemExit(75)


def reset():
    """Hard reset: the process exits with code 75 (the launcher restarts it)."""
    _reset(SOFT_RESET)


def soft_reset():
    _reset(SOFT_RESET)


async def _idle_loop(period_ms=5):
    """Run as an asyncio task while the firmware runs: lets scheduled callbacks (Timer, IRQ) run
    while asyncio would otherwise idle in poll(), and completes a reset() requested from one."""
    while True:
        if _reset_pending:
            raise SystemExit(75)
        await asyncio.sleep_ms(period_ms)


def reset_cause():
    return _cause


def wake_reason():
    return 0


def unique_id():
    return b"\x24\x0a\xc4\x51\x4d\x01"


_freq = 240000000


def freq(f=None):
    global _freq
    if f is None:
        return _freq
    _freq = f


def idle():
    time.sleep_ms(1)


def lightsleep(ms=None):
    time.sleep_ms(ms or 1)


def deepsleep(ms=None):
    _reset(DEEPSLEEP_RESET)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def time_pulse_us(pin, level, timeout_us=1000000):
    return -2


def bootloader():
    _reset(SOFT_RESET)
