"""ISO 15118 Plug & Charge over OCPP 1.6 (uwallbox/profiles/pnc.py) end to end against the test CSMS,
every Plug & Charge payload checked against its OCPP 2.0.1 schema (the unit cases under
MicroPython: tests/mpy/pnc_cases.py)."""
import json
from pathlib import Path

import jsonschema
import ocpp
import pytest

from harness import configure, connector, registered
from pki import cert_id, sign
from simapi import SimApiError  # on the path through harness

pytestmark = pytest.mark.timeout(120)

VENDOR = "org.openchargealliance.iso15118pnc"
SCHEMAS = Path(ocpp.__file__).parent / "v201" / "schemas"
KEYS = ("ISO15118PnCEnabled", "CentralContractValidationAllowed", "CertSigningWaitMinimum",
        "CertSigningRepeatTimes", "ContractValidationOffline")
EMAID = "DEEMP0000000001"
OCSP = {"hashAlgorithm": "SHA256", "issuerNameHash": "ab" * 32, "issuerKeyHash": "cd" * 32,
        "serialNumber": "1f", "responderURL": "http://ocsp.example/"}


def checked(schema, payload):
    """PAYLOAD, valid against the OCPP 2.0.1 schema SCHEMA (e.g. "AuthorizeRequest")."""
    jsonschema.validate(payload, json.loads((SCHEMAS / (schema + ".json")).read_text()))
    return payload


def transfer(csms, cp, message, data):
    """The DataTransfer answer of the charge point to PnC MESSAGE with DATA (a 2.0.1 request, or text)."""
    return csms.call(cp.id, ("DataTransfer", {"vendorId": VENDOR, "messageId": message,
                                              "data": data if isinstance(data, str) else json.dumps(data)}))


def pnc(csms, cp, message, **request):
    """PnC MESSAGE to the charge point: its 2.0.1 response, checked against the schema."""
    answer = transfer(csms, cp, message, checked(message + "Request", request))
    assert answer["status"] == "Accepted", answer
    return checked(message + "Response", json.loads(answer["data"]))


def hash_data(pki, name, issuer=None):
    """2.0.1 CertificateHashData of certificate NAME issued by ISSUER (None: NAME is a root), from
    openssl (without the leading zero nibble its serial may have)."""
    name_hash, key_hash, serial = cert_id(pki, name, issuer or name)
    return {"hashAlgorithm": "SHA256", "issuerNameHash": name_hash, "issuerKeyHash": key_hash,
            "serialNumber": serial.lstrip("0")}


class PncCsms:
    """Answers the charge point's PnC DataTransfers like a Plug & Charge CSMS: each request must
    pass its 2.0.1 schema (else the handler fails and csms.errors fails the test) and gets
    `answers[messageId]`, a 2.0.1 response; `requests` collects (messageId, request)."""

    def __init__(self, csms, **answers):
        self.answers, self.requests = answers, []
        csms.handlers["DataTransfer"] = self

    def __call__(self, cp_id, p):
        assert p["vendorId"] == VENDOR, p
        message = p["messageId"]
        self.requests.append((message, checked(message + "Request", json.loads(p["data"]))))
        return {"status": "Accepted", "data": json.dumps(checked(message + "Response", self.answers[message]))}


@pytest.fixture
def pnc_cp(csms, charge_point, pki, tmp_path):
    """A registered charge point with Plug & Charge enabled and `v2g.csr` provisioned."""
    state = tmp_path / "cp-state"
    state.mkdir()
    (state / "v2g.csr").write_bytes((pki / "v2g.csr.der").read_bytes())  # by the deploy tool
    cp = charge_point(state_dir=state)
    registered(cp, csms)
    configure(csms, cp, "ISO15118PnCEnabled", "true")
    return cp


