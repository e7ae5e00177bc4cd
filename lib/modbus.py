"""Modbus RTU master on a machine.UART, with an optional RS-485 direction pin, for asyncio.

Reads holding registers (function 3) and input registers (function 4). Knows nothing of meters.

    bus = modbus.Master(UART(2, 9600, tx=17, rx=16), 9600, de=4)
    regs = await bus.read(1, modbus.INPUT, 0x0000, 12)       # memoryview, valid until the next request
    volts = modbus.decode(regs, 0, modbus.F32)

Framing (Modbus over serial line V1.02): address, function, payload, CRC-16/MODBUS low byte first.
Before each request the bus must have been silent for 3.5 character times (1.75 ms above 19200
baud). With a direction pin (the DE and /RE inputs of the transceiver tied together) the pin is
high while the request is sent and goes low once its last stop bit has left the UART: `txdone()`
where the port has it (ESP32), else `flush()`, else the frame's time at the baud rate.

Allocation-free on the success path once the first request has built the CRC table (256
entries): the request and the answer live in buffers made once, waiting is `asyncio.sleep_ms`.
An `async def` call allocates its generator, so `read()` allocates a little per request (that,
and the memoryview it returns); a task that must not allocate at all drives the same state
machine itself:

    while not bus.begin(addr, fc, reg, count):   # False while another task uses the bus
        await asyncio.sleep_ms(2)
    while True:
        w = bus.step()                           # the ms to wait, or -1 when it is over
        if w < 0:
            break
        await asyncio.sleep_ms(w)
    if bus.error is None:
        bus.data(dst, at)                        # copy the register bytes out
"""
import time

import asyncio
from micropython import const

HOLDING = const(3)  # function codes
INPUT = const(4)

HIGH_FIRST = const(0)  # word order of a multi-register value: high word first ("ABCD", the usual)
LOW_FIRST = const(1)   # low word first ("CDAB", word-swapped)

# decode() kinds: low nibble = registers, 0x10 = signed, 0x20 = IEEE-754 float
U16 = const(0x01)
S16 = const(0x11)
U32 = const(0x02)
S32 = const(0x12)
U64 = const(0x04)
S64 = const(0x14)
F32 = const(0x22)
F64 = const(0x24)

_POLL_MS = const(2)   # how often a silent line is polled for the first bytes of an answer
_SPIN_US = const(1500)  # the end of a transmission is awaited by sleeping until this close to it

_IDLE = const(0)
_GAP = const(1)
_TX = const(2)
_HEAD = const(3)
_BODY = const(4)

_table = None


def _make_table():
    global _table
    from array import array
    t = array("H", range(256))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    _table = t
    return t


