"""Security extension (OCPP 1.6 Security Whitepaper, edition 2): the certificate store, the
ChargePointCertificate, ExtendedTriggerMessage, GetLog and SignedUpdateFirmware.

- A root certificate is installed only if its signature verifies with its own key. A chain
  (CertificateSigned, SignedUpdateFirmware's signingCertificate, the V2G chain of pnc.py) is
  checked signature by signature up to an installed root of the right type, with validity dates,
  basicConstraints, keyUsage and path length (lib/chain.py); a failure is Rejected (or
  InvalidCertificate) and a security event.
- SignChargePointCertificate makes a new P-256 key on the device (keys.py) and sends its CSR
  (O = CpoName, CN = keys.common_name); the key in use stays until the certificate for the new
  one is installed. A CSR provisioned by the host (`cp.csr`, with its `cp.key`) is sent instead.
- A signed firmware is verified over the downloaded image before it is made bootable
  (firmware.py), reported by SignedFirmwareStatusNotification with the request's requestId.
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


def parse_chain(app, text, kind=None):
    """(DER, x509.Certificate) lists of PEM chain TEXT, leaf first, each valid now and issued
    by the next; with KIND, verified up to an installed root of that certificateType (valid now
    too), signatures included (lib/chain.py). ValueError (why) if not."""
    ders = pem.to_der(text)
    if not ders:
        raise ValueError("no PEM certificate")
    chain = [_valid(app, d) for d in ders]
    for i in range(1, len(chain)):
        if chain[i - 1].issuer != chain[i].subject:
            raise ValueError("certificate %d did not issue certificate %d" % (i + 1, i))
    if kind is not None:
        roots = []
        for path in certs.paths(kind):
            try:
                roots.append(_valid(app, certs.read(path)))
            except ValueError:  # expired: not a root any more
                pass
        from .. import forget_crypto
        try:
            import chain as paths
            paths.verify(chain, roots)
        finally:
            forget_crypto()
    return ders, chain


# -- the certificate store
def install_certificate(app, p):
    try:
        ders, chain = parse_chain(app, p["certificate"])
        if len(ders) > 1 or not chain[0].self_signed:
            raise ValueError("not one root certificate")
        from .. import forget_crypto
        try:
            import chain as paths
            if not paths.self_signed(chain[0]):
                raise ValueError("its signature is not its own key's")
        finally:
            forget_crypto()
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
        ders, chain = parse_chain(app, text, certs.CSMS_ROOT)
        from . import keys
        key = keys.owner(chain[0], keys.CP)
        if key is None:
            raise ValueError("not a certificate of our key")
    except (OSError, ValueError) as e:
        app.security_event("InvalidChargePointCertificate", str(e))
        return {"status": "Rejected"}
    keys.install(key, keys.CP, files.CP_CERT, ders[0])  # TLS presents the leaf only
    return {"status": "Accepted"}


# -- ExtendedTriggerMessage: the messages TriggerMessage has go through trigger.request
def _firmware_status(app):
    p = {"status": app.firmware_status}
    rid = store.load(files.FW_UPDATE, {}).get("rid")
    if rid is not None and app.firmware_status != "Idle":
        p["requestId"] = rid
    return "SignedFirmwareStatusNotification", p


def _log_status(app):
    if _job:
        return "LogStatusNotification", {"status": "Uploading", "requestId": _job["id"]}
    return "LogStatusNotification", {"status": "Idle"}


async def _sign_certificate(app):
    """SignCertificate with the provisioned cp.csr, else the CSR of a new key made now."""
    from . import keys
    csr = await keys.request_pem(app, keys.CP, "SignChargePointCertificate")
    if csr is not None:
        await send(app, "SignCertificate", {"csr": csr})


_TRIGGERS = {
    "FirmwareStatusNotification": _firmware_status,
    "LogStatusNotification": _log_status,
    "SignChargePointCertificate": None,
}


def extended_trigger_message(app, p):
    message = p["requestedMessage"]
    make = _TRIGGERS.get(message)
    if message not in _TRIGGERS:
        return {"status": request(app, message, p.get("connectorId"))}
    if app.session.registration != "Accepted":
        return {"status": "Rejected"}
    app.rpc.after("trigger:" + message, send(app, *make(app)) if make else _sign_certificate(app))
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
def signed_update_firmware(app, p):
    fw = p["firmware"]
    try:
        ders = parse_chain(app, fw["signingCertificate"], certs.MANUFACTURER_ROOT)[0]
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
    update_firmware(app, req, p["requestId"], ders[0], fw["signature"])
    return {"status": "Accepted"}
