"""Power-safe files in flash: write a new file, then rename it over the old one."""
import json
import os


def write(path, data):
    """Atomically replace PATH with DATA (str or bytes)."""
    tmp = path + ".tmp"
    with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.rename(tmp, path)


def save(path, obj):
    """Atomically replace PATH with OBJ as JSON."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, path)


def load(path, default=None):
    """The JSON in PATH, or DEFAULT when it is missing or unreadable."""
    try:
        with open(path) as f:
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
