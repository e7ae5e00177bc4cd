# MicroPython tests of firmware/uwallbox/system/ota.py on the esp32.Partition mock of the sim board
# (sim/mpy/esp32.py): slots are files in the working directory (one fresh folder per test).
import json
import os

from uwallbox.system import ota

_SLOT = 384 * 4096


def image(n):
    """A fake ESP32 app image of N bytes: magic byte 0xE9, then a pattern."""
    b = bytearray(i % 251 for i in range(n))
    b[0] = 0xE9
    return b


def otadata():
    try:
        with open("otadata.json") as f:
            return json.load(f)
    except OSError:
        return None


def write(img, sizes=(1, 1000, 4095, 4096, 3, 9000)):
    """Write IMG in chunks of uneven SIZES (cycled); the updater."""
    u = ota.begin()
    i = k = 0
    while i < len(img):
        n = sizes[k % len(sizes)]
        u.write(memoryview(img)[i : i + n])
        i += n
        k += 1
    return u


def test_image_written_and_made_the_boot_slot():
    assert ota.running() == "ota_0"
    img = image(30001)
    assert write(img).finish()
    with open("ota_1.bin", "rb") as f:
        slot = f.read()
    assert len(slot) == 8 * 4096  # whole blocks
    assert slot[:30001] == img and slot[30001:] == b"\xff" * (8 * 4096 - 30001)
    assert otadata() == {"boot": "ota_1", "state": "new"}
    assert ota.running() == "ota_0"  # until the reboot


def test_not_an_image_leaves_the_boot_slot():
    img = image(10000)
    img[0] = 0x7F
    assert not write(img).finish()
    assert otadata() is None
    assert not write(b"\xe9" * 10).finish()  # no room for a header
    assert not ota.begin().finish()  # nothing at all
    assert otadata() is None


def test_image_larger_than_the_slot():
    u = ota.begin()
    block = image(4096)
    for _ in range(_SLOT // 4096):
        u.write(block)
    try:
        u.write(b"\x00")
    except ValueError:
        assert otadata() is None
        return
    raise AssertionError("an image larger than the slot was written")


def test_a_second_image_replaces_the_first():
    # flash programming only clears bits: without erasing, the second image would be corrupt
    first = image(20000)
    for i in range(1, len(first)):
        first[i] = 0x5A
    assert write(first).finish()
    second = image(12345)
    assert write(second, (777,)).finish()
    with open("ota_1.bin", "rb") as f:
        assert f.read(12345) == second


def test_new_slot_boots_and_confirms():
    with open("otadata.json", "w") as f:
        json.dump({"boot": "ota_1", "state": "new"}, f)
    assert ota.running() == "ota_1"  # this process is the first boot of the new slot
    assert otadata()["state"] == "verify"
    ota.confirm()
    assert otadata() == {"boot": "ota_1", "state": "valid"}


def test_unconfirmed_slot_rolls_back():
    with open("otadata.json", "w") as f:
        json.dump({"boot": "ota_1", "state": "verify"}, f)  # its first boot never confirmed it
    assert ota.running() == "ota_0"
    assert otadata() == {"boot": "ota_0", "state": "valid"}
    assert "ota_1.bin" not in os.listdir()
