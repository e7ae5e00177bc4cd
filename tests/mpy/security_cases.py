# MicroPython unit tests of the security extension (security.py, certs.py, seclog.py and the
# hooks in app.py / rpc.py) on the real App built from the sim board with a fake Rpc, using the
# test PKI of tests/pki.py in $PKI_DIR.
import asyncio
import os

import board
import fakes
import pem
from rpc_cases import FakeConn
from uwallbox import clock, files
from uwallbox.app import App
from uwallbox.errors import CallError
from uwallbox.flash import certs, store
from uwallbox.ocpp.rpc import Offline, Rpc
from uwallbox.profiles import core, security

PYTEST = {"fixtures": {"PKI_DIR": "pki"}}  # how tests/conftest.py runs these cases

_PKI = os.getenv("PKI_DIR") + "/"
_CSMS, _MFR = "CentralSystemRootCertificate", "ManufacturerRootCertificate"


def _read(name, mode="r"):
    with open(_PKI + name, mode) as f:
        return f.read()


def _app():
    return fakes.app({"Heartbeat": lambda p: {"currentTime": clock.iso(clock.Clock().now())}})


def _install(app, name, kind=_CSMS):
    return security.install_certificate(app, {"certificateType": kind, "certificate": name})["status"]


def _ids(app, kind=_CSMS):
    return security.get_installed_certificate_ids(app, {"certificateType": kind})


def _delete(app, name_hash, key_hash, serial, algorithm="SHA256"):
    return security.delete_certificate(app, {"certificateHashData": {
        "hashAlgorithm": algorithm, "issuerNameHash": name_hash, "issuerKeyHash": key_hash,
        "serialNumber": serial}})["status"]


def _events(app):
    return [e[0] for e in app.seclog.queue]


