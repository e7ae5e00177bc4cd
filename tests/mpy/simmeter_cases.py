# MicroPython unit cases of the simulator's Modbus meters (sim/mpy/simmeter.py): real RTU frames on
# the simulated RS-485 line, answered from the plant meter's readings.
import time

import modbus
from modbus_slave import crc
import simmeter


class PlantMeter:
    def __init__(self, wh):
        self.wh = wh
        self.amps = (16.0, 16.0, 16.0)

    def read(self):
        return (self.wh, 11040.0, self.amps, (230.0, 230.0, 230.0))

    def set(self, wh):
        self.wh = wh


class Plant:
    def __init__(self, wh):
        self.meter = PlantMeter(wh)


def exchange(uart, frame):
    """Write FRAME (CRC appended), wait for the whole answer; the answer's bytes. The request is
    written straight to the line, not by a master driving the direction pin: the line must not
    judge DE (else an answer may count as a collision, garbled)."""
    uart.de = None
    req = bytearray(frame)
    c = crc(req, len(req))
    req += bytes((c & 0xFF, c >> 8))
    uart.write(req)
    t = time.ticks_ms()
    last, n = -1, 0
    while time.ticks_diff(time.ticks_ms(), t) < 500:
        n = uart.any()
        if n and n == last:
            break
        last = n
        time.sleep_ms(20)
    return uart.read(n) if n else b""


def test_sdm630_answers_real_frames_from_the_plant():
    ms = simmeter.Meters("sdm630", [Plant(1234567)], 230, 3)
    # read input registers 0x0048-0x0049 (total import kWh) of slave 1: 01 04 00 48 00 02 + CRC
    a = exchange(ms.uart, b"\x01\x04\x00\x48\x00\x02")
    assert a[:3] == b"\x01\x04\x04" and crc(a, len(a)) == 0, a   # a whole frame leaves CRC 0
    kwh = modbus.decode(a, 3, modbus.F32)
    assert abs(kwh - 1234.567) < 0.001, kwh
    a = exchange(ms.uart, b"\x01\x04\x00\x00\x00\x0c")   # volts and currents, one request
    assert len(a) == 5 + 24 and crc(a, len(a)) == 0
    assert [round(modbus.decode(a, 3 + 4 * i, modbus.F32), 1) for i in range(6)] == [230.0] * 3 + [16.0] * 3
    a = exchange(ms.uart, b"\x02\x04\x00\x48\x00\x02")   # no meter at address 2: silence
    assert a == b""
    ms.fail(0, True)
    assert exchange(ms.uart, b"\x01\x04\x00\x48\x00\x02") == b"" and ms.failing(0)
    ms.fail(0, False)
    ms.set_energy(0, 42)
    a = exchange(ms.uart, b"\x01\x04\x00\x48\x00\x02")
    assert abs(modbus.decode(a, 3, modbus.F32) - 0.042) < 1e-6


def test_b23_holding_registers_in_integers():
    ms = simmeter.Meters("b23", [Plant(987654)], 230, 3)
    a = exchange(ms.uart, b"\x01\x03\x50\x00\x00\x04")   # energy, u64 in 0.01 kWh
    assert a[:3] == b"\x01\x03\x08" and crc(a, len(a)) == 0
    assert modbus.decode(a, 3, modbus.U64) == 98765
    a = exchange(ms.uart, b"\x01\x04\x50\x00\x00\x04")   # input registers: exception 2
    assert a[:3] == b"\x01\x84\x02" and crc(a, len(a)) == 0
