"""ISO 15118 Plug & Charge over OCPP 1.6, as the OCA application note "Using ISO 15118 Plug &
Charge with OCPP 1.6" maps it: an OCPP 2.0.1 payload, as JSON text, in the data of a
DataTransfer of vendorId routes.PNC_VENDOR whose messageId is the message name. core.data_transfer
imports this module only while ISO15118PnCEnabled is true.

CSMS -> charge point (MESSAGES): each request is checked against its 2.0.1 schema
(schemas/pnc/, tools/genschemas.py): DataTransfer Rejected if the data is not one, else Accepted
with the 2.0.1 response. CertificateSigned: the V2G certificate chain for the V2G key (made on
the device, keys.py, or the host's behind a provisioned `v2g.csr`), verified signature by
signature up to an installed V2GRootCertificate (security.parse_chain), kept in `v2g.pem`; InstallCertificate, DeleteCertificate, GetInstalledCertificateIds: root certificates in
the certs.py store, and the V2G chain as V2GCertificateChain; TriggerMessage: SignV2GCertificate.

Charge point -> CSMS, the interface of an ISO 15118 stack: `authorize` (a contract's eMAID ->
OCPP 1.6 idTagInfo), `ev_certificate` (Get15118EVCertificate), `certificate_status`
(GetCertificateStatus, OCSP); SignCertificate goes out when triggered and again, with
CertSigningWaitMinimum doubled each time, CertSigningRepeatTimes times while no certificate
comes.

Out of scope: the ISO 15118 high-level communication itself (5 % pilot duty, SLAC over HomePlug
Green PHY, TLS to the EV, EXI) belongs to a 15118 stack beside this firmware; the simulator plays
what it would ask for through its control API (POST /pnc); it reads the V2G key from `v2g.key`.
"""
import asyncio
import json
from micropython import const

import pem
import x509

from .. import files
from ..errors import CallError, Offline
from ..flash import certs, store
from ..log import log
from ..ocpp import schema
from ..ocpp.routes import PNC_VENDOR

_INTEGER = const(0x02)
_BIT_STRING = const(0x03)
_SEQUENCE = const(0x30)
_V2G = "V2GCertificate"
_V2G_ROOT = "V2GRootCertificate"
_V2G_CHAIN = "V2GCertificateChain"
# Certificate types whose names differ: 2.0.1 <-> certs.py store (OCPP 1.6), both ways.
_RENAMED = {"CSMSRootCertificate": certs.CSMS_ROOT, certs.CSMS_ROOT: "CSMSRootCertificate"}
_STATUSES = ("Accepted", "Blocked", "ConcurrentTx", "Expired")  # 2.0.1's that 1.6 has too

_signed = asyncio.Event()  # an accepted CertificateSigned arrived


# -- CSMS -> charge point
def _csr_key(der):
    """The subjectPublicKey of PKCS#10 request DER, as x509.Certificate.key gives it."""
    b = memoryview(der)
    _, i, end = x509.element(b, 0, len(b), _SEQUENCE)  # CertificationRequest
    _, i, end = x509.element(b, i, end, _SEQUENCE)  # certificationRequestInfo
    i = x509.element(b, i, end, _INTEGER)[2]  # version
    i = x509.element(b, i, end, _SEQUENCE)[2]  # subject
    _, i, end = x509.element(b, i, end, _SEQUENCE)  # subjectPKInfo
    i = x509.element(b, i, end, _SEQUENCE)[2]  # its algorithm
    _, i, end = x509.element(b, i, end, _BIT_STRING)
    return b[i + 1 : end]


