"""Signature verification by algorithm: the one entry point for certificate chains and signed files.

    h = sig.hasher(alg)                         # a new hash object for ALG's digest
    h.update(data); ...                         # stream the signed bytes through it
    sig.verify(spki, alg, signature, h.digest())  # True or False
    sig.issued_by(cert, issuer)                 # x509.Certificates: does ISSUER's key sign CERT?

SPKI: a SubjectPublicKeyInfo in DER (x509.Certificate.spki): rsaEncryption (2048-4096 bits),
id-RSASSA-PSS (used for PSS only) or id-ecPublicKey on P-256 or P-384 (secp256r1, secp384r1).
ALG: an AlgorithmIdentifier in DER (x509.Certificate.sig_alg), an OBJECT IDENTIFIER in DER (for
the algorithms without parameters: not PSS), or one of the names
    "rsa-pkcs1-sha256" "rsa-pkcs1-sha384" "rsa-pkcs1-sha512"   RSASSA-PKCS1-v1_5
    "rsa-pss-sha256"   "rsa-pss-sha384"   "rsa-pss-sha512"     RSASSA-PSS, MGF1 with the same hash
    "ecdsa-sha256"     "ecdsa-sha384"     "ecdsa-sha512"       ECDSA, DER Ecdsa-Sig-Value
By name, PSS accepts any salt length unless SALT (octets) is given; a DER AlgorithmIdentifier
states its salt length, hash and MGF1 hash, and those are enforced (SALT is then ignored).
DIGEST: the hash of the signed data by ALG's hash (hasher(alg)).

Errors: verify() returns False for any SIGNATURE that is not valid, malformed DER included, and
raises ValueError (only) when SPKI, ALG or DIGEST cannot be used: malformed, unsupported, or
not matching each other. Both mean "not verified".
"""
from micropython import const

from x509 import element, uint

_RSA_PKCS1 = const(0)
_RSA_PSS = const(1)
_ECDSA = const(2)

_OID = const(0x06)
_NULL = const(0x05)
_SEQUENCE = const(0x30)
_BIT_STRING = const(0x03)

_PSS_OID = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a"  # 1.2.840.113549.1.1.10
_ALGS = {  # signature algorithm OID content -> (kind, hash)
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b": (_RSA_PKCS1, "sha256"),
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0c": (_RSA_PKCS1, "sha384"),
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d": (_RSA_PKCS1, "sha512"),
    b"\x2a\x86\x48\xce\x3d\x04\x03\x02": (_ECDSA, "sha256"),
    b"\x2a\x86\x48\xce\x3d\x04\x03\x03": (_ECDSA, "sha384"),
    b"\x2a\x86\x48\xce\x3d\x04\x03\x04": (_ECDSA, "sha512"),
}
_NAMES = {"rsa-pkcs1": _RSA_PKCS1, "rsa-pss": _RSA_PSS, "ecdsa": _ECDSA}
_HASHES = {
    b"\x60\x86\x48\x01\x65\x03\x04\x02\x01": "sha256",
    b"\x60\x86\x48\x01\x65\x03\x04\x02\x02": "sha384",
    b"\x60\x86\x48\x01\x65\x03\x04\x02\x03": "sha512",
}
_MGF1 = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x08"
_RSA_KEY = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"
_EC_KEY = b"\x2a\x86\x48\xce\x3d\x02\x01"
_CURVES = {b"\x2a\x86\x48\xce\x3d\x03\x01\x07": "P256", b"\x2b\x81\x04\x00\x22": "P384"}


def _identifier(buf, i, end):
    """(OID content as bytes, parameters start, parameters end) of the AlgorithmIdentifier at I,
    which must fill BUF up to END."""
    _, a, b = element(buf, i, end, _SEQUENCE)
    if b != end:
        raise ValueError("DER: bytes after an AlgorithmIdentifier")
    _, a, i = element(buf, a, b, _OID)
    return bytes(buf[a:i]), i, b


def _null_or_absent(buf, i, end):
    if i != end and element(buf, i, end, _NULL)[1:] != (i + 2, end):
        raise ValueError("DER: parameters must be NULL or absent")


def _hash(buf, i, end):
    """The hash named by the AlgorithmIdentifier BUF[I:END] (parameters NULL or absent)."""
    oid, a, b = _identifier(buf, i, end)
    h = _HASHES.get(oid)
    if h is None:
        raise ValueError("unsupported hash")
    _null_or_absent(buf, a, b)
    return h


def _pss_params(buf, i, end):
    """(hash, MGF1 hash, salt length) of RSASSA-PSS-params BUF[I:END]; SHA-1 defaults are not
    supported, so the hash must be stated."""
    _, i, b = element(buf, i, end, _SEQUENCE)
    if b != end:
        raise ValueError("PSS: bad parameters")
    h = mgf = None
    salt = 20
    last = -1
    while i < end:
        t, a, b = element(buf, i, end)
        n = t - 0xA0
        if not last < n <= 3:  # context tags [0]..[3], in order, each once
            raise ValueError("PSS: bad parameters")
        last = n
        if n == 0:
            h = _hash(buf, a, b)
        elif n == 1:
            oid, a, b = _identifier(buf, a, b)
            if oid != _MGF1:
                raise ValueError("PSS: mask generation is not MGF1")
            mgf = _hash(buf, a, b)
        else:
            v, a = uint(buf, a, b, 2)
            if a != b:
                raise ValueError("PSS: bad parameters")
            if n == 2:
                salt = v
            elif v != 1:
                raise ValueError("PSS: trailer field is not 1")
        i = b
    if h is None or mgf is None:
        raise ValueError("PSS: SHA-1 is not supported")
    return h, mgf, salt


