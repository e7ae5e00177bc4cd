# A fake RS-485 line with Modbus RTU slaves on it, behind the machine.UART interface the master
# uses (write, any, readinto, read, txdone, flush), for the MicroPython tests and the simulator's
# meters (simmeter.py). The slaves parse each request frame, check its CRC (their own bitwise CRC, not the
# master's table) and answer from register dicts. Time is real (time.ticks_us): an answer starts
# 3.5 character times plus the slave's latency after the request's last byte, and its bytes become
# readable one character time apart. With a direction pin (FakePin) the line also notes a request
# written while the pin is low and an answer that starts before the pin has gone low (a
# collision: the answer is garbled).
#
# The request/answer path allocates nothing (preallocated buffers, integer times), so the
# master's allocation tests measure the master.
import struct
import time

HIGH_FIRST = 0
LOW_FIRST = 1


def crc(buf, n, start=0):
    c = 0xFFFF
    for i in range(start, n):
        c ^= buf[i]
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
    return c


def words(kind, value, order=HIGH_FIRST):
    """The registers (list of 16-bit ints) holding VALUE as KIND ('u16', 's32', 'f32', ...)."""
    n = int(kind[1:]) // 16
    if kind[0] == "f":
        raw = struct.pack(">f" if n == 2 else ">d", value)
        v = int.from_bytes(raw, "big")
    else:
        v = value & ((1 << (16 * n)) - 1)
    w = [(v >> (16 * (n - 1 - i))) & 0xFFFF for i in range(n)]
    return w if order == HIGH_FIRST else w[::-1]


class FakePin:
    """A direction pin: value(), with the times of its last edges."""

    def __init__(self):
        self.v = 0
        self.rose_us = 0
        self.fell_us = 0
        self.rises = 0

    def value(self, v=None):
        if v is None:
            return self.v
        if v and not self.v:
            self.rose_us = time.ticks_us()
            self.rises += 1
        elif self.v and not v:
            self.fell_us = time.ticks_us()
        self.v = 1 if v else 0


class Slave:
    def __init__(self, addr):
        self.addr = addr
        self.holding = {}     # register -> 16-bit value
        self.input = {}
        self.online = True    # False: never answers
        self.bad_crc = 0      # answer this many requests with a corrupted CRC
        self.exception = 0    # answer every request with this exception code (0: none)
        self.canned = None    # bytes: the next answer, exactly as given
        self.latency_us = 1000  # processing time, after the 3.5-character silence
        self.requests = 0     # valid requests addressed to it

    def refresh(self):
        """Called before each answer: a subclass updates its registers here."""
    def set(self, table, reg, kind, value, order=HIGH_FIRST):
        for i, w in enumerate(words(kind, value, order)):
            table[reg + i] = w


