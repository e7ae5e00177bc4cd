# Mock of the OTA part of MicroPython's `esp32` module for the unix port (the sim board).
#
# Two app slots, "ota_0" and "ota_1", of _BLOCKS 4096-byte blocks, each a file `<label>.bin` in the
# working directory (the simulator's state folder); `otadata.json` holds the boot slot and its
# rollback state, like the ESP-IDF's otadata partition: set_boot() marks the slot "new", the next
# boot (the first import of this module in a process) tries it ("verify"); a boot that finds it
# still unconfirmed (mark_app_valid_cancel_rollback() not called) rolls back to the other slot.
# Without otadata.json the charge point runs ota_0. Flash rules are checked: bytes are programmed
# once after an erase (ioctl 6, or writeblocks without offset), which works on whole blocks.
# The sim board imports this module at boot: what it holds counts as simulated hardware.
import json
from array import array

_BLOCK = 4096
_BLOCKS = 384  # 1.5 MiB slots, as in MicroPython's 4 MiB OTA partition table
_LABELS = ("ota_0", "ota_1")
_OTADATA = "otadata.json"


def _other(label):
    return _LABELS[1 - _LABELS.index(label)]


def _load():
    try:
        with open(_OTADATA) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"boot": _LABELS[0], "state": "valid"}


def _save(d):
    with open(_OTADATA, "w") as f:
        json.dump(d, f)


def _boot():
    """The bootloader's choice for this process: the label of the slot it runs."""
    d = _load()
    if d["state"] == "verify":  # the last boot never confirmed the new image: roll back
        d = {"boot": _other(d["boot"]), "state": "valid"}
        _save(d)
    elif d["state"] == "new":
        d["state"] = "verify"
        _save(d)
    return d["boot"]


_running = _boot()
_ERASED = b"\xff" * _BLOCK
# per slot and block: bytes programmed since its erase; at boot the flash's state is unknown
_programmed = {label: array("H", [_BLOCK] * _BLOCKS) for label in _LABELS}


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=_BLOCK):
        label = _running if id == Partition.RUNNING else _load()["boot"] if id == Partition.BOOT else id
        if label not in _LABELS:
            raise ValueError("no partition " + str(label))
        self._label = label

    def info(self):
        """(type, subtype, address, size, label, encrypted)"""
        i = _LABELS.index(self._label)
        return (Partition.TYPE_APP, 0x10 + i, 0x10000 + i * _BLOCKS * _BLOCK, _BLOCKS * _BLOCK,
                self._label, False)

    def get_next_update(self):
        return Partition(_other(self._label))

    def _file(self):
        name = self._label + ".bin"
        try:
            return open(name, "r+b")
        except OSError:
            return open(name, "w+b")

    def readblocks(self, block, buf, offset=0):
        with self._file() as f:
            f.seek(block * _BLOCK + offset)
            got = f.readinto(buf) or 0
        for i in range(got, len(buf)):  # never written: erased flash
            buf[i] = 0xFF

    def writeblocks(self, block, buf, offset=None):
        """Without OFFSET: erase whole blocks, then write them. With it: program bytes, which
        must have been erased (ioctl 6) since the boot and not programmed since (OSError)."""
        n = len(buf)
        if offset is None:
            if n % _BLOCK:
                raise OSError(22)
            for b in range(block, block + n // _BLOCK):
                self.ioctl(6, b)
            offset = 0
        pos = block * _BLOCK + offset
        if pos + n > _BLOCKS * _BLOCK:
            raise OSError(22)
        marks = _programmed[self._label]
        for b in range(pos // _BLOCK, (pos + n - 1) // _BLOCK + 1):
            start = b * _BLOCK
            if marks[b] > max(0, pos - start):
                raise OSError(5)  # programming flash that was not erased
            marks[b] = min(_BLOCK, pos + n - start)
        with self._file() as f:
            f.seek(pos)
            f.write(buf)

    def ioctl(self, op, arg):
        if op == 6:  # erase block ARG
            with self._file() as f:
                f.seek(arg * _BLOCK)
                f.write(_ERASED)
            _programmed[self._label][arg] = 0
            return 0
        return {4: _BLOCKS, 5: _BLOCK}.get(op)

    def set_boot(self):
        head = bytearray(1)
        self.readblocks(0, head)
        if head[0] != 0xE9:  # esp_ota_set_boot_partition() verifies the image
            raise OSError(5)
        _save({"boot": self._label, "state": "new"})

    @staticmethod
    def mark_app_valid_cancel_rollback():
        d = _load()
        if d["state"] == "verify":
            d["state"] = "valid"
            _save(d)
