#!/usr/bin/env python3
"""Benchmark of the local authorization list: 10,000 cards in the heap of an ESP32.

    python tools/bench_localauth.py [CARDS]     prints a markdown table
    from bench_localauth import run; run()      the same figures as a dict (make bench)

The host part (CPython) runs this same file under MicroPython (`micropython -X heapsize=128K`) in
a scratch flash folder; that part delivers the cards as a CSMS does (a Full list, then Differential
updates of SendLocalListMaxLength entries, through localauth.send_local_list), times every update
and lookup, and measures the heap an operation needs: the smallest free region in which it
completes, found by bisection with the rest of the heap filled (128-byte resolution).
"""
import sys

import heapprobe  # noqa: E402  (tools/heapprobe.py, also on the MicroPython path)

CARDS = 10000
HEAP = "128K"  # Not the ESP32's ~112 KiB: there the 10,000-card run fails
# (MemoryError: no contiguous block for the 6 KB message it builds); it runs from 120 KiB
_BLOCK = 4096  # LittleFS block on the ESP32: every file takes whole blocks


def _entry(i):
    """Card I of the benchmark list, as a SendLocalList entry (every field used)."""
    return {"idTag": "%08X" % (i * 2654435761 & 0xFFFFFFFF),
            "idTagInfo": {"status": "Accepted", "expiryDate": "2031-01-01T00:00:00Z",
                          "parentIdTag": "FLEET%d" % (i % 10)}}


# -- under MicroPython ---------------------------------------------------------------------------





def _percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


def _quantile(histogram, rank):
    """The value of the sample of RANK (from 0) in HISTOGRAM (counts per value)."""
    seen = 0
    for value, count in enumerate(histogram):
        seen += count
        if seen > rank:
            return value
    return len(histogram) - 1


