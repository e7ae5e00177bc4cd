"""Security extension (OCPP 1.6 Security Whitepaper, edition 2): the certificate store, the
ChargePointCertificate, ExtendedTriggerMessage, GetLog and SignedUpdateFirmware.

Stock MicroPython has no key generation, no CSR and no RSA/ECDSA verification, so:
- the key (`cp.key`) and its CSR (`cp.csr`) are made on the host and provisioned; without a CSR
  SignChargePointCertificate is Rejected;
- a certificate is checked for its structure, its dates and the issuer/subject linkage of its
  chain, never its signature (TLS still checks the server's chain with mbedtls);
- the signature of a signed firmware cannot be checked: once its signing certificate chains to
  a ManufacturerRootCertificate, firmware.py downloads and installs it as an UpdateFirmware
  (FirmwareStatusNotification, not SignedFirmwareStatusNotification).
"""
import asyncio
from micropython import const

import pem
import x509

from .. import clock, files
from ..flash import certs, store
from ..log import log
from ..ocpp import routes
from ..system.transfer import attempts, retried, upload
from .trigger import request, send

_SCHEMES = ("http://", "https://", "ftp://")
_SKEW = const(300)  # seconds of clock difference tolerated at both ends of a validity period

_job = {}  # the GetLog under way (task "get-log"): "id", its requestId


def _valid(app, der):
    """The x509.Certificate in DER; ValueError unless it parses and is valid now (give or take
    _SKEW: a certificate the CSMS signed a second ago must not be refused for our clock's lag)."""
    c = x509.Certificate(der)
    now = app.clock.now()
    if not clock.parse(c.not_before) - _SKEW <= now <= clock.parse(c.not_after) + _SKEW:
        raise ValueError("valid from %s to %s only" % (c.not_before, c.not_after))
    return c


def parse_chain(app, text):
    """(DER, x509.Certificate) lists of PEM chain TEXT, leaf first, each valid now and issued
    by the next; ValueError (why) if not."""
    ders = pem.to_der(text)
    if not ders:
        raise ValueError("no PEM certificate")
    chain = [_valid(app, d) for d in ders]
    for i in range(1, len(chain)):
        if chain[i - 1].issuer != chain[i].subject:
            raise ValueError("certificate %d did not issue certificate %d" % (i + 1, i))
    return ders, chain


# -- the certificate store
def install_certificate(app, p):
    try:
        ders, chain = parse_chain(app, p["certificate"])
        if len(ders) > 1 or not chain[0].self_signed:
            raise ValueError("not one root certificate")
    except ValueError as e:
        log("sec", "certificate refused: %s" % e)
        return {"status": "Rejected"}
    if len(certs.index()) >= app.config["CertificateStoreMaxLength"]:
        return {"status": "Rejected"}
    try:
        certs.add(p["certificateType"], ders[0], chain[0])
    except OSError:
        return {"status": "Failed"}
    return {"status": "Accepted"}


def get_installed_certificate_ids(app, p):
    found = [certs.hash_data(e[1:]) for e in certs.index().values() if e[0] == p["certificateType"]]
    if not found:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashData": found}


def delete_certificate(app, p):
    h = p["certificateHashData"]
    wanted = ["SHA256", h["issuerNameHash"].lower(), h["issuerKeyHash"].lower(),
              certs.serial(h["serialNumber"])]
    for name, e in certs.index().items():
        if [h["hashAlgorithm"]] + e[1:] != wanted:
            continue
        if e[0] == certs.CSMS_ROOT and app.config["SecurityProfile"] >= 2 \
                and len(certs.paths(certs.CSMS_ROOT)) == 1:
            return {"status": "Failed"}  # the last one: no TLS connection could be verified
        try:
            certs.remove(name)
        except OSError:
            return {"status": "Failed"}
        return {"status": "Accepted"}
    return {"status": "NotFound"}


# -- the ChargePointCertificate
def certificate_signed(app, p):
    text = p["certificateChain"]
    try:
        if len(text) > app.config["CertificateSignedMaxChainSize"]:
            raise ValueError("longer than CertificateSignedMaxChainSize")
        ders, chain = parse_chain(app, text)
        if not store.exists(files.CP_KEY):
            raise ValueError("no private key provisioned")
        if not x509.pairs(chain[0], certs.read(files.CP_KEY)):
            raise ValueError("not a certificate of our key")
    except ValueError as e:
        app.security_event("InvalidChargePointCertificate", str(e))
        return {"status": "Rejected"}
    store.write(files.CP_CERT, ders[0])  # TLS presents the leaf only
    return {"status": "Accepted"}


