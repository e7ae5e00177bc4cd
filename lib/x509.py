"""X.509 certificates in DER: the fields that name, date and chain them (no signature check).

    c = x509.Certificate(der)    # ValueError unless DER is a certificate
    c.issuer, c.subject          # the Name elements (tag and length included)
    c.serial                     # the serialNumber INTEGER's content octets
    c.key                        # the subjectPublicKey BIT STRING's content, unused-bits octet dropped
    c.not_before, c.not_after    # 'YYYY-MM-DDTHH:MM:SSZ'
    c.spki                       # the SubjectPublicKeyInfo element (what sig.verify takes)
    c.tbs                        # the tbsCertificate element: the signed bytes
    c.sig_alg                    # the signatureAlgorithm element (an AlgorithmIdentifier)
    c.signature                  # the signatureValue BIT STRING's content, unused-bits octet dropped
    x509.pairs(c, key_der)       # is KEY_DER the private key of c's public key?
    x509.element(buf, i, end)    # one DER element: (tag, content start, content end)
    x509.uint(buf, i, end)       # a DER INTEGER that must be >= 0: (value, next index)

Lengths and integers must be DER's minimal encodings, and nothing may follow the certificate.

Every field is a memoryview into DER: nothing is copied. Memoryviews compare by content.
"""
from micropython import const

_INTEGER = const(0x02)
_BIT_STRING = const(0x03)
_OCTET_STRING = const(0x04)
_UTC_TIME = const(0x17)
_GENERALIZED_TIME = const(0x18)
_SEQUENCE = const(0x30)
_VERSION = const(0xA0)  # [0] EXPLICIT version of a TBSCertificate
_PUBLIC_KEY = const(0xA1)  # [1] publicKey of an ECPrivateKey


def element(buf, i, end, tag=None):
    """(tag, start, stop) of the DER element at BUF[I] that must end by END: its content is
    BUF[start:stop]. ValueError if it is malformed, overruns END or its tag is not TAG."""
    if i + 2 > end:
        raise ValueError("DER: truncated")
    t, n = buf[i], buf[i + 1]
    if tag is not None and t != tag:
        raise ValueError("DER: tag %02x, not %02x" % (t, tag))
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 3 or i + k > end:
            raise ValueError("DER: bad length")
        if not buf[i]:
            raise ValueError("DER: non-minimal length")
        n = int.from_bytes(buf[i : i + k], "big")
        if n < 0x80:
            raise ValueError("DER: non-minimal length")
        i += k
    if i + n > end:
        raise ValueError("DER: truncated")
    return t, i, i + n


def uint(buf, i, end, limit=0):
    """(value, next index) of the DER INTEGER at BUF[I], which must be >= 0, minimally encoded and,
    with LIMIT, at most LIMIT content octets. ValueError otherwise."""
    _, a, b = element(buf, i, end, _INTEGER)
    if a == b or buf[a] & 0x80 or b - a > 1 and not buf[a] and not buf[a + 1] & 0x80:
        raise ValueError("DER: integer empty, negative or not minimal")
    if limit and b - a > limit:
        raise ValueError("DER: integer too large")
    return int.from_bytes(buf[a:b], "big"), b


def _time(v, t):
    """UTCTime or GeneralizedTime content V (tag T), 'YYMMDDHHMMSSZ' or 'YYYYMMDDHHMMSSZ',
    as 'YYYY-MM-DDTHH:MM:SSZ'."""
    s = str(v, "ascii")
    if t == _UTC_TIME and len(s) == 13:
        s = ("20" if s < "50" else "19") + s  # RFC 5280: YY < 50 is 20YY, else 19YY
    elif t != _GENERALIZED_TIME or len(s) != 15:
        raise ValueError("DER: unsupported time " + s)
    if s[-1] != "Z" or not s[:14].isdigit():
        raise ValueError("DER: unsupported time " + s)
    return "%s-%s-%sT%s:%s:%sZ" % (s[0:4], s[4:6], s[6:8], s[8:10], s[10:12], s[12:14])


class Certificate:
    """The fields of one DER certificate (bytes, bytearray or memoryview)."""

    def __init__(self, der):
        buf = memoryview(der)
        _, i, outer = element(buf, 0, len(buf), _SEQUENCE)
        if outer != len(buf):
            raise ValueError("DER: bytes after the certificate")
        a = i
        _, i, end = element(buf, i, outer, _SEQUENCE)  # tbsCertificate
        self.tbs = buf[a:end]
        a, v = end, element(buf, end, outer, _SEQUENCE)[2]
        self.sig_alg = buf[a:v]
        _, a, v = element(buf, v, outer, _BIT_STRING)
        if a == v or buf[a] or v != outer:
            raise ValueError("DER: bad signatureValue")
        self.signature = buf[a + 1 : v]
        if i < end and buf[i] == _VERSION:
            i = element(buf, i, end)[2]
        _, a, i = element(buf, i, end, _INTEGER)
        self.serial = buf[a:i]
        a, i = i, element(buf, i, end, _SEQUENCE)[2]  # signature algorithm: the outer one's twin
        if buf[a:i] != self.sig_alg:
            raise ValueError("DER: the two signature algorithms differ")
        a, i = i, element(buf, i, end, _SEQUENCE)[2]
        self.issuer = buf[a:i]
        _, v, i = element(buf, i, end, _SEQUENCE)  # validity
        t, a, v = element(buf, v, i)
        self.not_before = _time(buf[a:v], t)
        t, a, v = element(buf, v, i)
        self.not_after = _time(buf[a:v], t)
        a, i = i, element(buf, i, end, _SEQUENCE)[2]
        self.subject = buf[a:i]
        a = i
        _, v, i = element(buf, i, end, _SEQUENCE)  # subjectPublicKeyInfo
        self.spki = buf[a:i]
        a = element(buf, v, i, _SEQUENCE)[2]  # its algorithm
        _, a, i = element(buf, a, i, _BIT_STRING)
        if a == i or buf[a]:
            raise ValueError("DER: public key is not whole octets")
        self.key = buf[a + 1 : i]

    @property
    def self_signed(self):
        """Issued by itself (a root)? Compares names only, not the signature."""
        return self.issuer == self.subject


def pairs(cert, key):
    """Does private key KEY (DER: PKCS#8, or SEC1 EC with its public key, or PKCS#1 RSA) belong
    to CERT's public key? Compares the public parts stored in KEY; no arithmetic."""
    k = memoryview(key)
    _, i, end = element(k, 0, len(k), _SEQUENCE)
    i = element(k, i, end, _INTEGER)[2]  # version
    if i >= end:
        return False
    t = k[i]
    if t == _SEQUENCE:  # PKCS#8: algorithm, then the SEC1 or PKCS#1 key in an OCTET STRING
        i = element(k, i, end)[2]
        _, a, b = element(k, i, end, _OCTET_STRING)
        return pairs(cert, k[a:b])
    if t == _INTEGER:  # PKCS#1: modulus and publicExponent follow, as in an RSAPublicKey
        j = element(k, element(k, i, end)[2], end, _INTEGER)[2]
        c = cert.key
        if not c or c[0] != _SEQUENCE:  # not an RSA public key
            return False
        _, a, b = element(c, 0, len(c))
        return c[a:b] == k[i:j]
    while i < end:  # SEC1 ECPrivateKey: privateKey, [0] parameters, [1] publicKey
        t, a, b = element(k, i, end)
        if t == _PUBLIC_KEY:
            _, a, b = element(k, a, b, _BIT_STRING)
            return b > a and cert.key == k[a + 1 : b]
        i = b
    return False