def _certificate_signed(app, p):
    text = p["certificateChain"]
    try:
        if p.get("certificateType", _V2G) != _V2G:  # the ChargePointCertificate: security.py
            raise ValueError("not a V2GCertificate")
        if len(text) > app.config["CertificateSignedMaxChainSize"]:
            raise ValueError("longer than CertificateSignedMaxChainSize")
        from .security import parse_chain  # only here: with transfer.py and trigger.py it costs ~20 KB
        leaf = parse_chain(app, text, _V2G_ROOT)[1][0]
        from . import keys
        if store.exists(files.V2G_CSR):  # a host-made key: the certificate must be for its CSR
            key = files.V2G_KEY if leaf.key == _csr_key(certs.read(files.V2G_CSR)) else None
        else:
            key = keys.owner(leaf, keys.V2G)
        if key is None:
            raise ValueError("not a certificate of our V2G key")
    except (OSError, ValueError) as e:
        log("pnc", "V2G certificate refused: %s" % e)
        app.security_event("InvalidChargePointCertificate", "V2G: %s" % e)
        return {"status": "Rejected"}
    keys.install(key, keys.V2G, files.V2G_CHAIN, text)
    _signed.set()
    return {"status": "Accepted"}


def _install_certificate(app, p):
    from .security import install_certificate
    p["certificateType"] = _RENAMED.get(p["certificateType"], p["certificateType"])
    return install_certificate(app, p)


def _delete_certificate(app, p):
    from .security import delete_certificate  # the payloads are OCPP 1.6's
    return delete_certificate(app, p)


def _v2g_chain():
    """The CertificateHashDataChain of the V2G certificate chain, or None: each certificate is
    hashed with its issuer's key (the next in the chain, else an installed V2GRootCertificate)
    up to the first whose issuer is unknown."""
    try:
        chain = [x509.Certificate(d) for d in pem.to_der(certs.read(files.V2G_CHAIN))]
    except OSError:
        return None
    roots = [x509.Certificate(certs.read(p)) for p in certs.paths(_V2G_ROOT)]
    found = []
    for i, c in enumerate(chain):
        issuers = chain[i + 1 : i + 2] or [r for r in roots if r.subject == c.issuer]
        if not issuers:
            break
        found.append(certs.hash_data(certs.ids(c, issuers[0])))
    if not found:
        return None
    entry = {"certificateType": _V2G_CHAIN, "certificateHashData": found[0]}
    if len(found) > 1:
        entry["childCertificateHashData"] = found[1:5]
    return entry


def _get_installed_certificate_ids(app, p):
    wanted = p.get("certificateType")  # None: every type
    found = []
    for e in certs.index().values():
        use = _RENAMED.get(e[0], e[0])
        if not wanted or use in wanted:
            found.append({"certificateType": use, "certificateHashData": certs.hash_data(e[1:])})
    chain = (not wanted or _V2G_CHAIN in wanted) and _v2g_chain()
    if chain:
        found.append(chain)
    if not found:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashDataChain": found}


def _trigger_message(app, p):
    if p["requestedMessage"] != "SignV2GCertificate":
        return {"status": "NotImplemented"}  # OCPP 1.6 TriggerMessage asks for the others
    if app.session.registration != "Accepted":
        return {"status": "Rejected"}
    app.rpc.after("v2g-signing", _sign(app))
    return {"status": "Accepted"}


def _serve(name, handler):
    """The core.VENDORS entry of message NAME: HANDLER(app, request) answers the 2.0.1 request
    in the DataTransfer data once it passed its schema; Rejected if it does not."""
    def serve(app, data):
        try:
            p = json.loads(data)
            schema.check(schema.load("pnc/" + name), p)
        except (TypeError, ValueError, CallError) as e:
            log("pnc", "%s refused: %r" % (name, e))
            return "Rejected", None
        return "Accepted", json.dumps(handler(app, p))
    return serve


# messageId -> fn(app, data) -> (DataTransfer status, data), as core.VENDORS holds them
MESSAGES = {name: _serve(name, fn) for name, fn in (
    ("CertificateSigned", _certificate_signed),
    ("DeleteCertificate", _delete_certificate),
    ("GetInstalledCertificateIds", _get_installed_certificate_ids),
    ("InstallCertificate", _install_certificate),
    ("TriggerMessage", _trigger_message),
)}


# -- charge point -> CSMS
async def _call(app, message, payload):
    """The CSMS's 2.0.1 response (a dict) to 2.0.1 request PAYLOAD of MESSAGE. Raises what
    rpc.call raises, and ValueError when the DataTransfer brings no response."""
    r = await app.rpc.call("DataTransfer", {"vendorId": PNC_VENDOR, "messageId": message,
                                            "data": json.dumps(payload)})
    try:
        answer = json.loads(r["data"]) if r["status"] == "Accepted" else None
    except (KeyError, ValueError):
        answer = None
    if type(answer) is not dict:
        raise ValueError("%s: DataTransfer %s, no 2.0.1 response" % (message, r.get("status")))
    return answer


