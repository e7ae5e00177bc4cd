"""Power-safe files in flash: write a new file, then rename it over the old one."""
import json
import os


def write(path, data, *more):
    """Atomically replace PATH with DATA (str or bytes) and MORE after it (buffers: no copy of
    them is made)."""
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
        for d in more:
            f.write(d)
    os.rename(tmp, path)


def save(path, obj):
    """Atomically replace PATH with OBJ as JSON."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, path)


# Files are read into this buffer, made at boot, and parsed from it: a file read every second (a
# journaled MeterValues, ~1.3 KB) makes no string of its size, which a fragmented heap may not
# have in one piece. A larger file, or a load while this one is parsing, reads a string.
_BUF = bytearray(2048)
_busy = False


def load(path, default=None):
    """The JSON in PATH, or DEFAULT when it is missing or unreadable."""
    global _busy
    try:
        with open(path, "rb") as f:
            if not _busy:
                _busy = True
                try:
                    n = f.readinto(_BUF)
                    if n < len(_BUF):
                        return json.loads(memoryview(_BUF)[:n])
                    f.seek(0)
                finally:
                    _busy = False
            return json.loads(f.read())  # json.load reads a file byte by byte
    except (OSError, ValueError):
        return default


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass
