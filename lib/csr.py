"""P-256 keys and PKCS#10 certificate requests made on the device.

    d = csr.new_key()                       # a private scalar from os.urandom
    key = csr.private_key(d)                # DER PKCS#8 PrivateKeyInfo (form="sec1": ECPrivateKey)
    ssl_ctx.load_cert_chain(cert_der, key)  # both forms load in MicroPython's ssl (mbedtls)
    req = csr.request(d, "CP001", "Example CPO")  # DER CertificationRequest, signed
    csr.spki(d)                             # DER SubjectPublicKeyInfo of the key

The request's subject is O (if given) then CN, as UTF8Strings of at most 64 characters; it has no
attributes or extensions and is signed with ecdsa-with-SHA256 (see ec.py for the nonce and the
blinding of the secret scalar).
"""
from micropython import const

import ec

_SEQUENCE = const(0x30)
_EC_KEY = b"\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"  # OID id-ecPublicKey
_P256 = b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"  # OID prime256v1
_ECDSA_SHA256 = b"\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"  # AlgorithmIdentifier
_CN = b"\x06\x03\x55\x04\x03"
_O = b"\x06\x03\x55\x04\x0a"


def tlv(tag, body):
    """DER element TAG with content BODY (under 64 KB)."""
    n = len(body)
    if n < 0x80:
        head = bytes((tag, n))
    elif n < 0x100:
        head = bytes((tag, 0x81, n))
    else:
        head = bytes((tag, 0x82, n >> 8, n & 0xFF))
    return head + body


def new_key():
    """A new P-256 private scalar."""
    return ec.keygen(ec.P256)


def _point(d):
    return ec.encode_point(ec.P256, ec.public(ec.P256, d))


def spki(d, point=None):
    """DER SubjectPublicKeyInfo of private scalar D (POINT: its encoded public point, if known)."""
    return tlv(_SEQUENCE, tlv(_SEQUENCE, _EC_KEY + _P256) + tlv(0x03, b"\x00" + (point or _point(d))))


def private_key(d, form="pkcs8"):
    """DER of private scalar D: "pkcs8" PrivateKeyInfo or "sec1" ECPrivateKey (RFC 5915), both
    with the public key in them."""
    pub = tlv(0xA1, tlv(0x03, b"\x00" + _point(d)))
    secret = b"\x02\x01\x01" + tlv(0x04, d.to_bytes(32, "big"))
    if form == "sec1":
        return tlv(_SEQUENCE, secret + tlv(0xA0, _P256) + pub)
    if form != "pkcs8":
        raise ValueError("key form " + form)
    return tlv(_SEQUENCE, b"\x02\x01\x00" + tlv(_SEQUENCE, _EC_KEY + _P256) +
               tlv(0x04, tlv(_SEQUENCE, secret + pub)))


def _rdn(oid, value):
    v = value.encode()
    if not 0 < len(value) <= 64:
        raise ValueError("a name of 1 to 64 characters")
    return tlv(0x31, tlv(_SEQUENCE, oid + tlv(0x0C, v)))


def request(d, cn, o=None):
    """DER PKCS#10 CertificationRequest for private scalar D, subject O and CN, signed with it."""
    name = tlv(_SEQUENCE, (_rdn(_O, o) if o else b"") + _rdn(_CN, cn))
    info = tlv(_SEQUENCE, b"\x02\x01\x00" + name + spki(d) + b"\xa0\x00")
    import hashlib
    r, s = ec.sign(ec.P256, d, hashlib.sha256(info).digest())
    return tlv(_SEQUENCE, info + _ECDSA_SHA256 + tlv(0x03, b"\x00" + ec.encode_sig(r, s)))
