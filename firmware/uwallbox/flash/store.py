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


def load(path, default=None):
    """The JSON in PATH, or DEFAULT when it is missing or unreadable. Parsed from the file as it
    is read: no string of the file's size (a journaled MeterValues, ~1 KB, is read every second)
    and no buffer kept for it. json.load reads one byte at a time: a few ms a KB from an ESP32's
    LittleFS (it reads from its cache), ~0.5 ms on the unix port (a system call each)."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
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
