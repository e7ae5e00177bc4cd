"""Wall clock in Unix seconds, whatever the port's epoch; ISO 8601 in and out."""
import time

# Seconds between 1970-01-01 and the port's epoch (0 on unix, 946684800 on the ESP32).
_EPOCH = 0 if time.gmtime(0)[0] == 1970 else 946684800


def _days(y, m, d):
    """Days from 1970-01-01 to y-m-d (proleptic Gregorian)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse(s):
    """ISO 8601 date-time -> Unix seconds (int: the ESP32's floats are 32-bit); ValueError if malformed."""
    try:
        y, mo, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
        h, mi, sec = int(s[11:13]), int(s[14:16]), int(s[17:19])
        if s[4] != "-" or s[7] != "-" or s[10] not in "Tt " or s[13] != ":" or s[16] != ":":
            raise ValueError
        i = 19
        if i < len(s) and s[i] == ".":  # fractions of a second are dropped
            i += 1
            while i < len(s) and "0" <= s[i] <= "9":
                i += 1
        off = 0
        rest = s[i:]
        if rest in ("Z", "z"):
            pass
        elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
            off = (int(rest[1:3]) * 60 + int(rest[4:6])) * 60
            if rest[0] == "-":
                off = -off
        elif rest:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError("bad date-time: " + s)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 61):
        raise ValueError("bad date-time: " + s)
    return _days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off


def iso(t):
    """Unix seconds -> 'YYYY-MM-DDTHH:MM:SSZ'."""
    y, mo, d, h, mi, s = time.gmtime(int(t) - _EPOCH)[:6]
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)


class Clock:
    """The charge point's idea of UTC: the port clock plus an offset set by the CSMS."""

    def __init__(self):
        self.offset = 0  # int: a 32-bit float cannot hold a Unix time to the second
        self.listener = None  # fn() called after every jump (set, advance)

    def now(self):
        """Unix seconds now (int)."""
        return int(time.time()) + _EPOCH + self.offset

    def set(self, t):
        """Adopt CSMS time T (Unix seconds)."""
        self.offset += t - self.now()
        if self.listener:
            self.listener()

    def advance(self, s):
        """Move the clock forward S seconds (simulator)."""
        self.offset += int(s)
        if self.listener:
            self.listener()

    def iso(self):
        return iso(self.now())

    @staticmethod
    def subsec_ms():
        """Milliseconds of the present second of now() (now() counts whole seconds)."""
        return time.time_ns() // 1000000 % 1000
