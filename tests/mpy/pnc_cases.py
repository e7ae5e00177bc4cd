# MicroPython unit tests of ISO 15118 Plug & Charge (pnc.py and its hook in core.py) on the real
# App built from the sim board, with a fake Rpc that answers like a Plug & Charge CSMS, and the
# test PKI of tests/pki.py in $PKI_DIR.
import asyncio
import json
import os
import sys
import time

import board
import pem
import x509
from uwallbox import files
from uwallbox.app import App
from uwallbox.errors import CallError
from uwallbox.flash import certs, store
from uwallbox.ocpp.rpc import Offline
from uwallbox.profiles import core, security

PYTEST = {"fixtures": {"PKI_DIR": "pki"}}  # how tests/conftest.py runs these cases

_PKI = os.getenv("PKI_DIR") + "/"
_VENDOR = "org.openchargealliance.iso15118pnc"
_EMAID = "DEEMP0000000001"
_HASH = {"hashAlgorithm": "SHA256", "issuerNameHash": "ab" * 32, "issuerKeyHash": "cd" * 32,
         "serialNumber": "1f", "responderURL": "http://ocsp.example/"}


def _read(name, mode="r"):
    with open(_PKI + name, mode) as f:
        return f.read()


class PncCsms:
    """A fake Rpc for a charge point talking to a Plug & Charge CSMS: PnC DataTransfers get
    `answers[messageId]` (a 2.0.1 response; an exception is raised instead) with DataTransfer
    status `status`; `sent` holds (messageId, 2.0.1 request)."""

    def __init__(self):
        self.sent, self.later, self.answers = [], [], {}
        self.status = "Accepted"

    def after(self, name, coro):
        self.later.append((name, coro))

    async def call(self, action, payload):
        assert action == "DataTransfer" and payload["vendorId"] == _VENDOR, payload
        message = payload["messageId"]
        self.sent.append((message, json.loads(payload["data"])))
        answer = self.answers.get(message, {"status": "Accepted"})
        if isinstance(answer, Exception):
            raise answer
        return {"status": self.status, "data": json.dumps(answer)}

    def requests(self, message):
        return [p for m, p in self.sent if m == message]


def _app(enabled=True):
    app = App(board)
    app.rpc = PncCsms()
    app.session.registration = "Accepted"
    if enabled:
        app.config.set("ISO15118PnCEnabled", True)
    return app


def _transfer(app, message, payload):
    """core.data_transfer of PnC MESSAGE carrying PAYLOAD (a 2.0.1 request, or the data text)."""
    data = payload if type(payload) is str else json.dumps(payload)
    return core.data_transfer(app, {"vendorId": _VENDOR, "messageId": message, "data": data})


def _answer(app, message, payload):
    """The 2.0.1 response to MESSAGE, which must have passed its schema."""
    r = _transfer(app, message, payload)
    assert r["status"] == "Accepted", r
    return json.loads(r["data"])


def _cert(name):
    return x509.Certificate(pem.to_der(_read(name + ".pem"))[0])


def _hash(name, issuer=None):
    """2.0.1 CertificateHashData of PKI certificate NAME issued by ISSUER (None: a root)."""
    ids = certs.ids(_cert(name), issuer and _cert(issuer))
    return {"hashAlgorithm": "SHA256", "issuerNameHash": ids[0], "issuerKeyHash": ids[1], "serialNumber": ids[2]}


def test_disabled_is_an_unknown_vendor_and_never_loads_pnc():
    app = _app(enabled=False)
    assert _transfer(app, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"}) == {
        "status": "UnknownVendorId"}
    assert "uwallbox.profiles.pnc" not in sys.modules
    assert app.config.change("ISO15118PnCEnabled", "true") == "Accepted"
    assert _answer(app, "TriggerMessage", {"requestedMessage": "Heartbeat"}) == {"status": "NotImplemented"}
    assert "uwallbox.profiles.pnc" in sys.modules
    app.config.set("ISO15118PnCEnabled", False)  # off again: unknown again
    assert _transfer(app, "TriggerMessage", {"requestedMessage": "Heartbeat"}) == {"status": "UnknownVendorId"}


