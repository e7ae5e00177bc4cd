"""The certificate store in flash and the TLS context made from it.

`certs/N.der`: an installed root certificate; `certs/index.json`: {"N": [certificateType,
issuerNameHash, issuerKeyHash, serialNumber]}, written after the file and before a removal, so
a power cut leaves at most an unlisted file. A CA provisioned as `ca.der` joins the store on the
next use. `cp.key` (private key, DER) is made on the device (profiles/keys.py) or provisioned
with its `cp.csr` by the host; `cp.der` is the ChargePointCertificate the CSMS signed for it.
ISO 15118 (pnc.py): `v2g.key` (made here) or a provisioned `v2g.csr` (host-made key) for the V2G
certificate; `v2g.pem` is the V2G certificate chain (PEM, leaf first) the CSMS signed for it.
"""
import binascii
import hashlib

from .. import files
from ..log import log
from . import store

CSMS_ROOT = "CentralSystemRootCertificate"
MANUFACTURER_ROOT = "ManufacturerRootCertificate"


def _hex(data):
    return binascii.hexlify(data).decode()


def serial(text):
    """A serialNumber as compared: lower-case hex without leading zeroes."""
    return text.lower().lstrip("0") or "0"


def ids(cert, issuer=None):
    """[issuerNameHash, issuerKeyHash, serialNumber] (SHA256, hex) of certificate CERT issued by
    ISSUER (x509.Certificates; None: CERT is a root, whose issuer key is its own public key)."""
    return [_hex(hashlib.sha256(cert.issuer).digest()),
            _hex(hashlib.sha256((issuer or cert).key).digest()), serial(_hex(cert.serial))]


def hash_data(ids):
    """The CertificateHashData (OCPP 1.6 security extension and 2.0.1 alike) of ids() IDS."""
    return {"hashAlgorithm": "SHA256", "issuerNameHash": ids[0], "issuerKeyHash": ids[1],
            "serialNumber": ids[2]}


def path(name):
    """The file of installed certificate NAME."""
    return "%s/%s.der" % (files.CERTS, name)


def index():
    """{name: [certificateType, issuerNameHash, issuerKeyHash, serialNumber]} of the store."""
    if store.exists(files.CA):
        _adopt()
    return store.load(files.CERTS_INDEX, {})


def _adopt():
    """Move the provisioned ca.der into the store as a CentralSystemRootCertificate."""
    from x509 import Certificate
    der = read(files.CA)
    try:
        add(CSMS_ROOT, der, Certificate(der))
    except ValueError as e:
        log("!", "provisioned CA certificate ignored: %s" % e)
    store.remove(files.CA)


def add(kind, der, cert):
    """Install root certificate DER (bytes; CERT: it parsed) as KIND, unless it is there."""
    idx = store.load(files.CERTS_INDEX, {})
    entry = [kind] + ids(cert)
    if entry in idx.values():
        return
    name = str(max([int(n) for n in idx] or [0]) + 1)
    store.mkdir(files.CERTS)
    store.write(path(name), der)
    idx[name] = entry
    store.save(files.CERTS_INDEX, idx)


def remove(name):
    """Uninstall certificate NAME."""
    idx = index()
    del idx[name]
    store.save(files.CERTS_INDEX, idx)
    store.remove(path(name))


def paths(kind):
    """Files of the installed certificates of KIND."""
    return [path(n) for n, e in index().items() if e[0] == kind]


def read(name):
    """The bytes of file NAME."""
    with open(name, "rb") as f:
        return f.read()


def profile_ok(profile):
    """May SecurityProfile become PROFILE? 2 and 3 need a CentralSystemRootCertificate, 3 also
    the ChargePointCertificate and its key."""
    return (profile < 2 or bool(paths(CSMS_ROOT))) and (
        profile < 3 or store.exists(files.CP_CERT) and store.exists(files.CP_KEY))


def tls_context(profile):
    """The SSLContext of a wss connection in security PROFILE: the server's certificate must
    chain to an installed CentralSystemRootCertificate; profile 3 presents the
    ChargePointCertificate (this port sends the leaf only: the CSMS must know its issuer)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    roots = paths(CSMS_ROOT)
    if not roots:
        raise OSError("no CentralSystemRootCertificate installed: cannot verify the server certificate")
    for p in roots:  # each call adds one DER certificate (a concatenation would add only the first)
        ctx.load_verify_locations(cadata=read(p))
    if profile == 3:
        if not (store.exists(files.CP_CERT) and store.exists(files.CP_KEY)):
            raise OSError("security profile 3 without a ChargePointCertificate and its key")
        cert = read(files.CP_CERT)
        if store.exists(files.CP_NEW_KEY):  # a power cut between the two steps of keys.install:
            from x509 import Certificate, pairs  # the certificate may be the pending key's
            if pairs(Certificate(cert), read(files.CP_NEW_KEY)):
                import os
                os.rename(files.CP_NEW_KEY, files.CP_KEY)
        ctx.load_cert_chain(cert, read(files.CP_KEY))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
