# MicroPython cases: the power-safe JSON files of flash/store.py.
import gc

from uwallbox.flash import store


def _write(name, text):
    with open(name, "w") as f:
        f.write(text)


def test_round_trip_small_and_larger_than_the_read_buffer():
    small = {"a": "é ü ✓", "n": [1, 2, 3], "t": True}
    store.save("s.json", small)
    assert store.load("s.json") == small
    big = {"k": "x" * (len(store._BUF) * 2)}  # read as a string, not through the buffer
    store.save("b.json", big)
    assert store.load("b.json") == big
    exact = '"' + "y" * (len(store._BUF) - 2) + '"'  # fills the buffer exactly: read again whole
    _write("e.json", exact)
    assert store.load("e.json") == exact[1:-1]


def test_missing_empty_or_broken_files_give_the_default():
    assert store.load("none.json", 7) == 7
    _write("empty.json", "")
    assert store.load("empty.json", {}) == {}
    _write("broken.json", '{"a": ')
    assert store.load("broken.json") is None


def test_a_file_is_parsed_from_the_buffer_without_a_string_of_its_size():
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
    assert used < 600, used  # the file object and a memoryview, not 1.5 KB of text


def test_a_load_during_a_load_reads_a_string():
    store.save("inner.json", [1])
    store._busy = True  # as if a load were parsing from the buffer
    try:
        assert store.load("inner.json") == [1]
    finally:
        store._busy = False