def test_malformed_requests_are_rejected():
    app = _app()
    for message, data in (
            ("TriggerMessage", "{not json"), ("TriggerMessage", None), ("TriggerMessage", "[]"),
            ("TriggerMessage", {"requestedMessage": "Coffee"}),
            ("TriggerMessage", {"requestedMessage": "SignV2GCertificate", "extra": 1}),
            ("TriggerMessage", {"requestedMessage": "SignV2GCertificate", "evse": {"connectorId": 1}}),
            ("InstallCertificate", {"certificateType": "V2GRootCertificate"}),
            ("CertificateSigned", {"certificateChain": 5}),
            ("GetInstalledCertificateIds", {"certificateType": []}),
            ("DeleteCertificate", {"certificateHashData": {"hashAlgorithm": "MD5", "issuerNameHash": "a",
                                                           "issuerKeyHash": "b", "serialNumber": "1"}})):
        p = {"vendorId": _VENDOR, "messageId": message}
        if data is not None:
            p["data"] = data if type(data) is str else json.dumps(data)
        assert core.data_transfer(app, p) == {"status": "Rejected"}, (message, data)
    assert _transfer(app, "Coffee", {}) == {"status": "UnknownMessageId"}
    assert _transfer(app, "Authorize", {}) == {"status": "UnknownMessageId"}  # charge point -> CSMS only


def test_install_list_delete_roots():
    app = _app()
    for name, use in (("v2g_root", "V2GRootCertificate"), ("mo_root", "MORootCertificate"),
                      ("ca", "CSMSRootCertificate")):
        assert _answer(app, "InstallCertificate", {"certificateType": use, "certificate": _read(name + ".pem")}) == {
            "status": "Accepted"}, name
    assert _answer(app, "InstallCertificate", {"certificateType": "MORootCertificate",
                                               "certificate": _read("server.pem")}) == {"status": "Rejected"}
    every = _answer(app, "GetInstalledCertificateIds", {})
    assert every["status"] == "Accepted"
    assert sorted((e["certificateType"], e["certificateHashData"]["serialNumber"])
                  for e in every["certificateHashDataChain"]) == sorted(
        [("V2GRootCertificate", _hash("v2g_root")["serialNumber"]),
         ("MORootCertificate", _hash("mo_root")["serialNumber"]),
         ("CSMSRootCertificate", _hash("ca")["serialNumber"])])
    mo = _answer(app, "GetInstalledCertificateIds", {"certificateType": ["MORootCertificate"]})
    assert mo == {"status": "Accepted", "certificateHashDataChain": [
        {"certificateType": "MORootCertificate", "certificateHashData": _hash("mo_root")}]}
    # one store: OCPP 1.6's GetInstalledCertificateIds sees the CSMS root installed through PnC
    assert len(security.get_installed_certificate_ids(
        app, {"certificateType": "CentralSystemRootCertificate"})["certificateHashData"]) == 1
    assert _answer(app, "GetInstalledCertificateIds", {"certificateType": ["V2GCertificateChain"]}) == {
        "status": "NotFound"}
    delete = {"certificateHashData": _hash("mo_root")}
    assert _answer(app, "DeleteCertificate", delete) == {"status": "Accepted"}
    assert _answer(app, "DeleteCertificate", delete) == {"status": "NotFound"}
    assert _answer(app, "GetInstalledCertificateIds", {"certificateType": ["MORootCertificate"]}) == {
        "status": "NotFound"}


