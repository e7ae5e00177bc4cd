#!/usr/bin/env python3
"""What polling a Modbus meter costs: prints the figures as JSON.

    python tools/bench_modbus.py          (CPython: runs this same file under micropython)
    from bench_modbus import run; run()   the same figures as a dict

Under MicroPython (tools/mpbin.py: the 32-bit build of `make mp32` unless $UWB_MICROPYTHON names
another; -X heapsize=112K, the fake RS-485 line of sim/mpy/modbus_slave.py):
- `request_cpu_us`: the master's own work for one request of 12 registers (begin, every step,
  the copy of the answer), the line replaced by a replay of a recorded answer and every wait
  set to zero, so it is CPU time of the unix port, not line time;
- `crc_us_per_byte`: crc16() over 256 bytes;
- `poll_ms_9600` and `line_ms_9600`: one SDM630 poll (3 requests) on the fake line at 9600 8N1
  with the slave answering 1 ms after the 3.5-character silence, wall time per poll (interval 0)
  against the time its bytes and silences take on the line;
- `poll_bytes`: heap allocated per SDM630 poll once running (gc disabled over 50 polls);
- `read_us`, `read_bytes`: one read() of the SDM630 driver (decoding four floats, the tuples);
- `import_bytes`: heap taken by importing modbus and uwallbox.hw.meters as the .mpy files a
  device build holds (their bytecode and objects),
  `objects_bytes`: one Master and one SDM630 driver.
"""
import sys

HEAP = "112K"


# -- under MicroPython ---------------------------------------------------------------------------

class _Replay:
    """A line that answers every request with the same recorded bytes, at once."""

    def __init__(self, answer):
        self.a = answer
        self.pos = len(answer)

    def write(self, b):
        self.pos = 0
        return len(b)

    def any(self):
        return len(self.a) - self.pos

    def readinto(self, buf, n):
        a = self.a
        p = self.pos
        for i in range(n):
            buf[i] = a[p + i]
        self.pos = p + n
        return n


def _device():
    import asyncio
    import gc
    import json
    import time

    import uwallbox  # (the package and asyncio: the firmware has them anyway)
    out = {}
    asyncio.Event()
    gc.collect()
    before = gc.mem_alloc()
    import modbus
    from uwallbox.hw import meters
    gc.collect()
    out["import_bytes"] = gc.mem_alloc() - before
    assert modbus.__file__.endswith(".mpy"), modbus.__file__
    from modbus_slave import FakeUart, Slave

    u = FakeUart(9600)
    gc.collect()
    before = gc.mem_alloc()
    m = modbus.Master(u, 9600)
    meter = meters.SDM630(m, 1)
    gc.collect()
    out["objects_bytes"] = gc.mem_alloc() - before
    del m, meter, u

    # the master's CPU time per request
    regs = bytes(range(24))
    frame = bytearray(b"\x01\x04\x18" + regs + b"\x00\x00")
    c = modbus.crc16(frame, 27)
    frame[27] = c & 0xFF
    frame[28] = c >> 8
    m = modbus.Master(_Replay(bytes(frame)), 1000000)
    m.gap_us = 0
    m.char_us = 0
    dst = bytearray(24)
    n = 2000
    t = time.ticks_us()
    for _ in range(n):
        m.begin(1, 4, 0, 12)
        while m.step() >= 0:
            pass
        m.data(dst)
    out["request_cpu_us"] = round(time.ticks_diff(time.ticks_us(), t) / n, 1)
    assert m.error is None and dst == regs

    buf = bytes(range(256))
    t = time.ticks_us()
    for _ in range(200):
        modbus.crc16(buf)
    out["crc_us_per_byte"] = round(time.ticks_diff(time.ticks_us(), t) / 200 / 256, 3)

    def sdm630(baud):
        u = FakeUart(baud, 10)
        s = u.add(Slave(1))
        for i in range(6):
            s.set(s.input, 2 * i, "f32", 230.0 if i < 3 else 16.0)
        s.set(s.input, 0x34, "f32", 11040.0)
        s.set(s.input, 0x48, "f32", 12345.678)
        mb = modbus.Master(u, baud)
        return u, mb, meters.SDM630(mb, 1, interval_ms=0)

    async def polls(meter, k):
        target = meter.polls + k
        while meter.polls < target:
            await asyncio.sleep_ms(5)

    async def timed():
        u, mb, meter = sdm630(9600)
        meter.start()
        await polls(meter, 2)
        t = time.ticks_ms()
        await polls(meter, 10)
        out["poll_ms_9600"] = round(time.ticks_diff(time.ticks_ms(), t) / 10, 1)
        chars = sum(8 + 5 + 2 * cnt for _, cnt in meter.BLOCKS)
        silences = 2 * len(meter.BLOCKS) * mb.gap_us + len(meter.BLOCKS) * 1000
        out["line_ms_9600"] = round((chars * mb.char_us + silences) / 1000, 1)
        meter.deinit()

    async def alloc():
        u, mb, meter = sdm630(115200)
        meter.start()
        await polls(meter, 3)
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        await polls(meter, 0)
        base = gc.mem_alloc() - before
        before = gc.mem_alloc()
        await polls(meter, 50)
        grown = gc.mem_alloc() - before - base
        gc.enable()
        out["poll_bytes"] = grown // 50
        meter.deinit()
        assert meter.ok and mb.failed == 0
        gc.collect()
        before = gc.mem_alloc()
        gc.disable()
        r = meter.read()
        out["read_bytes"] = gc.mem_alloc() - before
        gc.enable()
        assert r[0] == 12345678
        t = time.ticks_us()
        for _ in range(500):
            meter.read()
        out["read_us"] = round(time.ticks_diff(time.ticks_us(), t) / 500, 1)

    asyncio.run(timed())
    asyncio.run(alloc())
    print(json.dumps(out))


# -- on the host ---------------------------------------------------------------------------------

def run():
    """The figures, as a dict."""
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    tools = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as cwd:
        # the two modules as a device build has them: .mpy (the package's __init__s as they are)
        mpy = Path(cwd) / "mpy"
        (mpy / "uwallbox" / "hw").mkdir(parents=True)
        for src, dst in (("lib/modbus.py", "modbus.mpy"),
                         ("firmware/uwallbox/hw/meters.py", "uwallbox/hw/meters.mpy")):
            subprocess.run([str(tools / "mpy-cross"), "-o", str(mpy / dst), str(root / src)],
                           check=True)
        for f in ("uwallbox/__init__.py", "uwallbox/hw/__init__.py"):
            (mpy / f).write_bytes((root / "firmware" / f).read_bytes())
        path = ":".join([str(mpy)] + [str(root / d) for d in ("tests/mpy", "boards/sim", "sim/mpy")])
        env = dict(os.environ, MICROPYPATH=path + ":.frozen")
        from mpbin import micropython   # the 32-bit build (make mp32), as the ESP32: 4-byte words
        r = subprocess.run([micropython(), "-X", "heapsize=" + HEAP, __file__,
                            "--device"], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=300)
    if r.returncode:
        raise RuntimeError("micropython failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    return json.loads(r.stdout.splitlines()[-1])


if __name__ == "__main__":
    if sys.implementation.name == "micropython":
        _device()
    else:
        import json
        print(json.dumps(run(), indent=1))