# -- ExtendedTriggerMessage: the messages TriggerMessage has go through trigger.request
def _firmware_status(app):
    return "SignedFirmwareStatusNotification", {"status": app.firmware_status}


def _log_status(app):
    if _job:
        return "LogStatusNotification", {"status": "Uploading", "requestId": _job["id"]}
    return "LogStatusNotification", {"status": "Idle"}


def _sign_certificate(app):
    return "SignCertificate", {"csr": pem.to_pem(certs.read(files.CP_CSR), "CERTIFICATE REQUEST")}


_TRIGGERS = {
    "FirmwareStatusNotification": _firmware_status,
    "LogStatusNotification": _log_status,
    "SignChargePointCertificate": _sign_certificate,
}


def extended_trigger_message(app, p):
    message = p["requestedMessage"]
    make = _TRIGGERS.get(message)
    if make is None:
        return {"status": request(app, message, p.get("connectorId"))}
    if app.session.registration != "Accepted" or (
            message == "SignChargePointCertificate" and not store.exists(files.CP_CSR)):
        return {"status": "Rejected"}
    app.rpc.after("trigger:" + message, send(app, *make(app)))
    return {"status": "Accepted"}


# -- GetLog
def get_log(app, p):
    if not p["log"]["remoteLocation"].startswith(_SCHEMES):
        return {"status": "Rejected"}
    name = "%s-%s.txt" % (p["logType"], app.clock.iso().replace("-", "").replace(":", ""))
    busy = bool(_job)
    app.rpc.after("get-log", _get_log(app, p, name))
    return {"status": "AcceptedCanceled" if busy else "Accepted", "filename": name}


def _iso(text, default):
    """Date-time TEXT of the request as the security log writes it (bytes), else DEFAULT."""
    return clock.iso(clock.parse(text)).encode() if text else default


def _extract(p):
    """Write the requested log to files.LOG_EXTRACT: of the security log, the lines in the requested
    window (each starts with its time); the crash log whole. A missing log is empty."""
    window = p["log"]
    first = _iso(window.get("oldestTimestamp"), b"")
    last = _iso(window.get("latestTimestamp"), b"~")
    security = p["logType"] == "SecurityLog"
    with open(files.LOG_EXTRACT, "wb") as out:
        for path in files.SECURITY_LOGS if security else (files.CRASH_LOG,):
            try:
                with open(path, "rb") as f:
                    for line in f:
                        if not security or first <= line[:20] <= last:
                            out.write(line)
            except OSError:  # not written yet
                pass


async def _report_upload(app, status, rid):
    await app.session.online.wait()
    await send(app, "LogStatusNotification", {"status": status, "requestId": rid})


async def _get_log(app, p, name):
    """Upload the log, attempt after attempt; a newer GetLog replaces this one (app.spawn)."""
    rid = _job["id"] = p["requestId"]
    ok = False
    try:
        _extract(p)
        await _report_upload(app, "Uploading", rid)
        ok = await retried(*attempts(p), lambda: upload(p["log"]["remoteLocation"], files.LOG_EXTRACT, name),
                           "sec", "log upload")
    finally:
        if app.tasks.get("get-log") is asyncio.current_task():  # not replaced
            _job.clear()
            store.remove(files.LOG_EXTRACT)
    await _report_upload(app, "Uploaded" if ok else "UploadFailure", rid)


# -- SignedUpdateFirmware
def _anchor(app, cert):
    """ValueError unless an installed ManufacturerRootCertificate, valid now, issued CERT."""
    for path in certs.paths(certs.MANUFACTURER_ROOT):
        der = certs.read(path)
        if x509.Certificate(der).subject == cert.issuer:
            _valid(app, der)
            return
    raise ValueError("not issued by an installed ManufacturerRootCertificate")


def signed_update_firmware(app, p):
    fw = p["firmware"]
    try:
        _anchor(app, parse_chain(app, fw["signingCertificate"])[1][-1])
    except ValueError as e:
        app.security_event("InvalidFirmwareSigningCertificate", str(e))
        return {"status": "InvalidCertificate"}
    if not routes.has("firmware"):
        return {"status": "Rejected"}
    from .firmware import update_firmware
    req = {"location": fw["location"], "retrieveDate": fw["retrieveDateTime"]}
    for k in ("retries", "retryInterval"):
        if k in p:
            req[k] = p[k]
    update_firmware(app, req)
    return {"status": "Accepted"}
