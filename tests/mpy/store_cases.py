# MicroPython cases: the power-safe JSON files of flash/store.py.
import gc

from uwallbox.flash import store


def _write(name, text):
    with open(name, "w") as f:
        f.write(text)


def test_round_trip_small_and_large():
    small = {"a": "é ü ✓", "n": [1, 2, 3], "t": True}
    store.save("s.json", small)
    assert store.load("s.json") == small
    big = {"k": "x" * 5000, "l": [{"v": "%d.5" % i} for i in range(100)]}
    store.save("b.json", big)
    assert store.load("b.json") == big


def test_missing_empty_or_broken_files_give_the_default():
    assert store.load("none.json", 7) == 7
    _write("empty.json", "")
    assert store.load("empty.json", {}) == {}
    _write("broken.json", '{"a": ')
    assert store.load("broken.json") is None


def test_a_file_is_parsed_as_it_is_read_without_a_string_of_its_size():
    _write("pad.json", " " * 1500 + "5")
    store.load("pad.json")
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        assert store.load("pad.json") == 5
        used = gc.mem_alloc() - before
    finally:
        gc.enable()
    assert used < 300, used  # the file object, not 1.5 KB of text


def test_a_load_keeps_no_buffer():
    # the module holds nothing the size of a file between loads (it kept a 2 KB buffer until
    # 2026-12: 2 KiB of every device's heap for the speed of reading a file at once)
    assert not [k for k in dir(store) if type(getattr(store, k)) in (bytearray, memoryview)]
