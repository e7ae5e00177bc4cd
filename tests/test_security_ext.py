"""The OCPP 1.6 Security Whitepaper extension end to end against the test CSMS (plain and TLS), a
local HTTP server taking log uploads and the test PKI (the unit cases under MicroPython:
tests/mpy/security_cases.py)."""
import base64
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Csms, registered
from pki import cert_id, server_context, sign

pytestmark = pytest.mark.timeout(120)


# -- end to end: the firmware in the simulator against the test CSMS ------------------------------

CSMS_ROOT, MFR_ROOT = "CentralSystemRootCertificate", "ManufacturerRootCertificate"
KEY = "0123456789abcdef0123"


class Uploads(ThreadingHTTPServer):
    """An HTTP server in a thread taking POSTed files: `posts` gets (path, body) of each; every
    request is answered with `status`."""
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Upload)
        self.posts, self.status = [], 200
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _Upload(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append((self.path, body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def uploads():
    server = Uploads()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_csms(pki):
    """TLS CSMS (server certificate from pki's ca), Basic auth for CP001."""
    server = Csms(ssl_context=server_context(pki), auth={"CP001": KEY}).start()
    yield server
    server.stop()
    assert server.errors == []


def event(csms, cp, kind, since=0, timeout=30):
    """The SecurityEventNotification of type KIND (after mark SINCE)."""
    return csms.wait_for("SecurityEventNotification", lambda p: p["type"] == kind, cp_id=cp.id,
                         since=since, timeout=timeout)


def profile2(pki):
    """Provisioning of security profile 2 with pki's ca."""
    return {"security_profile": 2, "authorization_key": KEY, "ca": (pki / "ca.pem").read_text()}


def hash_ids(answer):
    """The certificateHashData of a GetInstalledCertificateIds answer, as a set of tuples."""
    return {(h["issuerNameHash"], h["issuerKeyHash"], h["serialNumber"]) for h in answer["certificateHashData"]}


def test_certificate_store_round_trip(csms, charge_point, pki):
    cp = charge_point()
    registered(cp, csms)

    def call(action, **payload):
        return csms.call(cp.id, (action, payload))
    assert call("GetInstalledCertificateIds", certificateType=CSMS_ROOT) == {"status": "NotFound"}
    for name, kind in (("ca", CSMS_ROOT), ("other_ca", CSMS_ROOT), ("mfr_ca", MFR_ROOT)):
        assert call("InstallCertificate", certificateType=kind,
                    certificate=(pki / (name + ".pem")).read_text()) == {"status": "Accepted"}, name
    assert call("InstallCertificate", certificateType=CSMS_ROOT,
                certificate=(pki / "server.pem").read_text()) == {"status": "Rejected"}  # not a root

    def openssl_ids(*names):  # openssl's serial may keep a leading zero nibble
        return {(n, k, s.lstrip("0")) for n, k, s in (cert_id(pki, name, name) for name in names)}
    assert hash_ids(call("GetInstalledCertificateIds", certificateType=CSMS_ROOT)) == openssl_ids("ca", "other_ca")
    assert hash_ids(call("GetInstalledCertificateIds", certificateType=MFR_ROOT)) == openssl_ids("mfr_ca")
    cp.restart()  # the store is in flash
    registered(cp, csms)
    assert hash_ids(call("GetInstalledCertificateIds", certificateType=CSMS_ROOT)) == openssl_ids("ca", "other_ca")
    name_hash, key_hash, serial = cert_id(pki, "other_ca", "other_ca")
    other = {"hashAlgorithm": "SHA256", "issuerNameHash": name_hash, "issuerKeyHash": key_hash,
             "serialNumber": serial}
    assert call("DeleteCertificate", certificateHashData=other) == {"status": "Accepted"}
    assert call("DeleteCertificate", certificateHashData=other) == {"status": "NotFound"}
    assert hash_ids(call("GetInstalledCertificateIds", certificateType=CSMS_ROOT)) == openssl_ids("ca")


def test_raised_security_profile_is_reported(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    event(csms, cp, "StartupOfTheDevice")
    keys = ("CertificateStoreMaxLength", "CertificateSignedMaxChainSize", "AdditionalRootCertificateCheck")
    got = csms.call(cp.id, ("GetConfiguration", {"key": list(keys)}))["configurationKey"]
    assert {k["key"]: (k["value"], k["readonly"]) for k in got} == {
        "CertificateStoreMaxLength": ("10", True), "CertificateSignedMaxChainSize": ("10000", True),
        "AdditionalRootCertificateCheck": ("false", True)}

    def change(value):
        return csms.call(cp.id, ("ChangeConfiguration", {"key": "SecurityProfile", "value": value}))["status"]
    assert change("2") == "Rejected"  # no CentralSystemRootCertificate to check a server with
    mark = csms.mark()
    assert change("1") == "RebootRequired"
    assert event(csms, cp, "ReconfigurationOfSecurityParameters", mark)["techInfo"] == "SecurityProfile"


def test_rejected_server_certificate_is_reported_after_reconnection(pki, charge_point):
    ctx = server_context(pki, "wrong_host")  # a certificate for other.example
    server = Csms(ssl_context=ctx, auth={"CP001": KEY}).start()
    try:
        cp = charge_point(url=server.url, settings=profile2(pki))
        cp.api.wait(lambda s: "connection failed (ValueError" in cp.log(), timeout=20)
        assert not server.messages(cp.id)
        ctx.load_cert_chain(pki / "server.pem", pki / "server.key")  # the right one from now on
        registered(cp, server)
        assert "techInfo" in event(server, cp, "InvalidCentralSystemCertificate")
        assert sum(m.payload["type"] == "InvalidCentralSystemCertificate"
                   for m in server.messages(cp.id, "SecurityEventNotification", kind="call")) == 1
    finally:
        server.stop()
    assert server.errors == []


def test_extended_trigger_message(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    csms.wait_for("StatusNotification", lambda p: p["connectorId"] == 1, cp_id=cp.id)

    def triggered(message, action, cid=None, predicate=None):
        p = {"requestedMessage": message}
        if cid is not None:
            p["connectorId"] = cid
        mark = csms.mark()
        assert csms.call(cp.id, ("ExtendedTriggerMessage", p)) == {"status": "Accepted"}, message
        return csms.wait_for(action, predicate, cp_id=cp.id, since=mark, timeout=10)
    assert triggered("BootNotification", "BootNotification")["chargePointVendor"] == "uwallbox"
    assert triggered("Heartbeat", "Heartbeat") == {}
    assert triggered("FirmwareStatusNotification", "SignedFirmwareStatusNotification") == {"status": "Idle"}
    assert triggered("LogStatusNotification", "LogStatusNotification") == {"status": "Idle"}
    triggered("StatusNotification", "StatusNotification", 1, lambda p: p["connectorId"] == 1)
    mv = triggered("MeterValues", "MeterValues", 1)
    assert mv["connectorId"] == 1 and mv["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    p = {"requestedMessage": "MeterValues", "connectorId": 5}  # no connector 5
    assert csms.call(cp.id, ("ExtendedTriggerMessage", p)) == {"status": "Rejected"}
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    csms.handlers["Heartbeat"] = lambda cp_id, p: {"currentTime": later.isoformat().replace("+00:00", "Z")}
    mark = csms.mark()
    triggered("Heartbeat", "Heartbeat")
    jump = int(event(csms, cp, "SettingSystemTime", mark)["techInfo"].split()[0])
    assert abs(jump - 7200) < 5


def test_get_log_uploads_the_security_log(csms, charge_point, uploads):
    cp = charge_point()
    registered(cp, csms)
    event(csms, cp, "StartupOfTheDevice")

    def get_log(rid, **more):
        return csms.call(cp.id, ("GetLog", {"logType": "SecurityLog", "requestId": rid,
                                            "log": {"remoteLocation": uploads.url + "/logs"}, **more}))

    def statuses(mark, rid):
        csms.wait_for("LogStatusNotification", lambda p: p["status"] != "Uploading", cp_id=cp.id, since=mark)
        got = [m.payload for m in csms.messages(cp.id, "LogStatusNotification", kind="call", since=mark)]
        assert all(p["requestId"] == rid for p in got)
        return [p["status"] for p in got]
    mark = csms.mark()
    answer = get_log(42)
    assert answer["status"] == "Accepted" and answer["filename"].startswith("SecurityLog-")
    assert statuses(mark, 42) == ["Uploading", "Uploaded"]
    [(path, body)] = uploads.posts
    assert path == "/logs" and answer["filename"].encode() in body and b" StartupOfTheDevice" in body
    uploads.status = 500  # the server refuses: every attempt is made, then UploadFailure
    mark = csms.mark()
    assert get_log(43, retries=2, retryInterval=0)["status"] == "Accepted"
    assert statuses(mark, 43) == ["Uploading", "UploadFailure"]
    assert len(uploads.posts) == 3


@pytest.mark.parametrize("keys", ["device", "host"])
def test_profile3_with_the_signed_client_certificate(keys, charge_point, tls_csms, pki, tmp_path):
    """The key made on the device (or provisioned by the host with its CSR): its CSR signed by the
    test CA into the ChargePointCertificate the device then presents in a profile-3 TLS session."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID
    state = tmp_path / "cp-state"
    settings = profile2(pki)
    if keys == "host":  # as make deploy provisions them
        settings.update(client_key=(pki / "cp.key").read_text(), client_csr=(pki / "cp.csr").read_text())
    cp = charge_point(url=tls_csms.url, state_dir=state, settings=settings)
    if keys == "host":
        pem_body = "".join(line for line in (pki / "cp.key").read_text().splitlines() if "-----" not in line)
        assert (state / "cp.key").read_bytes() == base64.b64decode(pem_body)  # stored as DER
    else:
        assert not (state / "cp.key").exists()
    registered(cp, tls_csms)

    def call(action, **payload):
        return tls_csms.call(cp.id, (action, payload))["status"]
    assert call("ChangeConfiguration", key="SecurityProfile", value="3") == "Rejected"  # no certificate yet
    assert call("ChangeConfiguration", key="CpoName", value="Example CPO") == "Accepted"

    def request():
        mark = tls_csms.mark()
        assert call("ExtendedTriggerMessage", requestedMessage="SignChargePointCertificate") == "Accepted"
        return tls_csms.wait_for("SignCertificate", cp_id=cp.id, since=mark)["csr"]
    csr = request()
    req = x509.load_pem_x509_csr(csr.encode())
    assert req.is_signature_valid
    if keys == "device":
        serial = tls_csms.messages(cp.id, "BootNotification", kind="call")[0].payload["chargePointSerialNumber"]
        assert req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example CPO"
        assert req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == serial
        assert (state / "cp.key.new").exists() and not (state / "cp.key").exists()
        first = req
        req = x509.load_pem_x509_csr(request().encode())  # each trigger: a new key
        assert req.public_key() != first.public_key()
        (tmp_path / "old.pem").write_bytes(first.public_bytes(Encoding.PEM))
        sign(pki, tmp_path / "old.pem", "ca", tmp_path / "old_signed.pem")
        chain = (tmp_path / "old_signed.pem").read_text() + (pki / "ca.pem").read_text()
        assert call("CertificateSigned", certificateChain=chain) == "Rejected"  # the replaced key's
        assert call("ChangeConfiguration", key="CertificateCommonName", value="CP001") == "Accepted"
        csr = request()
        req = x509.load_pem_x509_csr(csr.encode())
        assert req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP001"
        key_text = (state / "cp.key.new").read_bytes()
        assert key_text not in cp.log().encode()
    (tmp_path / "csr.pem").write_text(csr)
    sign(pki, tmp_path / "csr.pem", "ca", tmp_path / "signed.pem")
    mark = tls_csms.mark()
    assert call("CertificateSigned", certificateChain=(pki / "server.pem").read_text()) == "Rejected"
    event(tls_csms, cp, "InvalidChargePointCertificate", mark)  # another key's certificate
    forged = (tmp_path / "signed.pem").read_text() + (pki / "other_ca.pem").read_text()
    assert call("CertificateSigned", certificateChain=forged) == "Rejected"  # other_ca did not sign it
    chain = (tmp_path / "signed.pem").read_text() + (pki / "ca.pem").read_text()
    assert call("CertificateSigned", certificateChain=chain) == "Accepted"
    if keys == "device":
        assert (state / "cp.key").read_bytes() == key_text and not (state / "cp.key.new").exists()
    assert call("ChangeConfiguration", key="SecurityProfile", value="3") == "RebootRequired"
    cp.stop()
    mutual = Csms(ssl_context=server_context(pki, client_ca="ca")).start()  # no certificate, no entry
    try:
        cp.url = mutual.url
        cp.settings.write_text(json.dumps({}))  # the profile comes from the configuration in flash
        cp.restart()
        registered(cp, mutual)
    finally:
        mutual.stop()
    assert mutual.errors == []


def test_signed_update_firmware_checks_the_signing_certificate(csms, charge_point, pki):
    cp = charge_point()
    registered(cp, csms)
    update = {"requestId": 9, "retries": 1, "firmware": {
        "location": "http://127.0.0.1:9/fw.bin", "retrieveDateTime": datetime.now(timezone.utc).isoformat(),
        "signingCertificate": (pki / "fw_signer.pem").read_text(), "signature": "c2lnbmF0dXJl"}}
    mark = csms.mark()
    assert csms.call(cp.id, ("SignedUpdateFirmware", update)) == {"status": "InvalidCertificate"}
    event(csms, cp, "InvalidFirmwareSigningCertificate", mark)  # no ManufacturerRootCertificate yet
    assert csms.call(cp.id, ("InstallCertificate", {"certificateType": MFR_ROOT, "certificate": (
        pki / "mfr_ca.pem").read_text()})) == {"status": "Accepted"}
    assert csms.call(cp.id, ("SignedUpdateFirmware", update)) == {"status": "Accepted"}
    # firmware.py carries it out: nothing listens on port 9
    assert csms.wait_for("SignedFirmwareStatusNotification", lambda p: p["status"] == "DownloadFailed", cp_id=cp.id,
                         since=mark) == {"status": "DownloadFailed", "requestId": 9}