def test_install_list_delete_roots():
    app = _app()
    assert _ids(app) == {"status": "NotFound"}
    assert _install(app, _read("ca.pem")) == "Accepted"
    assert _install(app, _read("other_ca.pem")) == "Accepted"
    assert _install(app, _read("ca.pem")) == "Accepted"  # already there: not twice
    assert _install(app, _read("mfr_ca.pem"), _MFR) == "Accepted"
    for bad in (_read("server.pem"), _read("cp.pem") + _read("ca.pem"), "no certificate",
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"):
        assert _install(app, bad) == "Rejected", bad[:40]
    found = _ids(app)
    assert found["status"] == "Accepted" and len(found["certificateHashData"]) == 2
    h = found["certificateHashData"][1]
    assert h["hashAlgorithm"] == "SHA256" and len(h["issuerNameHash"]) == 64
    assert len(_ids(app, _MFR)["certificateHashData"]) == 1
    name_hash, key_hash, serial = h["issuerNameHash"], h["issuerKeyHash"], h["serialNumber"]
    assert _delete(app, name_hash, key_hash, serial, "SHA384") == "NotFound"
    assert _delete(app, name_hash, "0" * 64, serial) == "NotFound"
    assert _delete(app, name_hash.upper(), key_hash.upper(), "000" + serial.upper()) == "Accepted"
    assert _delete(app, name_hash, key_hash, serial) == "NotFound"
    assert len(_ids(app)["certificateHashData"]) == 1
    assert sorted(os.listdir("certs")) == ["1.der", "3.der", "index.json"]


def test_store_limit_and_dates():
    app = _app()
    app.config.fixed["CertificateStoreMaxLength"] = 1
    assert _install(app, _read("ca.pem")) == "Accepted"
    assert _install(app, _read("other_ca.pem")) == "Rejected"  # the store is full
    app.config.fixed["CertificateStoreMaxLength"] = 10
    app.clock.advance(3 * 86400)  # the test certificates are valid for 2 days
    assert _install(app, _read("other_ca.pem")) == "Rejected"


def test_last_root_stays_while_tls_needs_it():
    app = _app()
    assert app.config.change("SecurityProfile", "2") == "Rejected"  # no CentralSystemRootCertificate
    _install(app, _read("ca.pem"))
    assert app.config.change("SecurityProfile", "2") == "RebootRequired"
    assert app.config.change("SecurityProfile", "3") == "Rejected"  # no ChargePointCertificate
    h = _ids(app)["certificateHashData"][0]
    assert _delete(app, h["issuerNameHash"], h["issuerKeyHash"], h["serialNumber"]) == "Failed"
    _install(app, _read("other_ca.pem"))
    assert _delete(app, h["issuerNameHash"], h["issuerKeyHash"], h["serialNumber"]) == "Accepted"
    assert "ReconfigurationOfSecurityParameters" in _events(app)


def test_provisioned_ca_joins_the_store():
    store.write("ca.der", _read("ca.der", "rb"))
    app = _app()
    assert len(certs.paths(_CSMS)) == 1 and not store.exists("ca.der")
    store.write("ca.der", _read("ca.der", "rb"))  # provisioned again: still one
    assert len(certs.paths(_CSMS)) == 1 and not store.exists("ca.der")
    store.write("ca.der", b"not DER")  # ignored
    assert len(certs.paths(_CSMS)) == 1 and not store.exists("ca.der")
    assert _install(app, _read("ca.pem")) == "Accepted" and len(certs.index()) == 1
    with open(certs.paths(_CSMS)[0], "rb") as f:
        assert f.read() == _read("ca.der", "rb")


def test_tls_contexts():
    _install(_app(), _read("ca.pem"))
    _install(_app(), _read("other_ca.pem"))
    assert certs.tls_context(2) is not None
    for profile in (2, 3):
        store.remove("certs/index.json")
        try:
            certs.tls_context(profile)
            assert False, "a TLS context without roots"
        except OSError:
            pass


def test_certificate_signed():
    app = _app()
    chain = _read("cp.pem") + _read("ca.pem")

    def signed(text):
        return security.certificate_signed(app, {"certificateChain": text})["status"]
    store.write(files.CP_KEY, _read("cp.key.der", "rb"))
    assert signed(chain) == "Rejected"  # no CentralSystemRootCertificate to verify it with
    _install(app, _read("mfr_ca.pem"), _MFR)
    assert signed(chain) == "Rejected"  # a root of another type
    _install(app, _read("ca.pem"))
    store.remove(files.CP_KEY)
    assert signed(chain) == "Rejected"  # no key
    store.write(files.CP_KEY, _read("cp.key.der", "rb"))
    assert not store.exists(files.CP_CERT)
    assert signed(_read("ca.pem") + _read("cp.pem")) == "Rejected"  # not leaf first
    assert signed(_read("server.pem")) == "Rejected"  # another key's certificate
    assert signed(_read("cp.pem") + _read("other_ca.pem")) == "Rejected"  # other_ca did not issue it
    assert signed("garbage") == "Rejected"
    assert _events(app).count("InvalidChargePointCertificate") == 7
    app.config.fixed["CertificateSignedMaxChainSize"] = len(chain) - 1
    assert signed(chain) == "Rejected"
    del app.config.fixed["CertificateSignedMaxChainSize"]
    assert signed(chain) == "Accepted"
    with open(files.CP_CERT, "rb") as f:
        assert f.read() == pem.to_der(_read("cp.pem"))[0]  # the leaf
    assert signed(_read("cp.pem")) == "Accepted"  # the leaf alone: the installed root issued it
    assert app.config.change("SecurityProfile", "3") == "RebootRequired"
    assert certs.tls_context(3) is not None
    app.clock.advance(3 * 86400)
    assert signed(chain) == "Rejected"  # expired


async def test_extended_trigger_message():
    app = _app()

    def trigger(message, cid=None):
        p = {"requestedMessage": message}
        if cid is not None:
            p["connectorId"] = cid
        return security.extended_trigger_message(app, p)["status"]
    store.write(files.CP_CSR, _read("cp.csr.der", "rb"))  # host-made key: its CSR is sent
    for message in ("SignChargePointCertificate", "FirmwareStatusNotification", "LogStatusNotification",
                    "Heartbeat"):
        assert trigger(message) == "Accepted", message
    assert trigger("MeterValues", 9) == "Rejected"
    assert app.rpc.sent == []  # all after the answer
    await app.rpc.flush()
    assert [a for a, _ in app.rpc.sent] == ["SignCertificate", "SignedFirmwareStatusNotification",
                                            "LogStatusNotification", "Heartbeat"]
    assert app.rpc.sent[0][1]["csr"] == _read("cp.csr")
    assert app.rpc.sent[1][1] == {"status": "Idle"} and app.rpc.sent[2][1] == {"status": "Idle"}
    app.session.registration = "Pending"
    assert trigger("LogStatusNotification") == "Rejected"


def test_security_log_and_queue_are_bounded():
    app = _app()
    for i in range(200):
        app.security_event("InvalidMessages", "%d %s" % (i, "x" * 300))
    assert all(os.stat(path)[6] <= 4096 for path in files.SECURITY_LOGS)
    assert len(app.seclog.queue) == 10
    last = [e for e in app.seclog.queue if e[0] == "InvalidMessages"][-1]
    assert last[2].startswith("199 ") and len(last[2]) == 255
    assert "SecurityLogWasCleared" in _events(app)
    lines = []
    for path in files.SECURITY_LOGS:
        with open(path) as f:
            lines += f.read().splitlines()
    assert [line for line in lines if " InvalidMessages 199 " in line]
    assert all(line[4] == "-" and line[19] == "Z" for line in lines)
    assert App(board).seclog.queue == app.seclog.queue  # kept in flash


async def test_events_delivered_in_order():
    app = _app()
    app.rpc.answers["SecurityEventNotification"] = Offline()
    task = asyncio.create_task(app.seclog.run())
    app.security_event("StartupOfTheDevice")
    app.security_event("SettingSystemTime", "+3600 s")
    await asyncio.sleep_ms(50)
    assert len(app.seclog.queue) == 2  # not sent while offline
    app.session.online.set()
    await asyncio.sleep_ms(50)
    assert len(app.seclog.queue) == 2  # the CSMS is unreachable: kept
    app.rpc.answers["SecurityEventNotification"] = CallError("GenericError", "no")
    app.security_event("ResetOrReboot", "SoftReset")
    await asyncio.sleep(1.5)
    assert app.seclog.queue == [] and store.load("secq.json") == []  # refused ones are dropped
    del app.rpc.answers["SecurityEventNotification"]
    app.rpc.sent = []
    app.security_event("StartupOfTheDevice")
    app.security_event("MemoryExhaustion", "GetLog")
    await asyncio.sleep_ms(50)
    task.cancel()
    assert [(p["type"], p.get("techInfo")) for _, p in app.rpc.sent] == [
        ("StartupOfTheDevice", None), ("MemoryExhaustion", "GetLog")]
    assert abs(clock.parse(app.rpc.sent[0][1]["timestamp"]) - app.clock.now()) <= 1


def test_time_jump_is_an_event():
    app = _app()
    app.set_time(app.clock.now() + 30)
    assert _events(app) == []
    app.set_time(app.clock.now() - 7200)
    assert app.seclog.queue[-1][0::2] == ["SettingSystemTime", "-7200 s"]


async def test_rpc_reports_malformed_frames_and_memory_exhaustion():
    app = _app()
    rpc = Rpc(app)
    conn = FakeConn()
    task = asyncio.create_task(rpc.serve(conn))

    def exhausted(app, data):
        raise MemoryError()
    core.VENDORS["test"] = {"boom": exhausted}
    conn.push([2, "1", "DataTransfer", {"vendorId": "test", "messageId": "boom"}])
    assert (await conn.next_sent())[2] == "InternalError"
    for i in range(4):
        conn.push("[2, 'not json'")
        assert (await conn.next_sent())[2] == "FormationViolation"
    task.cancel()
    assert _events(app) == ["MemoryExhaustion", "InvalidMessages"]


def test_get_log_window():
    app = _app()
    now = app.clock.now()
    for kind in ("StartupOfTheDevice", "ResetOrReboot", "SettingSystemTime"):
        app.security_event(kind)
        app.clock.advance(3600)
    p = {"logType": "SecurityLog", "requestId": 1, "log": {"remoteLocation": "http://x/",
         "oldestTimestamp": clock.iso(now + 1800), "latestTimestamp": clock.iso(now + 3600)}}
    security._extract(p)
    with open("getlog.txt") as f:
        assert [line.split()[1] for line in f] == ["ResetOrReboot"]
    del p["log"]["oldestTimestamp"], p["log"]["latestTimestamp"]
    security._extract(p)
    with open("getlog.txt") as f:
        assert len(f.read().splitlines()) == 3
    p["logType"] = "DiagnosticsLog"  # crash.log: none yet
    security._extract(p)
    assert os.stat("getlog.txt")[6] == 0
    p["log"]["remoteLocation"] = "sftp://x/"
    assert security.get_log(app, p) == {"status": "Rejected"}


def test_signed_update_firmware_needs_a_manufacturer_root():
    app = _app()
    fw = {"location": "http://127.0.0.1:1/fw.bin", "retrieveDateTime": app.clock.iso(),
          "signingCertificate": _read("fw_signer.pem"), "signature": "c2ln"}

    def update():
        return security.signed_update_firmware(app, {"requestId": 7, "retries": 1, "firmware": fw})["status"]
    assert update() == "InvalidCertificate"
    _install(app, _read("ca.pem"), _MFR)
    assert update() == "InvalidCertificate"  # ca did not issue it
    assert _events(app) == ["InvalidFirmwareSigningCertificate"] * 2
    _install(app, _read("mfr_ca.pem"), _MFR)
    assert update() == "Accepted" and len(app.rpc.later) == 1  # firmware.py takes it over
    fw["signingCertificate"] = _read("other_ca.pem")
    assert update() == "InvalidCertificate"
    fw["signingCertificate"] = _read("fw_signer.pem")
    app.clock.advance(3 * 86400)
    assert update() == "InvalidCertificate"  # expired
    app.clock.advance(-3 * 86400)
    with open(_PKI + "mfr_ca.der", "rb") as f:
        der = bytearray(f.read())
    der[-5] ^= 1  # the same root, its signature broken
    store.remove(files.CERTS_INDEX)
    assert security.install_certificate(app, {"certificateType": _MFR, "certificate": pem.to_pem(
        der, "CERTIFICATE")})["status"] == "Rejected"
    _install(app, _read("other_ca.pem"), _MFR)
    assert update() == "InvalidCertificate"


async def test_device_key_never_leaves_the_flash():
    """A key made on the device: the CSR goes out, the key is in cp.key.new only; neither the
    diagnostics report nor a GetLog extract nor the console log holds it, in DER, hex or base64."""
    import binascii
    import sys
    from uwallbox.profiles import firmware
    app = _app()
    app.config.set("CpoName", "Example CPO")
    assert security.extended_trigger_message(app, {"requestedMessage": "SignChargePointCertificate"}) == {
        "status": "Accepted"}
    await app.rpc.flush()
    [(action, p)] = app.rpc.sent
    assert action == "SignCertificate" and p["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert not store.exists(files.CP_KEY) and "csr" not in sys.modules and "ec" not in sys.modules
    with open(files.CP_NEW_KEY, "rb") as f:
        key = f.read()
    secret = key[key.find(b"\x04\x20") + 2:][:32]  # the private scalar's OCTET STRING
    assert len(secret) == 32
    firmware._report(app)
    for name in ("SecurityLog", "DiagnosticsLog"):
        security._extract({"logType": name, "log": {"remoteLocation": "http://x/"}})
        with open(files.LOG_EXTRACT, "rb") as f:
            assert secret not in f.read()
    with open(files.DIAGNOSTICS, "rb") as f:
        text = f.read()
    for form in (secret, binascii.hexlify(secret), binascii.b2a_base64(secret)[:40]):
        assert form not in text and form not in p["csr"].encode()


def test_power_cut_between_certificate_and_key():
    """keys.install writes the certificate, then renames the pending key: cut in between, the
    next TLS context finds the pending key is the certificate's and completes the rename."""
    store.write(files.CP_NEW_KEY, _read("cp.key.der", "rb"))
    store.write(files.CP_KEY, _read("cp.key.der", "rb")[:-1] + b"\x00")  # the old key (any other)
    store.write(files.CP_CERT, pem.to_der(_read("cp.pem"))[0])
    _install(_app(), _read("ca.pem"))
    assert certs.tls_context(3) is not None
    assert not store.exists(files.CP_NEW_KEY)
    with open(files.CP_KEY, "rb") as f:
        assert f.read() == _read("cp.key.der", "rb")


async def test_no_heap_for_a_key_is_no_crash():
    """A MemoryError while the key is made: no SignCertificate, the event MemoryExhaustion, the
    task ends normally (the CSMS may trigger again), and no pending key is left."""
    from uwallbox.profiles import keys

    async def no_heap(app, which):
        raise MemoryError("test")
    app = _app()
    real, keys.request = keys.request, no_heap
    try:
        await security._sign_certificate(app)
    finally:
        keys.request = real
    assert app.rpc.sent == [] and _events(app)[-1] == "MemoryExhaustion"
    assert not store.exists(files.CP_NEW_KEY)
    await security._sign_certificate(app)  # with room: a CSR of a new key
    assert [a for a, _ in app.rpc.sent] == ["SignCertificate"] and store.exists(files.CP_NEW_KEY)


def test_no_heap_to_verify_an_image_is_not_a_verdict():
    """firmware._verified: a good signature True, a bad one False, and None (never installed,
    InstallVerificationFailed) when a MemoryError strikes both tries."""
    import binascii
    import hashlib
    import sys
    import uwallbox
    from uwallbox.profiles import firmware
    store.write(files.FW_SIGNER, pem.to_der(_read("fw_signer.pem"))[0])
    job = {"sig": binascii.b2a_base64(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()}
    digest = hashlib.sha256(b"image").digest()
    assert firmware._verified(job, digest) is False

    class NoHeap:
        def public_key(self, spki):
            raise MemoryError("test")
    real = uwallbox.forget_crypto

    def forget():
        real()
        sys.modules["sig"] = NoHeap()
    uwallbox.forget_crypto = forget
    try:
        assert firmware._verified(job, digest) is None
    finally:
        uwallbox.forget_crypto = real
        real()