def test_disabled_plug_and_charge_is_an_unknown_vendor(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    got = csms.call(cp.id, ("GetConfiguration", {"key": list(KEYS)}))["configurationKey"]
    assert {k["key"]: (k["value"], k["readonly"]) for k in got} == {
        "ISO15118PnCEnabled": ("false", False), "CentralContractValidationAllowed": ("false", False),
        "CertSigningWaitMinimum": ("60", False), "CertSigningRepeatTimes": ("3", False),
        "ContractValidationOffline": ("false", False)}
    assert transfer(csms, cp, "TriggerMessage", {"requestedMessage": "SignV2GCertificate"}) == {
        "status": "UnknownVendorId"}
    with pytest.raises(SimApiError, match="HTTP 400"):
        cp.api.request("POST", "/pnc", {"connector": 1, "emaid": EMAID})
    configure(csms, cp, "ISO15118PnCEnabled", "true")
    assert pnc(csms, cp, "TriggerMessage", requestedMessage="Heartbeat") == {"status": "NotImplemented"}


def test_root_certificates(csms, pnc_cp, pki):
    cp = pnc_cp
    for name, use in (("v2g_root", "V2GRootCertificate"), ("mo_root", "MORootCertificate")):
        assert pnc(csms, cp, "InstallCertificate", certificateType=use,
                   certificate=(pki / (name + ".pem")).read_text()) == {"status": "Accepted"}
    assert pnc(csms, cp, "InstallCertificate", certificateType="MORootCertificate",
               certificate=(pki / "server.pem").read_text()) == {"status": "Rejected"}  # not a root
    installed = pnc(csms, cp, "GetInstalledCertificateIds")["certificateHashDataChain"]
    assert sorted(installed, key=lambda e: e["certificateType"]) == [
        {"certificateType": "MORootCertificate", "certificateHashData": hash_data(pki, "mo_root")},
        {"certificateType": "V2GRootCertificate", "certificateHashData": hash_data(pki, "v2g_root")}]
    mo = {"certificateHashData": hash_data(pki, "mo_root")}
    assert pnc(csms, cp, "DeleteCertificate", **mo) == {"status": "Accepted"}
    assert pnc(csms, cp, "DeleteCertificate", **mo) == {"status": "NotFound"}
    assert pnc(csms, cp, "GetInstalledCertificateIds", certificateType=["MORootCertificate"]) == {
        "status": "NotFound"}
    for data in ("{not json", json.dumps({"requestedMessage": "Coffee"})):  # not a 2.0.1 request
        assert transfer(csms, cp, "TriggerMessage", data) == {"status": "Rejected"}
    assert transfer(csms, cp, "Coffee", {}) == {"status": "UnknownMessageId"}


@pytest.mark.parametrize("keys", ["host", "device"])
def test_v2g_certificate_signing(keys, csms, pnc_cp, pki, tmp_path):
    cp = pnc_cp
    if keys == "device":  # no provisioned CSR: the V2G key is made on the device
        (cp.state_dir / "v2g.csr").unlink()
    csms_pnc = PncCsms(csms, SignCertificate={"status": "Accepted"})
    configure(csms, cp, "CertSigningWaitMinimum", "1")
    configure(csms, cp, "CertSigningRepeatTimes", "1")
    assert pnc(csms, cp, "TriggerMessage", requestedMessage="SignV2GCertificate") == {"status": "Accepted"}
    mark = csms.mark()
    csms.wait_for("DataTransfer", lambda p: p.get("messageId") == "SignCertificate", cp_id=cp.id, since=mark)
    csms.wait_for("DataTransfer", lambda p: p.get("messageId") == "SignCertificate", cp_id=cp.id,
                  since=csms.mark(), timeout=5)  # no certificate within 1 s: asked again
    requests = [r for m, r in csms_pnc.requests if m == "SignCertificate"]
    assert len(requests) == 2 and requests[0]["certificateType"] == "V2GCertificate"
    if keys == "host":
        assert requests[0]["csr"].strip() == (pki / "v2g.csr").read_text().strip()  # the provisioned one
    else:
        from cryptography import x509
        assert x509.load_pem_x509_csr(requests[0]["csr"].encode()).is_signature_valid
        assert requests[1]["csr"] == requests[0]["csr"]  # repeated: the same key
        assert (cp.state_dir / "v2g.key.new").exists() and not (cp.state_dir / "v2g.key").exists()
    (tmp_path / "v2g.csr").write_text(requests[0]["csr"])
    sign(pki, tmp_path / "v2g.csr", "v2g_sub", tmp_path / "leaf.pem")
    chain = (tmp_path / "leaf.pem").read_text() + (pki / "v2g_sub.pem").read_text()
    assert pnc(csms, cp, "CertificateSigned", certificateChain=(pki / "cp.pem").read_text(),
               certificateType="V2GCertificate") == {"status": "Rejected"}  # another key's
    assert pnc(csms, cp, "CertificateSigned", certificateChain=chain, certificateType="V2GCertificate") == {
        "status": "Rejected"}  # no V2GRootCertificate to verify it with
    assert pnc(csms, cp, "InstallCertificate", certificateType="V2GRootCertificate",
               certificate=(pki / "v2g_root.pem").read_text()) == {"status": "Accepted"}
    assert pnc(csms, cp, "CertificateSigned", certificateChain=chain, certificateType="V2GCertificate") == {
        "status": "Accepted"}
    if keys == "device":
        assert (cp.state_dir / "v2g.key").exists() and not (cp.state_dir / "v2g.key.new").exists()
    assert pnc(csms, cp, "GetInstalledCertificateIds", certificateType=["V2GCertificateChain"]) == {
        "status": "Accepted", "certificateHashDataChain": [{
            "certificateType": "V2GCertificateChain",
            "certificateHashData": hash_data(pki, str(tmp_path / "leaf"), "v2g_sub"),
            "childCertificateHashData": [hash_data(pki, "v2g_sub", "v2g_root")]}]}


def test_plug_and_charge_session(csms, pnc_cp):
    cp = pnc_cp
    csms_pnc = PncCsms(csms, Authorize={"idTokenInfo": {"status": "Blocked"}})

    def plug_and_charge(emaid, status, started):
        answer = cp.api.request("POST", "/pnc", {"connector": 1, "emaid": emaid, "certificate_hash": OCSP})
        assert answer == {"ok": True, "idTagInfo": {"status": status}, "started": started}
    for bad in ({"emaid": ""}, {"emaid": EMAID, "colour": "red"}, {"emaid": EMAID, "connector": 3},
                {"emaid": EMAID, "certificate_hash": "ab"}):
        with pytest.raises(SimApiError, match="HTTP 400"):
            cp.api.request("POST", "/pnc", bad)
    cp.api.ev(plug=True, charge=True, max_a=16)
    plug_and_charge("DEEMPBLOCKED0001", "Blocked", False)
    csms_pnc.answers["Authorize"] = {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    mark = csms.mark()
    plug_and_charge(EMAID, "Accepted", True)
    assert csms_pnc.requests[-1] == ("Authorize", {"idToken": {"idToken": EMAID, "type": "eMAID"},
                                                   "iso15118CertificateHashData": [OCSP]})
    csms.wait_for("StartTransaction", lambda p: p["idTag"] == EMAID and p["connectorId"] == 1,
                  cp_id=cp.id, since=mark)
    cp.api.wait(lambda s: connector(s)["status"] == "Charging" and connector(s)["transaction_id"])


def test_ev_certificate_and_certificate_status(csms, pnc_cp):
    cp = pnc_cp
    csms_pnc = PncCsms(csms, Get15118EVCertificate={"status": "Accepted", "exiResponse": "AAEC"},
                       GetCertificateStatus={"status": "Accepted", "ocspResult": "MAMCAQA="})
    assert cp.api.request("POST", "/pnc/ev-certificate", {
        "schema_version": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exi_request": "gAEC"}) == {
        "ok": True, "response": {"status": "Accepted", "exiResponse": "AAEC"}}
    assert cp.api.request("POST", "/pnc/certificate-status", {"ocsp_request_data": OCSP}) == {
        "ok": True, "response": {"status": "Accepted", "ocspResult": "MAMCAQA="}}
    assert csms_pnc.requests == [
        ("Get15118EVCertificate", {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
                                   "action": "Install", "exiRequest": "gAEC"}),
        ("GetCertificateStatus", {"ocspRequestData": OCSP})]
