"""X.509 certificate paths checked signature by signature up to a trusted root (RFC 5280, the
parts a device needs).

    chain.verify(certs, roots)   # certs: x509.Certificates, leaf first; roots: trusted ones
    chain.self_signed(root)      # a root's signature is its own key's
    chain.extensions(cert)       # {OID content bytes: (critical, value memoryview)}

verify() returns the root it reached and raises ValueError (why) unless:
- each certificate is signed by the key of the next one, the last by a root of ROOTS with that
  subject (a root of the same name but another key is not that root); a copy of the root at the
  end of CERTS is allowed and must be one of ROOTS byte for byte;
- every issuer (intermediates and the root) is a CA: basicConstraints cA TRUE (a root without
  any extension, an X.509 v1 root, is accepted), keyUsage, if present, with keyCertSign; the
  number of intermediates below an issuer is at most its pathLenConstraint;
- the leaf's keyUsage, if present, has digitalSignature;
- no certificate has a critical extension other than basicConstraints, keyUsage,
  extendedKeyUsage, subjectAltName and the key identifiers;
- at most DEPTH certificates below the root.
Validity dates are the caller's (it knows the clock). Nothing here knows what the certificates
are for; sig.py does the arithmetic, lazily imported.
"""
from micropython import const

from x509 import element

_BOOLEAN = const(0x01)
_BIT_STRING = const(0x03)
_OCTET_STRING = const(0x04)
_OID = const(0x06)
_SEQUENCE = const(0x30)
_EXTENSIONS = const(0xA3)  # [3] EXPLICIT Extensions of a TBSCertificate
_DIGITAL_SIGNATURE = const(0x80)  # keyUsage bit 0, in the first octet
_KEY_CERT_SIGN = const(0x04)  # keyUsage bit 5

_BASIC = b"\x55\x1d\x13"  # 2.5.29.19 basicConstraints
_KEY_USAGE = b"\x55\x1d\x0f"  # 2.5.29.15 keyUsage
# critical extensions understood (or harmless to a device): keyUsage, subjectAltName,
# basicConstraints, extendedKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier
_KNOWN = (_KEY_USAGE, b"\x55\x1d\x11", _BASIC, b"\x55\x1d\x25", b"\x55\x1d\x0e", b"\x55\x1d\x23")


def extensions(cert):
    """{extnID OID content (bytes): (critical, extnValue content)} of x509.Certificate CERT;
    ValueError when they are malformed or one is there twice."""
    buf = cert.tbs
    _, i, end = element(buf, 0, len(buf), _SEQUENCE)
    found = {}
    while i < end:  # version, serial, signature, issuer, validity, subject, spki, [1], [2], [3]
        t, a, i = element(buf, i, end)
        if t != _EXTENSIONS:
            continue
        if i != end:
            raise ValueError("DER: bytes after the extensions")
        _, a, b = element(buf, a, i, _SEQUENCE)
        if b != i or a == b:
            raise ValueError("DER: bad extensions")
        while a < b:
            _, p, a = element(buf, a, b, _SEQUENCE)
            _, p, q = element(buf, p, a, _OID)
            oid = bytes(buf[p:q])
            critical = False
            if q < a and buf[q] == _BOOLEAN:
                _, p, q = element(buf, q, a, _BOOLEAN)
                if q - p != 1 or buf[p] != 0xFF:  # DER: DEFAULT FALSE is absent, TRUE is FF
                    raise ValueError("DER: bad critical flag")
                critical = True
            _, p, q = element(buf, q, a, _OCTET_STRING)
            if q != a or oid in found:
                raise ValueError("DER: bad extension")
            found[oid] = (critical, buf[p:q])
    return found


def _basic(ext):
    """(cA, pathLenConstraint or None) of the extensions EXT; (False, None) without the extension."""
    got = ext.get(_BASIC)
    if got is None:
        return False, None
    v = got[1]
    _, i, end = element(v, 0, len(v), _SEQUENCE)
    if end != len(v):
        raise ValueError("DER: bytes after basicConstraints")
    ca, limit = False, None
    if i < end and v[i] == _BOOLEAN:
        _, a, i = element(v, i, end, _BOOLEAN)
        if i - a != 1 or v[a] != 0xFF:
            raise ValueError("DER: bad cA flag")
        ca = True
    if i < end:
        from x509 import uint
        limit, i = uint(v, i, end, 2)
    if i != end:
        raise ValueError("DER: bad basicConstraints")
    return ca, limit


def _usage(ext):
    """The first octet of keyUsage in EXT (bits 0..7), or None without the extension."""
    got = ext.get(_KEY_USAGE)
    if got is None:
        return None
    v = got[1]
    _, a, b = element(v, 0, len(v), _BIT_STRING)
    if b != len(v) or b - a < 2 or v[a] > 7:
        raise ValueError("DER: bad keyUsage")
    return v[a + 1]


def _signed(cert, issuer):
    import sig
    try:
        return sig.issued_by(cert, issuer)
    except ValueError:  # a key or an algorithm it cannot use: not verified
        return False


def self_signed(cert):
    """Is x509.Certificate CERT issued by itself, its signature verified by its own key?"""
    return cert.issuer == cert.subject and _signed(cert, cert)


def _same(a, b):
    return a.tbs == b.tbs and a.signature == b.signature


def verify(certs, roots, depth=5):
    """The root of ROOTS that CERTS (x509.Certificates, leaf first) chain to; ValueError (why)
    when they do not, by the rules above."""
    certs = list(certs)
    if not certs:
        raise ValueError("no certificate")
    last = certs[-1]
    if len(certs) > 1 and last.issuer == last.subject:  # the chain ends with its root: drop it
        if not any(_same(last, r) for r in roots):
            raise ValueError("its root is not installed")
        certs.pop()
    if len(certs) > depth:
        raise ValueError("a chain of more than %d certificates" % depth)
    top = certs[-1]
    anchor = None
    for r in roots:
        if r.subject == top.issuer and _signed(top, r):
            anchor = r
            break
    if anchor is None:
        raise ValueError("not signed by an installed root")
    path = certs + [anchor]
    for i, c in enumerate(path):
        ext = extensions(c)
        for oid, (critical, _) in ext.items():
            if critical and oid not in _KNOWN:
                raise ValueError("certificate %d: unknown critical extension" % (i + 1))
        usage = _usage(ext)
        if i == 0:
            if usage is not None and not usage & _DIGITAL_SIGNATURE:
                raise ValueError("certificate 1: keyUsage without digitalSignature")
            continue
        ca, limit = _basic(ext)
        if not ca and (c is not anchor or ext):
            raise ValueError("certificate %d: not a CA" % (i + 1))
        if usage is not None and not usage & _KEY_CERT_SIGN:
            raise ValueError("certificate %d: keyUsage without keyCertSign" % (i + 1))
        if limit is not None and i - 1 > limit:
            raise ValueError("certificate %d: pathLenConstraint %d exceeded" % (i + 1, limit))
        if c is not anchor and not _signed(path[i - 1], c):
            raise ValueError("certificate %d: signature not verified" % i)
    return anchor
