# A minimal stand-in for uwallbox.app.App, to exercise the sim control API (tests/test_simctl.py):
# real Evses stepped by the Timer, fake connectors/OCPP state, board.attach(app).
# Prints what the control API made it do ("card ...", "clock advanced ...").
import asyncio

import board
from uwallbox.hw.evse import Evse, start_timer
from uwallbox.station.connector import Transaction


class Session:
    connected = True
    registration = "Accepted"


class Clock:
    def __init__(self):
        self.offset = 0

    def advance(self, s):
        self.offset += s
        print("clock advanced", s)


class Conn:
    def __init__(self, i, evse):
        self.id = i + 1
        self.evse = evse
        self.status = "Available"
        self.transaction_id = None
        self.tx = None
        self.meter_wh = 0
        self.meter = board.meter(i)
        self.power_w = 0.0

    def update(self):
        e = self.evse
        r = board.meter(self.id - 1).read()
        self.meter_wh, self.power_w = r[0], r[1]
        if e.fault:
            self.status = "Faulted"
        elif self.transaction_id is not None:
            self.status = "Charging" if e.relay else "SuspendedEV"
        else:
            self.status = "Preparing" if e.plugged else "Available"


class App:
    def __init__(self):
        self.session = Session()
        self.clock = Clock()
        self.evses = [Evse(board, i) for i in range(len(board.CONNECTORS))]
        self.connectors = [Conn(i, e) for i, e in enumerate(self.evses)]

    async def on_card(self, tag):
        # "SLOW...": takes 2 s (the control API must not wait); "BOOM": raises
        await asyncio.sleep_ms(2000 if tag.startswith("SLOW") else 5)
        if tag == "BOOM":
            raise ValueError("card reader on fire")
        print("card", tag)
        c = self.connectors[0]
        c.transaction_id = 42
        c.tx = Transaction(1, tag, None, 0, 0, [])
        c.evse.allow = True

    async def run(self):
        start_timer(self.evses)
        board.attach(self)
        while True:
            for c in self.connectors:
                c.update()
            await asyncio.sleep_ms(20)


asyncio.run(App().run())