def test_certificate_signed_keeps_the_v2g_chain():
    app = _app()
    chain = _read("v2g_leaf.pem") + _read("v2g_sub.pem")

    def signed(text, **more):
        return _answer(app, "CertificateSigned", dict(certificateChain=text, **more))["status"]
    assert signed(chain) == "Rejected"  # no v2g.csr, no key made here: no certificate can be ours
    store.write(files.V2G_CSR, _read("v2g.csr.der", "rb"))
    assert signed(chain) == "Rejected"  # no V2GRootCertificate to verify it with
    root = {"certificateType": "V2GRootCertificate", "certificate": _read("v2g_root.pem")}
    for bad in (_read("cp.pem") + _read("ca.pem"),  # another key's certificate
                _read("v2g_sub.pem") + _read("v2g_root.pem"),  # not the leaf first
                _read("v2g_sub.pem"), "no certificate"):
        assert signed(bad) == "Rejected", bad[:40]
    assert signed(chain, certificateType="ChargingStationCertificate") == "Rejected"
    assert not store.exists(files.V2G_CHAIN)
    assert _answer(app, "InstallCertificate", root) == {"status": "Accepted"}
    assert signed(_read("v2g_leaf.pem")) == "Rejected"  # v2g_sub is missing
    assert signed(chain + _read("mo_root.pem")) == "Rejected"  # ends with a root not installed
    assert signed(chain, certificateType="V2GCertificate") == "Accepted"
    with open(files.V2G_CHAIN) as f:
        assert f.read() == chain
    leaf = _hash("v2g_leaf", "v2g_sub")
    only = {"certificateType": "V2GCertificateChain", "certificateHashData": leaf}
    wanted = {"certificateType": ["V2GCertificateChain"]}
    only["childCertificateHashData"] = [_hash("v2g_sub", "v2g_root")]
    assert _answer(app, "GetInstalledCertificateIds", wanted) == {
        "status": "Accepted", "certificateHashDataChain": [only]}


