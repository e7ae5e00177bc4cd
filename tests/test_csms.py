"""Quick tests of the test CSMS (tools/csms.py) with a CPython `ocpp` charge point."""
import asyncio
import base64
import contextlib
import re
import shutil
import ssl
import subprocess
import threading
import time
from datetime import datetime

import pytest
from ocpp.exceptions import OCPPError, ProtocolError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness import CallErrorResponse, Csms

NOW = "2025-01-01T00:00:00.000Z"


class ClientCP(ChargePoint):
    @on("GetConfiguration")
    def on_get_configuration(self, key=(), **_):
        return call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": False, "value": "300"} for k in key])

    @on("ChangeConfiguration", skip_schema_validation=True)
    def on_change_configuration(self, key, value, **_):
        return call_result.ChangeConfiguration(status="Maybe" if key == "Broken" else "Accepted")


class Client:
    """A CPython charge point in its own thread and asyncio loop (the CSMS helpers block)."""

    def __init__(self, url, cp_id="CP9", **connect_kw):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cp = self.run(self._connect(f"{url}/{cp_id}", cp_id, connect_kw))

    def run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self, url, cp_id, kw):
        ws = await connect(url, subprotocols=["ocpp1.6"], **kw)
        self.cp = ClientCP(cp_id, ws)
        self.task = asyncio.ensure_future(self._serve())
        return self.cp

    def call(self, payload, **kw):
        return self.run(self.cp.call(payload, **kw))

    async def _serve(self):
        with contextlib.suppress(ConnectionClosed):
            await self.cp.start()

    def close(self):
        if self.loop.is_closed():
            return
        self.run(self.cp._connection.close())
        self.run(asyncio.wait_for(self.task, 5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def client(csms):
    clients = []

    def make(cp_id="CP9", **kw):
        clients.append(Client(csms.url, cp_id, **kw))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def boot(c):
    return c.call(call.BootNotification(charge_point_model="m", charge_point_vendor="v"))


def test_boot_heartbeat_and_record(csms, client):
    c = client()
    csms.wait_connected("CP9", 5)
    assert csms.connected("CP9") and csms.connects == {"CP9": 1}
    r = boot(c)
    assert (r.status, r.interval) == ("Accepted", 300)
    assert csms.wait_for("BootNotification", cp_id="CP9", timeout=5)["chargePointModel"] == "m"
    datetime.fromisoformat(c.call(call.Heartbeat()).current_time.replace("Z", "+00:00"))
    assert [(m.direction, m.kind, m.action) for m in csms.messages("CP9")] == [
        ("in", "call", "BootNotification"), ("out", "result", "BootNotification"),
        ("in", "call", "Heartbeat"), ("out", "result", "Heartbeat")]
    c.close()
    deadline = time.monotonic() + 5
    while csms.connected("CP9") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not csms.connected("CP9")


def test_boot_status_sequence(csms, client):
    csms.boot_status, csms.interval = ["Pending", "Rejected", "Accepted"], 2
    c = client()
    assert [(boot(c).status) for _ in range(4)] == ["Pending", "Rejected", "Accepted", "Accepted"]
    assert boot(c).interval == 2


def test_authorize_and_transactions(csms, client):
    csms.blocked.add("BAD")
    c = client()
    assert c.call(call.Authorize(id_tag="GOOD")).id_tag_info["status"] == "Accepted"
    assert c.call(call.Authorize(id_tag="BAD")).id_tag_info["status"] == "Blocked"
    t1 = c.call(call.StartTransaction(connector_id=1, id_tag="GOOD", meter_start=10, timestamp=NOW))
    t2 = c.call(call.StartTransaction(connector_id=1, id_tag="BAD", meter_start=20, timestamp=NOW))
    assert t2.transaction_id == t1.transaction_id + 1 and t2.id_tag_info["status"] == "Blocked"
    c.call(call.MeterValues(connector_id=1, transaction_id=t1.transaction_id, meter_value=[
        {"timestamp": NOW, "sampledValue": [{"value": "15"}]}]))
    stop = c.call(call.StopTransaction(meter_stop=30, timestamp=NOW, transaction_id=t1.transaction_id,
                                       reason="EVDisconnected", id_tag="GOOD"))
    assert stop.id_tag_info["status"] == "Accepted"
    tx = csms.transactions[t1.transaction_id]
    assert (tx["cp_id"], tx["meter_start"], tx["meter_stop"], tx["reason"]) == ("CP9", 10, 30, "EVDisconnected")
    assert csms.wait_for("MeterValues", lambda p: p["transactionId"] == t1.transaction_id, timeout=1)


def test_other_messages(csms, client):
    c = client()
    assert c.call(call.DataTransfer(vendor_id="uwallbox")).status == "Accepted"
    assert c.call(call.DataTransfer(vendor_id="acme", message_id="x")).status == "UnknownVendorId"
    assert c.call(call.SignCertificate(csr="-----BEGIN CERTIFICATE REQUEST-----")).status == "Accepted"
    c.call(call.SecurityEventNotification(type="StartupOfTheDevice", timestamp=NOW, tech_info=None))
    c.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available"))
    c.call(call.DiagnosticsStatusNotification(status="Idle"))
    c.call(call.FirmwareStatusNotification(status="Idle"))
    c.call(call.LogStatusNotification(status="Idle", request_id=1))
    c.call(call.SignedFirmwareStatusNotification(status="Idle", request_id=1))
    assert len(csms.messages("CP9", direction="out", kind="result")) == 9


def test_wait_for_since_and_timeout(csms, client):
    c = client()
    c.call(call.Heartbeat())
    mark = csms.mark()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="no matching Heartbeat"):
        csms.wait_for("Heartbeat", since=mark, timeout=0.3)
    assert time.monotonic() - t0 < 2
    later = threading.Timer(0.2, c.call, [call.Heartbeat()])
    later.start()
    assert csms.wait_for("Heartbeat", since=mark, timeout=5) == {}
    later.join()
    assert len(csms.messages("CP9", "Heartbeat", direction="in", since=mark)) == 1


def test_call_from_csms(csms, client):
    client()
    csms.wait_connected("CP9", 5)
    answer = csms.call("CP9", call.GetConfiguration(key=["HeartbeatInterval"]))
    assert answer == {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}
    assert csms.call("CP9", ("ChangeConfiguration", {"key": "A", "value": "1"})) == {"status": "Accepted"}
    with pytest.raises(CallErrorResponse) as e:  # the client has no Reset handler
        csms.call("CP9", ("Reset", {"type": "Soft"}))
    assert e.value.code == "NotImplemented"
    with pytest.raises(OCPPError):  # the test's own request is checked before it is sent
        csms.call("CP9", ("Reset", {"type": "Sideways"}))
    with pytest.raises(ConnectionError):
        csms.call("NOPE", ("Reset", {"type": "Soft"}))


def test_schema_violations_are_recorded(csms, client):
    c = client()
    with pytest.raises(ProtocolError):  # chargePointVendor missing
        c.call(call.BootNotification(charge_point_model="m", charge_point_vendor=None),
               skip_schema_validation=True, suppress=False)
    assert len(csms.errors) == 1 and "BootNotification" in csms.errors[0]
    with pytest.raises(OCPPError):  # an invalid answer from the charge point
        csms.call("CP9", ("ChangeConfiguration", {"key": "Broken", "value": "1"}))
    assert len(csms.errors) == 2 and "ChangeConfiguration response" in csms.errors[1]
    csms.errors.clear()


def test_send_raw(csms, client):
    client()
    csms.wait_connected("CP9", 5)
    reply = csms.send_raw("CP9", '[2,"raw-1","Reset",{"type":"Soft"}]', timeout=5)
    assert reply[:3] == [4, "raw-1", "NotImplemented"]
    assert csms.send_raw("CP9", "not json", timeout=0.3) is None  # the ocpp package ignores it
    assert csms.raw_replies("CP9") == [reply]
    assert csms.messages("CP9", "Reset", direction="in")[0].raw


def test_custom_handler(csms, client):
    csms.handlers["Authorize"] = lambda cp_id, p: {"idTagInfo": {"status": "Expired", "parentIdTag": "P"}}
    assert client().call(call.Authorize(id_tag="X")).id_tag_info["status"] == "Expired"
    assert csms.messages("CP9", "Authorize", kind="result")[0].payload == {
        "idTagInfo": {"status": "Expired", "parentIdTag": "P"}}


def test_log_lines(client):
    lines = []
    server = Csms(log=lines.append).start()
    try:
        c = Client(server.url, "CP7")
        c.call(call.Heartbeat())
        c.close()
    finally:
        server.stop()
    text = "\n".join(lines)
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} CP7 -> Heartbeat \{\}$", text, re.M), text
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} CP7 <- Heartbeat\.conf \{\"currentTime\":\"[^\"]+Z\"\}$",
                     text, re.M), text


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth():
    server = Csms(auth={"CP1": "s3cret"}, log=None).start()
    try:
        for headers in ({}, basic("CP1", "wrong"), basic("CP2", "s3cret")):
            with pytest.raises(InvalidStatus) as e:
                Client(server.url, "CP1", additional_headers=headers)
            assert e.value.response.status_code == 401
        c = Client(server.url, "CP1", additional_headers=basic("CP1", "s3cret"))
        assert boot(c).status == "Accepted"
        c.close()
    finally:
        server.stop()


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_tls(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server = Csms(ssl_context=server_ctx, log=None).start()
    try:
        assert server.url.startswith("wss://")
        c = Client(server.url, "CP1", ssl=ssl.create_default_context(cafile=str(cert)))
        assert boot(c).status == "Accepted"
        c.close()
    finally:
        server.stop()