def _device(cards):
    import gc
    import json
    import os
    import time
    from array import array

    from uwallbox.profiles import localauth
    from uwallbox.station.config import Config

    class App:
        config = Config()

    app = App()
    most = app.config["SendLocalListMaxLength"]
    gc.collect()
    before = gc.mem_alloc()
    localauth.cards()
    gc.collect()
    small = min(1000, cards)  # the heap is measured with SMALL cards and with CARDS
    out = {"cards": cards, "cards_small": small, "message_entries": most,
           "ram_open_list_b": gc.mem_alloc() - before}

    def message(lo, kind="Differential"):
        """The SendLocalList payload of cards LO... as received: JSON text (in a bytearray)."""
        entries = [_entry(i) for i in range(lo, min(lo + most, cards))]
        text = json.dumps({"listVersion": 0, "updateType": kind, "localAuthorizationList": entries})
        return bytearray(text.replace('"listVersion": 0', '"listVersion": %10d' % 0).encode())  # 10 digits

    def send(text):
        """Apply TEXT as the list's next version (patched in place)."""
        at = text.find(b'"listVersion": ') + 15
        text[at:at + 10] = b"%10d" % (localauth.version() + 1)
        assert localauth.send_local_list(app, text)["status"] == "Accepted"

    times = []
    for lo in range(0, cards, most):
        text = message(lo, "Differential" if lo else "Full")
        t = time.ticks_us()
        send(text)
        times.append(time.ticks_diff(time.ticks_us(), t))
        if lo < small <= lo + most:  # the heap an update and a lookup need with few cards...
            out["heap_update_small_b"] = heapprobe.need(lambda: send(text))
            out["heap_lookup_small_b"] = heapprobe.need(lambda: localauth.lookup(app, _entry(7)["idTag"]))
    out["update_total_s"] = sum(times) / 1e6
    out["update_p50_ms"] = _percentile(times, 50) / 1000
    out["update_max_ms"] = max(times) / 1000
    text = message(cards - most)
    names = set(os.listdir("lal"))
    send(text)
    written = set(os.listdir("lal")) - names
    out["written_per_update_b"] = sum(os.stat("lal/" + f)[6] for f in written) + os.stat("lal/index")[6]
    out["heap_update_b"] = heapprobe.need(lambda: send(text))  # ...and with all the cards
    gc.collect()
    before = gc.mem_alloc()
    parsed = json.loads(text)  # what the message costs as Python objects (rpc's usual json.loads)
    gc.collect()
    out["json_loads_b"] = gc.mem_alloc() - before
    parsed = None
    out["message_b"] = len(text)
    micros = array("H", bytes(2 * 2001))  # histogram of lookup times, 1 us bins, the last one open
    for i in range(cards):
        tag = _entry(i)["idTag"]
        t = time.ticks_us()
        info = localauth.lookup(app, tag)
        micros[min(time.ticks_diff(time.ticks_us(), t), 2000)] += 1
        assert info is not None
    out["lookup_p50_us"] = _quantile(micros, cards // 2)
    out["lookup_p99_us"] = _quantile(micros, cards * 99 // 100)
    out["heap_lookup_b"] = heapprobe.need(lambda: localauth.lookup(app, tag))
    print(json.dumps(out))


# -- on the host ---------------------------------------------------------------------------------

def run(cards=CARDS):
    """The benchmark's figures for CARDS cards, as a dict."""
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "tools"))
    from mpbin import micropython
    micropython = micropython()
    path = ":".join(str(root / d) for d in ("firmware", "lib", "boards/sim", "sim/mpy", "tools"))
    env = dict(os.environ, MICROPYPATH=path + ":.frozen")
    with tempfile.TemporaryDirectory() as flash:
        r = subprocess.run([str(micropython), "-X", "heapsize=" + HEAP, __file__, "--device", str(cards)],
                           cwd=flash, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode:
            raise RuntimeError("micropython failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
        out = json.loads(r.stdout.splitlines()[-1])
        sizes = [f.stat().st_size for f in (Path(flash) / "lal").iterdir()]
    out["flash_files"] = len(sizes)
    out["flash_bytes"] = sum(sizes)
    out["flash_blocks_bytes"] = sum(-(-n // _BLOCK) * _BLOCK for n in sizes)
    return out


def table(f):
    """Markdown table of the figures F (from run())."""
    kb = 1024
    rows = [
        ("cards in the list", "%d" % f["cards"]),
        ("update: %d messages of %d entries, total" % (-(-f["cards"] // f["message_entries"]),
                                                      f["message_entries"]), "%.1f s" % f["update_total_s"]),
        ("update: one message, p50 / max", "%.1f / %.1f ms" % (f["update_p50_ms"], f["update_max_ms"])),
        ("update: flash written by one Differential message", "%.1f KB" % (f["written_per_update_b"] / kb)),
        ("lookup p50 / p99", "%d / %d us" % (f["lookup_p50_us"], f["lookup_p99_us"])),
        ("heap an update needs, %d / %d cards" % (f["cards_small"], f["cards"]),
         "%.1f / %.1f KB" % (f["heap_update_small_b"] / kb, f["heap_update_b"] / kb)),
        ("heap a lookup needs, %d / %d cards" % (f["cards_small"], f["cards"]),
         "%d / %d B" % (f["heap_lookup_small_b"], f["heap_lookup_b"])),
        ("heap json.loads would hold for that message (%.1f KB of JSON)" % (f["message_b"] / kb),
         "%.1f KB" % (f["json_loads_b"] / kb)),
        ("RAM held by the open list", "%d B" % f["ram_open_list_b"]),
        ("flash: %d files, bytes / in 4 KB blocks" % f["flash_files"],
         "%.0f / %.0f KB" % (f["flash_bytes"] / kb, f["flash_blocks_bytes"] / kb)),
    ]
    lines = ["| local auth list (micropython -X heapsize=%s) | |" % HEAP, "|---|---|"]
    return "\n".join(lines + ["| %s | %s |" % r for r in rows])


if __name__ == "__main__":
    if sys.implementation.name == "micropython":
        _device(int(sys.argv[2]))
    else:
        print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else CARDS)))