class PlainUart:
    """The line without txdone() / flush(): the master times the end of a request itself."""

    def __init__(self, baudrate=9600, bits=11, de=None, echo=False):
        self.echo = echo            # the receiver hears the request too (/RE not tied to DE)
        self.n_echo = 0
        self.char_us = (bits * 1000000 + baudrate - 1) // baudrate
        self.gap_us = 1750 if baudrate > 19200 else (35 * self.char_us + 9) // 10
        self.de = de
        self.slaves = {}
        self.out = bytearray(300)   # the answer under way
        self.n_out = 0
        self.pos = 0                # of it read
        self.t_out = 0              # when its first bit starts
        self.last = bytearray(16)   # the last request, as written
        self.n_last = 0
        self.frames = 0
        self.write_us = 0
        self.txdone_us = 0
        self.line_end = 0           # the end of the last character on the line
        self.min_gap_us = 1 << 29   # shortest silence before a request (after the first one)
        self.collisions = 0         # answers that started while DE was still high
        self.undriven = 0           # requests written with DE low
        self._checked = True

    def add(self, slave):
        self.slaves[slave.addr] = slave
        return slave

    def write(self, buf):
        now = time.ticks_us()
        n = len(buf)
        if self.frames:
            gap = time.ticks_diff(now, self.line_end)
            if gap < self.min_gap_us:
                self.min_gap_us = gap
        self.frames += 1
        de = self.de
        if de is not None and not de.v:
            self.undriven += 1
        last = self.last
        for i in range(n if n < len(last) else len(last)):
            last[i] = buf[i]
        self.n_last = n
        self.write_us = now
        self.txdone_us = time.ticks_add(now, n * self.char_us)
        self.line_end = self.txdone_us
        self.n_out = 0
        self.pos = 0
        self.n_echo = 0
        if self.echo:
            out = self.out
            for i in range(n):
                out[i] = buf[i]
            self.n_echo = n
        self._answer(buf, n)
        return n

    def _answer(self, req, n):
        if n != 8 or crc(req, n):
            return
        s = self.slaves.get(req[0])
        if s is None or not s.online:
            return
        s.requests += 1
        s.refresh()
        out = self.out
        b = self.n_echo  # the answer follows the echo in `out`
        if s.canned is not None:
            k = len(s.canned)
            for i in range(k):
                out[b + i] = s.canned[i]
            s.canned = None
        else:
            fc = req[1]
            reg = (req[2] << 8) | req[3]
            cnt = (req[4] << 8) | req[5]
            table = s.holding if fc == 3 else s.input if fc == 4 else None
            code = s.exception
            if not code:
                if table is None:
                    code = 1
                elif cnt < 1 or cnt > 125:
                    code = 3
                else:
                    for i in range(cnt):
                        if reg + i not in table:
                            code = 2
                            break
            out[b] = req[0]
            if code:
                out[b + 1] = fc | 0x80
                out[b + 2] = code
                k = 3
            else:
                out[b + 1] = fc
                out[b + 2] = 2 * cnt
                for i in range(cnt):
                    v = table[reg + i]
                    out[b + 3 + 2 * i] = v >> 8
                    out[b + 4 + 2 * i] = v & 0xFF
                k = 3 + 2 * cnt
            c = crc(out, b + k, b)
            out[b + k] = c & 0xFF
            out[b + k + 1] = c >> 8
            k += 2
            if s.bad_crc:
                s.bad_crc -= 1
                out[b + k - 1] ^= 0x55
        self.n_out = k
        self.t_out = time.ticks_add(self.txdone_us, self.gap_us + s.latency_us)
        self.line_end = time.ticks_add(self.t_out, k * self.char_us)
        self._checked = False

    def _avail(self):
        now = time.ticks_us()
        e = self.n_echo
        if e:
            k = time.ticks_diff(now, self.write_us) // self.char_us
            if k < e:
                return k
        if not self.n_out:
            return e
        d = time.ticks_diff(now, self.t_out)
        if d < 0:
            return e
        if not self._checked:
            self._checked = True
            de = self.de
            if de is not None and (de.v or time.ticks_diff(de.fell_us, self.t_out) > 0):
                self.collisions += 1
                self.out[e + 1] ^= 0xFF
        k = d // self.char_us
        return e + (k if k < self.n_out else self.n_out)

    def any(self):
        return self._avail() - self.pos

    def readinto(self, buf, n=-1):
        k = self._avail() - self.pos
        if 0 <= n < k:
            k = n
        if k > len(buf):
            k = len(buf)
        out = self.out
        p = self.pos
        for i in range(k):
            buf[i] = out[p + i]
        self.pos = p + k
        return k or None

    def read(self, n=-1):
        k = self.any()
        if 0 <= n < k:
            k = n
        b = bytearray(k)
        self.readinto(b, k)
        return bytes(b) if k else None

    def answer_end_us(self):
        return self.line_end


class FakeUart(PlainUart):
    """The line as an ESP32 UART: txdone() and flush()."""

    def txdone(self):
        return time.ticks_diff(time.ticks_us(), self.txdone_us) >= 0

    def flush(self):
        while not self.txdone():
            pass


class FlushUart(PlainUart):
    """A port with flush() only."""

    def flush(self):
        while time.ticks_diff(time.ticks_us(), self.txdone_us) < 0:
            pass
