"""The reference charge point of the RPC row: what a maker would otherwise run, a charge point on
the Python `ocpp` package (CPython, e.g. on a Raspberry Pi), reduced to the calls benchmarked.

    python tools/bench/refcp.py ws://127.0.0.1:9000 REF001

Connects to URL/ID (subprotocol ocpp1.6), sends BootNotification, then answers GetConfiguration
(of HeartbeatInterval) and DataTransfer (no vendor known) until the connection closes.
"""
import asyncio
import sys

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result


class RefChargePoint(ChargePoint):
    @on("GetConfiguration")
    def on_get_configuration(self, key=None, **_):
        known = [{"key": k, "readonly": False, "value": "300"} for k in key or ["HeartbeatInterval"]
                 if k == "HeartbeatInterval"]
        unknown = [k for k in key or () if k != "HeartbeatInterval"]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id, **_):
        return call_result.DataTransfer(status="UnknownVendorId")


async def main(url, cp_id):
    async with websockets.connect(f"{url}/{cp_id}", subprotocols=["ocpp1.6"]) as ws:
        cp = RefChargePoint(cp_id, ws)
        served = asyncio.create_task(cp.start())
        await cp.call(call.BootNotification(charge_point_vendor="uwallbox", charge_point_model="reference"))
        await served


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:3]))
    except websockets.ConnectionClosed:
        pass