def crc16(buf, n=-1, start=0):
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) of buf[start:n]; sent low byte first.
    Over a whole frame including its CRC the result is 0."""
    t = _table or _make_table()
    if n < 0:
        n = len(buf)
    c = 0xFFFF
    for i in range(start, n):
        c = (c >> 8) ^ t[(c ^ buf[i]) & 0xFF]
    return c


def decode(buf, off, kind, order=HIGH_FIRST):
    """The value of KIND (U16 .. F64) whose registers start at byte OFF of BUF (registers are
    big-endian on the wire; ORDER says which register holds the high word)."""
    n = kind & 0x0F
    v = 0
    for i in range(n):
        j = off + 2 * (i if order == HIGH_FIRST else n - 1 - i)
        v = (v << 16) | (buf[j] << 8) | buf[j + 1]
    if kind & 0x20:
        import struct
        if n == 2:
            return struct.unpack("<f", struct.pack("<I", v))[0]
        return struct.unpack("<d", struct.pack("<Q", v))[0]
    if kind & 0x10 and v >> (16 * n - 1):
        v -= 1 << (16 * n)
    return v


class ModbusError(Exception):
    pass


class Timeout(ModbusError):
    """No answer within the timeout."""


class FrameError(ModbusError):
    """An answer that is not one: CRC error, cut short, another slave's or function's."""


_NAMES = ("", "illegal function", "illegal data address", "illegal data value",
          "slave device failure", "acknowledge", "slave device busy", "", "memory parity error",
          "", "gateway path unavailable", "gateway target device failed to respond")


class SlaveError(ModbusError):
    """The slave answered with an exception response (function | 0x80, exception code)."""

    def __init__(self, addr, function, code):
        name = _NAMES[code] if code < len(_NAMES) else ""
        super().__init__("slave %d function %d: exception %d (%s)" % (addr, function, code,
                                                                      name or "unknown"))
        self.addr = addr
        self.function = function
        self.code = code


class Master:
    """One RTU bus. UART: a configured machine.UART (or anything with write, readinto, any);
    BAUDRATE, PARITY (None or anything else) and STOP as set on it, for the timings. DE: a Pin,
    a pin number or None. ECHO: the receiver hears our own request (/RE not tied to DE): skip it.
    The UART's receive buffer must hold a whole answer (5 + 2 * count bytes)."""

    def __init__(self, uart, baudrate, de=None, *, parity=None, stop=1, timeout_ms=250,
                 retries=2, max_count=125, echo=False):
        self.uart = uart
        if isinstance(de, int):
            from machine import Pin
            de = Pin(de, Pin.OUT, value=0)
        elif de is not None:
            de.value(0)
        self.de = de
        bits = 10 + (parity is not None) + (stop == 2)  # start, 8 data, parity, stop bits
        self.char_us = (bits * 1000000 + baudrate - 1) // baudrate
        self.gap_us = 1750 if baudrate > 19200 else (35 * self.char_us + 9) // 10
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.max_count = max_count
        self._echo = 8 if echo else 0
        self._txdone = getattr(uart, "txdone", None)
        self._flush = getattr(uart, "flush", None)
        self._tx = bytearray(8)
        self._rx = bytearray(5 + 2 * max_count)
        self._rx3 = memoryview(self._rx)[3:]
        self._state = _IDLE
        self._count = 0
        self._need = 0
        self._attempt = 0
        self._at = time.ticks_us()   # _GAP: bus free from; _TX: last bit gone at
        self._deadline = 0           # ms
        self.busy = False
        self.error = None            # of the last request: None or a ModbusError
        self.requests = 0            # frames sent
        self.retried = 0             # of which repeats after a timeout or a bad frame
        self.failed = 0              # requests that ended in an error (SlaveError included)

    # -- the state machine --------------------------------------------------------------------

    def begin(self, addr, function, reg, count):
        """Start reading COUNT registers from REG of slave ADDR with FUNCTION (3 or 4). False
        (and nothing done) while another request is under way."""
        if self.busy:
            return False
        if not 0 < count <= self.max_count:
            raise ValueError("count")
        tx = self._tx
        tx[0] = addr
        tx[1] = function
        tx[2] = reg >> 8
        tx[3] = reg & 0xFF
        tx[4] = count >> 8
        tx[5] = count & 0xFF
        c = crc16(tx, 6)
        tx[6] = c & 0xFF
        tx[7] = c >> 8
        self._count = count
        self._attempt = 0
        self.error = None
        self.busy = True
        self._state = _GAP
        return True

    def step(self):
        """Advance the request begun; the ms to wait before the next call, or -1 once it is over
        (`error` None: the registers are in the buffer, see data(), value())."""
        st = self._state
        uart = self.uart
        if st == _GAP:
            now = time.ticks_us()
            if uart.any():  # a late answer or noise: discard it, the silence starts again
                self._drain()
                self._at = time.ticks_add(now, self.gap_us)
            d = time.ticks_diff(self._at, now)
            if d > 0:
                return d // 1000 + 1
            de = self.de
            if de is not None:
                de.value(1)
            uart.write(self._tx)
            self.requests += 1
            t = 8 * self.char_us
            self._at = time.ticks_add(time.ticks_us(), t)
            self._state = _TX
            return (t - _SPIN_US) // 1000 if t > _SPIN_US + 1000 else 0
        if st == _TX:
            d = time.ticks_diff(self._at, time.ticks_us())
            if d > _SPIN_US + 1000:
                return (d - _SPIN_US) // 1000
            self._sent()
            # the whole answer, at the baud rate, on top of the slave's time to answer
            self._deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms + (
                (self._echo + 5 + 2 * self._count) * self.char_us) // 1000)
            self._state = _HEAD
            return (self.gap_us + 4 * self.char_us) // 1000
        if st == _HEAD:
            n = uart.any()
            if n >= 3 + self._echo:
                rx = self._rx
                if self._echo:
                    uart.readinto(rx, self._echo)
                uart.readinto(rx, 3)
                tx = self._tx
                if rx[0] != tx[0] or rx[1] & 0x7F != tx[1]:
                    return self._fail(FrameError("unexpected answer"))
                if rx[1] & 0x80:
                    self._need = 2
                elif rx[2] != 2 * self._count:
                    return self._fail(FrameError("byte count"))
                else:
                    self._need = rx[2] + 2
                self._state = _BODY
                return (self._need * self.char_us) // 1000
            if time.ticks_diff(time.ticks_ms(), self._deadline) >= 0:
                return self._fail(FrameError("cut short") if n > self._echo else Timeout("no answer"))
            return _POLL_MS
        if st == _BODY:
            n = uart.any()
            need = self._need
            if n >= need:
                uart.readinto(self._rx3, need)
                rx = self._rx
                if crc16(rx, 3 + need):
                    return self._fail(FrameError("CRC"))
                if rx[1] & 0x80:
                    self.error = SlaveError(rx[0], self._tx[1], rx[2])
                    self.failed += 1
                else:
                    self.error = None  # (a retry's reason is forgotten)
                return self._finish()
            if time.ticks_diff(time.ticks_ms(), self._deadline) >= 0:
                return self._fail(FrameError("cut short"))
            return ((need - n) * self.char_us) // 1000 + 1
        return -1

    def _sent(self):
        """Wait (spinning, at most _SPIN_US + 1 ms) for the last bit to leave; DE low."""
        de = self.de
        if de is None:
            return
        at = self._at
        if self._txdone is not None:
            done = self._txdone
            limit = time.ticks_add(at, 2 * self.char_us + 2000)  # never hang on a broken UART
            while not done() and time.ticks_diff(limit, time.ticks_us()) > 0:
                pass
        elif self._flush is not None:
            self._flush()
        else:
            while time.ticks_diff(at, time.ticks_us()) > 0:
                pass
        de.value(0)

    def _drain(self):
        uart = self.uart
        rx = self._rx
        n = uart.any()
        while n:
            uart.readinto(rx, n if n < len(rx) else len(rx))
            n = uart.any()

    def _fail(self, err):
        self.error = err
        if self._attempt < self.retries:
            self._attempt += 1
            self.retried += 1
            self._state = _GAP
            self._at = time.ticks_add(time.ticks_us(), self.gap_us)
            return self.gap_us // 1000 + 1
        self.failed += 1
        return self._finish()

    def _finish(self):
        self._state = _IDLE
        self.busy = False
        self._at = time.ticks_add(time.ticks_us(), self.gap_us)
        return -1

    def abort(self):
        """Give the bus up in the middle of a request (its owner was cancelled)."""
        if self.de is not None:
            self.de.value(0)
        if self._state != _IDLE:
            self.error = ModbusError("aborted")
        self._finish()

    # -- the answer ---------------------------------------------------------------------------

    def data(self, dst, at=0):
        """Copy the registers of the last answer into DST from byte AT (allocation-free)."""
        rx = self._rx
        for i in range(2 * self._count):
            dst[at + i] = rx[3 + i]

    def value(self, index, kind, order=HIGH_FIRST):
        """A value of the last answer, from its register INDEX (0 = the first one read)."""
        return decode(self._rx, 3 + 2 * index, kind, order)

    async def read(self, addr, function, reg, count):
        """COUNT registers from REG of slave ADDR: a memoryview of their bytes, valid until the
        next request on this bus. Raises Timeout, FrameError (after the retries) or SlaveError."""
        while not self.begin(addr, function, reg, count):
            await asyncio.sleep_ms(_POLL_MS)
        try:
            while True:
                w = self.step()
                if w < 0:
                    break
                await asyncio.sleep_ms(w)
        finally:
            if self._state != _IDLE:  # cancelled mid-request
                self.abort()
        if self.error is not None:
            raise self.error
        return memoryview(self._rx)[3:3 + 2 * count]

    async def read_holding(self, addr, reg, count):
        return await self.read(addr, HOLDING, reg, count)

    async def read_input(self, addr, reg, count):
        return await self.read(addr, INPUT, reg, count)