def _tag_info(r):
    """The OCPP 1.6 idTagInfo of 2.0.1 AuthorizeResponse R: a contract certificate that is not
    Accepted, or a status 1.6 does not know, is Invalid."""
    t = r["idTokenInfo"]
    status = t["status"] if r.get("certificateStatus", "Accepted") == "Accepted" else "Invalid"
    info = {"status": status if status in _STATUSES else "Invalid"}
    if "cacheExpiryDateTime" in t:
        info["expiryDate"] = t["cacheExpiryDateTime"]
    group = t.get("groupIdToken")
    parent = group and group["idToken"]
    if parent and len(parent) <= 20:  # an OCPP 1.6 idTag
        info["parentIdTag"] = parent
    return info


async def authorize(app, emaid, hash_data=None, certificate=None):
    """OCPP 1.6 idTagInfo of contract EMAID: the CSMS decides from its eMAID, HASH_DATA (the 2.0.1
    OCSPRequestData list of the contract chain) and, when CentralContractValidationAllowed, the
    contract CERTIFICATE (PEM). Offline the local list and cache decide (auth.py) when
    ContractValidationOffline, else it is Invalid."""
    cfg = app.config
    req = {"idToken": {"idToken": emaid, "type": "eMAID"}}
    if hash_data:
        req["iso15118CertificateHashData"] = hash_data
    if certificate and cfg["CentralContractValidationAllowed"]:
        req["certificate"] = certificate
    try:
        info = _tag_info(await _call(app, "Authorize", req))
    except Offline:
        if cfg["ContractValidationOffline"]:
            return await app.auth.authorize(emaid)
        return {"status": "Invalid"}
    except (CallError, asyncio.TimeoutError, ValueError, KeyError, TypeError) as e:
        log("pnc", "contract %s not authorized: %r" % (emaid, e))
        return {"status": "Invalid"}
    app.auth.remember(emaid, info)
    return info


async def ev_certificate(app, schema_version, action, exi_request):
    """Get15118EVCertificate: the CSMS's 2.0.1 response (status, exiResponse) to the EV's
    CertificateInstallationReq or CertificateUpdateReq (ACTION Install or Update; EXI_REQUEST
    base64) in ISO 15118 schema SCHEMA_VERSION."""
    return await _call(app, "Get15118EVCertificate", {
        "iso15118SchemaVersion": schema_version, "action": action, "exiRequest": exi_request})


async def certificate_status(app, ocsp_request):
    """GetCertificateStatus: the CSMS's 2.0.1 response (status, ocspResult) to OCSP_REQUEST (a
    2.0.1 OCSPRequestData)."""
    return await _call(app, "GetCertificateStatus", {"ocspRequestData": ocsp_request})


async def _sign(app):
    """SignCertificate for a new V2G key (or the provisioned v2g.csr); while no CertificateSigned
    follows within CertSigningWaitMinimum s (doubled each time), again, CertSigningRepeatTimes
    times, with the same CSR. A newer trigger replaces this run (app.spawn) and its key."""
    cfg = app.config
    wait = cfg["CertSigningWaitMinimum"]
    from . import keys
    csr = await keys.request_pem(app, keys.V2G, "SignV2GCertificate")
    if csr is None:
        return
    req = {"csr": csr, "certificateType": _V2G}
    del csr
    for _ in range(cfg["CertSigningRepeatTimes"] + 1):
        _signed.clear()
        try:
            if (await _call(app, "SignCertificate", req)).get("status") != "Accepted":
                log("pnc", "the CSMS refused to sign the V2G certificate")
                return
        except (Offline, CallError, asyncio.TimeoutError, ValueError) as e:
            log("pnc", "SignCertificate not sent: %r" % e)
        try:
            await asyncio.wait_for(_signed.wait(), wait)
            return
        except asyncio.TimeoutError:
            wait *= 2
    log("pnc", "no V2G certificate came: not asking again until triggered")
