"""Firmware images into the other app slot of the ESP32 (esp32.Partition, its extended block
protocol; sim/mpy/esp32.py mocks it): begin(), write(chunk)..., finish() makes the slot boot
next; after the reboot the new firmware confirm()s itself once it works, else the bootloader
rolls back on the next reset."""
from micropython import const

_BLOCK = const(4096)  # flash erase block
_MAGIC = const(0xE9)  # first byte of an ESP32 app image
_HEADER = const(24)  # bytes of an app image header


def _partition():
    import esp32  # only on the ESP32 (and the sim board)

    return esp32.Partition


def running():
    """Label of the app slot running now ('ota_0', 'ota_1')."""
    p = _partition()
    return p(p.RUNNING).info()[4]


def confirm():
    """The running firmware works: cancel the rollback to the previous one."""
    _partition().mark_app_valid_cancel_rollback()


class _Image:
    """An image being written into the next update slot as it comes: each block is erased
    when the image enters it, then written piece by piece (no block buffer on the heap)."""

    def __init__(self):
        p = _partition()
        self.slot = p(p.RUNNING).get_next_update()  # OSError without a second app slot
        self.room = self.slot.ioctl(4, 0) * _BLOCK  # bytes the slot holds
        self.size = 0  # bytes written
        self.magic = None  # first byte of the image

    def write(self, chunk):
        """Add CHUNK (bytes-like) to the image; ValueError when it outgrows the slot."""
        mv = memoryview(chunk)
        if self.size + len(mv) > self.room:
            raise ValueError("image larger than the update slot")
        if self.magic is None and len(mv):
            self.magic = mv[0]
        while len(mv):
            block, offset = divmod(self.size, _BLOCK)
            if not offset:
                self.slot.ioctl(6, block)  # erase
            k = min(len(mv), _BLOCK - offset)
            self.slot.writeblocks(block, mv[:k], offset)  # with an offset: no erase
            self.size += k
            mv = mv[k:]

    def finish(self):
        """Check the image (size, ESP32 app image) and make its slot the boot slot. False, and
        the boot slot untouched, when it is no valid image."""
        if self.size <= _HEADER or self.magic != _MAGIC:
            return False
        try:
            self.slot.set_boot()  # the ESP-IDF checks the image (segments, checksum) too
        except OSError:
            return False
        return True


def begin():
    """Start writing an image into the next update slot: an object with write() and finish()."""
    return _Image()