async def _run_signing(app):
    """TriggerMessage SignV2GCertificate, then run the signing it started (app.spawn, as
    rpc.after does) to its end."""
    assert _answer(app, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"}) == {"status": "Accepted"}
    await app.spawn(*app.rpc.later.pop())


async def test_sign_certificate_is_repeated_until_signed():
    app = _app()
    store.write(files.V2G_CSR, _read("v2g.csr.der", "rb"))  # a host-made key: its CSR is sent
    assert _answer(app, "InstallCertificate", {"certificateType": "V2GRootCertificate",
                                               "certificate": _read("v2g_root.pem")}) == {"status": "Accepted"}
    app.session.registration = "Pending"
    assert _answer(app, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"}) == {"status": "Rejected"}
    app.session.registration = "Accepted"
    app.config.set("CertSigningWaitMinimum", 1)
    app.config.set("CertSigningRepeatTimes", 1)
    rpc = app.rpc
    t0 = time.ticks_ms()
    await _run_signing(app)  # never signed: sent, 1 s, again, 2 s, given up
    took = time.ticks_diff(time.ticks_ms(), t0)
    assert 2900 <= took < 3600, took
    reqs = rpc.requests("SignCertificate")
    assert len(reqs) == 2 and reqs[0] == reqs[1]
    assert reqs[0]["certificateType"] == "V2GCertificate"
    assert reqs[0]["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----\n")
    assert reqs[0]["csr"].strip() == _read("v2g.csr").strip()

    rpc.sent.clear()  # signed while it waits: no second request
    assert _answer(app, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"}) == {"status": "Accepted"}
    task = app.spawn(*rpc.later.pop())
    await asyncio.sleep_ms(100)
    assert _answer(app, "CertificateSigned", {"certificateChain": _read("v2g_leaf.pem") + _read("v2g_sub.pem")}) == {
        "status": "Accepted"}
    await asyncio.wait_for_ms(task, 200)
    assert len(rpc.requests("SignCertificate")) == 1

    rpc.sent.clear()  # refused: not asked again
    rpc.answers["SignCertificate"] = {"status": "Rejected"}
    await asyncio.wait_for_ms(_run_signing(app), 200)
    assert len(rpc.requests("SignCertificate")) == 1

    rpc.sent.clear()  # not sent (offline): it counts as an attempt
    rpc.answers["SignCertificate"] = Offline()
    app.config.set("CertSigningRepeatTimes", 0)
    await asyncio.wait_for_ms(_run_signing(app), 1500)
    assert len(rpc.sent) == 1


async def test_a_new_trigger_replaces_the_signing_under_way():
    app = _app()
    store.write(files.V2G_CSR, _read("v2g.csr.der", "rb"))
    app.config.set("CertSigningWaitMinimum", 1)
    app.config.set("CertSigningRepeatTimes", 0)
    assert _answer(app, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"}) == {"status": "Accepted"}
    first = app.spawn(*app.rpc.later.pop())
    await asyncio.sleep_ms(100)
    await _run_signing(app)
    await asyncio.sleep_ms(10)
    assert first.done()  # cancelled by the second
    assert len(app.rpc.requests("SignCertificate")) == 2


async def test_authorize_maps_the_answer_to_an_ocpp16_decision():
    app = _app()
    rpc = app.rpc
    later = "2099-01-01T00:00:00Z"
    rpc.answers["Authorize"] = {"idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": later,
                                                "groupIdToken": {"idToken": "FLEET1", "type": "Central"}}}
    from uwallbox.profiles import pnc
    info = await pnc.authorize(app, _EMAID, [_HASH], "-----BEGIN CERTIFICATE-----")
    assert info == {"status": "Accepted", "expiryDate": later, "parentIdTag": "FLEET1"}
    assert rpc.sent[-1] == ("Authorize", {"idToken": {"idToken": _EMAID, "type": "eMAID"},
                                          "iso15118CertificateHashData": [_HASH]})
    assert app.auth.cache[_EMAID] == info  # remembered for offline use
    app.config.set("CentralContractValidationAllowed", True)
    await pnc.authorize(app, _EMAID, None, "PEM")
    assert rpc.sent[-1][1] == {"idToken": {"idToken": _EMAID, "type": "eMAID"}, "certificate": "PEM"}
    for answer, status in (({"idTokenInfo": {"status": "Blocked"}}, "Blocked"),
                           ({"idTokenInfo": {"status": "NoCredit"}}, "Invalid"),
                           ({"idTokenInfo": {"status": "NotAtThisLocation"}}, "Invalid"),
                           ({"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "CertificateRevoked"},
                            "Invalid"),
                           ({"idTokenInfo": {"status": "Accepted", "groupIdToken": {
                               "idToken": "G" * 21, "type": "Central"}}}, "Accepted"),  # no 1.6 parent
                           ({"idTokenInfo": "nonsense"}, "Invalid"),
                           ({"idTokenInfo": {"status": "Accepted", "groupIdToken": 7}}, "Invalid"),
                           (CallError("InternalError"), "Invalid")):
        rpc.answers["Authorize"] = answer
        assert await pnc.authorize(app, "OTHER", [_HASH]) == {"status": status}, answer
    rpc.answers["Authorize"] = {"idTokenInfo": {"status": "Accepted"}}
    rpc.status = "UnknownVendorId"  # a CSMS without Plug & Charge
    assert await pnc.authorize(app, "OTHER") == {"status": "Invalid"}

    rpc.answers["Authorize"] = Offline()  # offline: the cache decides only with ContractValidationOffline
    assert await pnc.authorize(app, _EMAID) == {"status": "Invalid"}
    app.config.set("ContractValidationOffline", True)
    assert (await pnc.authorize(app, _EMAID))["status"] == "Accepted"
    assert await pnc.authorize(app, "UNKNOWN") == {"status": "Invalid"}


async def test_ev_certificate_and_certificate_status():
    app = _app()
    from uwallbox.profiles import pnc
    rpc = app.rpc
    rpc.answers["Get15118EVCertificate"] = {"status": "Accepted", "exiResponse": "AAEC"}
    assert await pnc.ev_certificate(app, "urn:iso:15118:2:2013:MsgDef", "Install", "gAEC") == {
        "status": "Accepted", "exiResponse": "AAEC"}
    assert rpc.sent[-1] == ("Get15118EVCertificate", {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
                                                      "action": "Install", "exiRequest": "gAEC"})
    rpc.answers["GetCertificateStatus"] = {"status": "Accepted", "ocspResult": "MAMCAQA="}
    assert await pnc.certificate_status(app, _HASH) == {"status": "Accepted", "ocspResult": "MAMCAQA="}
    assert rpc.sent[-1] == ("GetCertificateStatus", {"ocspRequestData": _HASH})
    rpc.status = "Rejected"
    try:
        await pnc.certificate_status(app, _HASH)
        raise AssertionError("a Rejected DataTransfer is no answer")
    except ValueError:
        pass
