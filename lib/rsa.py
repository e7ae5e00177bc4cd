"""RSA signature verification (RFC 8017): RSASSA-PKCS1-v1_5 and RSASSA-PSS with MGF1.

    rsa.verify_pkcs1(n, e, sig, digest, "sha256")           # True or False
    rsa.verify_pss(n, e, sig, digest, "sha256")             # salt length read from the signature
    rsa.verify_pss(n, e, sig, digest, "sha384", salt=48, mgf="sha384")

N and E are the public key's ints, SIG the signature octets (exactly as long as N), DIGEST the
message's hash by HNAME ("sha256", "sha384", "sha512"). Keys of MIN_BITS to MAX_BITS bits with
an odd exponent 3 <= e < 2^32; for another key ValueError, for a bad signature False.
Only public data is handled here, so nothing needs to be constant-time.
"""
from micropython import const

import sha2

MIN_BITS = const(2048)
MAX_BITS = const(4096)

# DigestInfo DER before the digest: SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING }
_INFO = {
    "sha256": b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20",
    "sha384": b"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30",
    "sha512": b"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40",
}


def bits(v):
    """Bit length of V > 0 (MicroPython's int has no bit_length)."""
    h = "%x" % v
    t = int(h[0], 16)
    return 4 * len(h) - (3 if t == 1 else 2 if t < 4 else 1 if t < 8 else 0)


def check_key(n, e):
    """ValueError unless (N, E) is a public key this module verifies with."""
    if not (n & 1 and MIN_BITS <= bits(n) <= MAX_BITS):
        raise ValueError("rsa: modulus of %d bits" % bits(n) if n > 0 else "rsa: bad modulus")
    if not (e & 1 and 3 <= e < 1 << 32 and e < n):
        raise ValueError("rsa: bad public exponent")


def _open(n, e, sig, digest, hname):
    """The encoded message s^e mod n, as many octets as N; None if SIG is not a signature value."""
    check_key(n, e)
    if sha2.SIZE.get(hname) != len(digest):
        raise ValueError("rsa: digest is not a %s" % hname)
    k = (bits(n) + 7) // 8
    if len(sig) != k:
        return None
    s = int.from_bytes(sig, "big")
    if s >= n:
        return None
    return pow(s, e, n).to_bytes(k, "big")


def verify_pkcs1(n, e, sig, digest, hname):
    """RSASSA-PKCS1-v1_5: the encoded message must be exactly 00 01 FF.. 00 DigestInfo (with
    the NULL parameters; no other form is accepted)."""
    em = _open(n, e, sig, digest, hname)
    if em is None:
        return False
    t = _INFO[hname]
    pad = len(em) - len(t) - len(digest) - 3
    return pad >= 8 and em == b"\x00\x01" + b"\xff" * pad + b"\x00" + t + bytes(digest)


def _mgf1(hname, seed, out):
    """XOR MGF1(SEED) into bytearray OUT."""
    n = len(out)
    i = 0
    c = 0
    while i < n:
        h = sha2.new(hname, seed)
        h.update(c.to_bytes(4, "big"))
        for b in h.digest():
            if i == n:
                break
            out[i] ^= b
            i += 1
        c += 1


def verify_pss(n, e, sig, digest, hname, salt=-1, mgf=None):
    """RSASSA-PSS (EMSA-PSS-VERIFY): SALT the salt length in octets, -1 whatever the signature
    holds; MGF the hash of MGF1 (default HNAME)."""
    em = _open(n, e, sig, digest, hname)
    if em is None:
        return False
    embits = bits(n) - 1
    if embits & 7 == 0:  # the top octet lies outside emBits: it must be 0
        if em[0]:
            return False
        em = em[1:]
    hlen = len(digest)
    if len(em) < hlen + 2 + max(salt, 0) or em[-1] != 0xBC:
        return False
    db = bytearray(em[: len(em) - hlen - 1])
    h = em[len(db) : -1]
    top = 0xFF >> (8 * len(em) - embits)
    if db[0] & ~top & 0xFF:
        return False
    _mgf1(mgf or hname, h, db)
    db[0] &= top
    i = 0
    while i < len(db) and not db[i]:
        i += 1
    if i == len(db) or db[i] != 1 or salt >= 0 and len(db) - i - 1 != salt:
        return False
    m = sha2.new(hname, bytes(8))
    m.update(digest)
    m.update(db[i + 1 :])
    return m.digest() == h
