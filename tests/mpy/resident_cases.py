# MicroPython unit cases of what stays resident: the code that runs once or rarely (lifecycle.py,
# ocpp/link.py with lib/wsopen.py, station/keyrules.py, system/provision.py) leaves sys.modules
# after its job (uwallbox.unload), on the real App of the sim board and a fake Rpc.
import asyncio
import sys

import board
import fakes
from uwallbox.ocpp import session as session_module

_TRANSIENT = ("uwallbox.lifecycle", "uwallbox.ocpp.link", "uwallbox.station.keyrules",
              "uwallbox.system.provision", "wsopen", "tcp", "pem")
_NOW = "2030-01-02T03:04:05Z"


def _left():
    return [m for m in _TRANSIENT if m in sys.modules]


def test_building_the_app_leaves_no_boot_code():
    with open("settings.json", "w") as f:
        f.write('{"url": "ws://127.0.0.1:9", "id": "CP042"}')
    from uwallbox.app import App
    app = App(board)
    assert app.config["ChargePointId"] == "CP042"  # provisioning ran, with its pem module
    assert _left() == [], _left()
    import uwallbox
    assert not hasattr(uwallbox, "lifecycle")  # the package forgets it too
    # the parts' modules stay, the very ones the parts were built from (no second copy later)
    m = sys.modules
    assert type(app.clock) is m["uwallbox.clock"].Clock and type(app.config) is m["uwallbox.station.config"].Config
    assert type(app.evses[0]) is m["uwallbox.hw.evse"].Evse and type(app.rpc) is m["uwallbox.ocpp.rpc"].Rpc
    assert type(app.connectors[0]) is m["uwallbox.station.connector"].Connector


def test_a_configuration_change_loads_its_rules_for_the_change_only():
    app = fakes.app()
    assert app.config.change("HeartbeatInterval", "120") == "Accepted"
    assert app.config.change("HeartbeatInterval", "ten") == "Rejected"
    assert app.config.change("NoSuchKey", "1") == "NotSupported"
    assert app.config["HeartbeatInterval"] == 120 and app.config["MinimumStatusDuration"] == 0
    assert _left() == [], _left()


def test_get_configuration_of_every_key_streams_then_unloads():
    from uwallbox.profiles.core import change_configuration, get_configuration
    app = fakes.app()
    assert change_configuration(app, {"key": "heartbeatinterval", "value": "77"}) == {"status": "Accepted"}
    entries = list(get_configuration(app, {})["configurationKey"])  # a generator: streamed
    values = {e["key"]: e["value"] for e in entries}
    assert values["HeartbeatInterval"] == "77" and values["NumberOfConnectors"] == "1", values
    assert "AuthorizationKey" not in values  # write-only
    assert _left() == [], _left()


async def test_the_registration_unloads_link_once_accepted():
    app = fakes.app({"BootNotification": {"status": "Accepted", "currentTime": _NOW, "interval": 90}})
    s = app.session
    s.registration = None
    await s._register()
    assert s.registration == "Accepted" and s.online.is_set() and app.config["HeartbeatInterval"] == 90
    assert [a for a, _ in app.rpc.sent] == ["BootNotification"]
    assert _left() == [], _left()


async def test_a_failed_connection_attempt_unloads_link_and_the_handshake():
    app = fakes.app()
    app.config.set("CentralSystemUrl", "ws://127.0.0.1:9")  # nothing listens there
    waits = []

    class Pause:  # the back-off pause, recorded instead of slept
        @staticmethod
        async def sleep(s):
            waits.append(s)

    session_module.asyncio = Pause
    try:
        assert await app.session._connect() is None
    finally:
        session_module.asyncio = asyncio
    assert len(waits) == 1 and 1 <= waits[0] < 2 and app.session.fails == 1, (waits, app.session.fails)
    assert _left() == [], _left()


async def test_no_heap_to_load_the_connection_code_is_a_failed_attempt():
    # a MemoryError loading link.py counts as a connection lost to MemoryError (OOM_LIMIT of them
    # in a row: out_of_memory) instead of ending the session's task (an instant restart)
    app = fakes.app()
    waits = []

    class Pause:
        @staticmethod
        async def sleep(s):
            waits.append(s)

    class NoHeap:  # the module whose code cannot be loaded
        def __getattr__(self, name):
            raise MemoryError("memory allocation failed, allocating 2048 bytes")

    sys.modules["uwallbox.ocpp.link"] = NoHeap()
    session_module.asyncio = Pause
    try:
        assert await app.session._connect() is None
        assert await app.session._connect() is None
    finally:
        session_module.asyncio = asyncio
        del sys.modules["uwallbox.ocpp.link"]
    assert app.session.oom == 2 and isinstance(app.session.last, MemoryError) and waits == [1, 1]