def _alg(alg, salt=-1):
    """(kind, hash, MGF1 hash, salt length or -1) of algorithm ALG (name or DER)."""
    if isinstance(alg, str):
        i = alg.rfind("-")
        kind = _NAMES.get(alg[:i])
        h = alg[i + 1 :]
        if kind is None or h not in ("sha256", "sha384", "sha512"):
            raise ValueError("unknown signature algorithm " + alg)
        return kind, h, h, salt
    buf = memoryview(alg)
    if len(buf) and buf[0] == _OID:  # an OID on its own: no parameters
        _, a, b = element(buf, 0, len(buf), _OID)
        if b != len(buf):
            raise ValueError("DER: bytes after the OID")
        oid = bytes(buf[a:b])
        a = b
    else:
        oid, a, b = _identifier(buf, 0, len(buf))
    if oid == _PSS_OID:
        return (_RSA_PSS,) + _pss_params(buf, a, b)
    got = _ALGS.get(oid)
    if got is None:
        raise ValueError("unsupported signature algorithm")
    if got[0] == _ECDSA:
        if a != b:
            raise ValueError("DER: ECDSA algorithm with parameters")
    else:
        _null_or_absent(buf, a, b)
    return got[0], got[1], got[1], -1


def hasher(alg):
    """A new streaming hash object (update(), digest()) for the digest that ALG signs."""
    import sha2
    return sha2.new(_alg(alg)[1])


def public_key(spki):
    """("rsa", (n, e)), ("rsa-pss", (n, e)) or ("ec", (curve, (x, y))) of SubjectPublicKeyInfo
    SPKI in DER; ValueError unless it is one of those, well formed and usable."""
    buf = memoryview(spki)
    _, i, end = element(buf, 0, len(buf), _SEQUENCE)
    if end != len(buf):
        raise ValueError("DER: bytes after the key")
    a, i = i, element(buf, i, end, _SEQUENCE)[2]
    oid, p, q = _identifier(buf, a, i)
    _, a, b = element(buf, i, end, _BIT_STRING)
    if b != end or a == b or buf[a]:
        raise ValueError("DER: bad subjectPublicKey")
    if oid == _EC_KEY:
        _, c, d = element(buf, p, q, _OID)
        name = _CURVES.get(bytes(buf[c:d]))
        if name is None or d != q:
            raise ValueError("unsupported curve")
        import ec
        curve = getattr(ec, name)
        return "ec", (curve, ec.decode_point(curve, buf[a + 1 : b]))
    if oid == _RSA_KEY:
        _null_or_absent(buf, p, q)
        kind = "rsa"
    elif oid == _PSS_OID:
        kind = "rsa-pss"  # its parameters, if any, are not enforced
    else:
        raise ValueError("unsupported key algorithm")
    _, i, end = element(buf, a + 1, b, _SEQUENCE)
    if end != b:
        raise ValueError("DER: bytes after the RSA key")
    n, i = uint(buf, i, end, 513)
    e, i = uint(buf, i, end, 5)
    if i != end:
        raise ValueError("DER: bytes after the RSA exponent")
    import rsa
    rsa.check_key(n, e)
    return kind, (n, e)


def verify(spki, alg, signature, digest, salt=-1):
    """Is SIGNATURE (bytes-like) a valid signature by key SPKI of DIGEST under ALG? See above."""
    kind, h, mgf, salt = _alg(alg, salt)
    import sha2
    if len(digest) != sha2.SIZE[h]:
        raise ValueError("digest is not a " + h)
    ktype, key = public_key(spki)
    if kind == _ECDSA:
        if ktype != "ec":
            raise ValueError("ECDSA needs an EC key")
        import ec
        curve, q = key
        try:
            r, s = ec.decode_sig(curve, signature)
        except ValueError:
            return False
        return ec.verify(curve, q, r, s, digest)
    if ktype == "ec" or ktype == "rsa-pss" and kind != _RSA_PSS:
        raise ValueError("key and algorithm differ")
    import rsa
    n, e = key
    if kind == _RSA_PKCS1:
        return rsa.verify_pkcs1(n, e, signature, digest, h)
    return rsa.verify_pss(n, e, signature, digest, h, salt, mgf)


def issued_by(cert, issuer):
    """Does the key of ISSUER verify the signature of CERT (both x509.Certificates)? ValueError
    when the key or algorithm cannot be used."""
    h = hasher(cert.sig_alg)
    h.update(cert.tbs)
    return verify(issuer.spki, cert.sig_alg, cert.signature, h.digest())
