# MicroPython unit cases of OCPP 1.6 rules that the end-to-end tests cannot reach on the sim board
# (tests/test_conformance.py has the rest), on the real App with a fake Rpc.
import asyncio

import board
import fakes
from uwallbox import clock
from uwallbox.profiles.core import unlock_connector
from uwallbox.station.meter import aligned_after


def test_unlock_on_a_tethered_cable_changes_nothing():
    app = fakes.app()
    c = app.connectors[0]
    app.evses[0].plugged = True
    c.start("TAG", {"status": "Accepted"})
    socket = board.SOCKET
    board.SOCKET = False  # a tethered cable: no lock to open
    try:
        assert unlock_connector(app, {"connectorId": 1}) == {"status": "NotSupported"}
    finally:
        board.SOCKET = socket
    assert c.tx is not None  # the transaction goes on


def test_clock_aligned_instants_count_from_midnight():
    day = clock.parse("2030-01-02T00:00:00Z")
    assert aligned_after(day, 7) == day + 7
    assert aligned_after(day + 6, 7) == day + 7
    assert aligned_after(day + 7, 7) == day + 14
    assert aligned_after(day + 86399, 7) == day + 86400  # the day's last interval is cut short
    assert aligned_after(day + 86400 - 3, 900) == day + 86400
    assert aligned_after(day + 1000, 900) == day + 1800


async def test_status_lasting_less_than_minimum_duration_is_dropped():
    app = fakes.app()
    app.session.online.set()
    app.config.set("MinimumStatusDuration", 1)
    c = app.connectors[0]
    task = asyncio.create_task(app.statuses.run())
    await asyncio.sleep_ms(1300)
    app.rpc.sent.clear()
    for s in ("Preparing", "Available", "Preparing"):  # a flicker, then Preparing stays
        c.status = s
        app.statuses.changed()
        await asyncio.sleep_ms(100)
    await asyncio.sleep_ms(600)
    ones = lambda: [p["status"] for a, p in app.rpc.sent if p["connectorId"] == 1]  # noqa: E731
    assert ones() == [], ones()  # not yet lasted a second
    await asyncio.sleep_ms(500)
    assert ones() == ["Preparing"], ones()
    task.cancel()


async def test_every_status_is_sent_in_order_with_minimum_duration_zero():
    app = fakes.app()
    app.session.online.set()
    c = app.connectors[0]
    task = asyncio.create_task(app.statuses.run())
    await asyncio.sleep_ms(200)
    app.rpc.sent.clear()
    stamps = []
    for s in ("Preparing", "Charging", "Finishing"):  # each lasts 150 ms
        c.status = s
        app.statuses.changed()
        stamps.append(app.clock.iso())
        await asyncio.sleep_ms(150)
    await asyncio.sleep_ms(200)
    sent = [(p["status"], p["timestamp"]) for a, p in app.rpc.sent if p["connectorId"] == 1]
    assert [s for s, t in sent] == ["Preparing", "Charging", "Finishing"], sent
    assert [t for s, t in sent] == stamps
    task.cancel()
