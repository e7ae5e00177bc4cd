"""Elliptic curves P-256 and P-384 (NIST / SEC 2, a = -3): ECDSA verification, signing, keys.

    d = ec.keygen(ec.P256)                      # private scalar from os.urandom
    q = ec.public(ec.P256, d)                   # its public point (x, y)
    ec.encode_point(ec.P256, q)                 # 04 || X || Y, as a SubjectPublicKeyInfo holds it
    r, s = ec.sign(ec.P256, d, digest)          # digest: the message's SHA-256 (bytes)
    der = ec.encode_sig(r, s)                   # Ecdsa-Sig-Value: SEQUENCE { r, s }
    r, s = ec.decode_sig(ec.P256, der)          # strict DER, 0 < r, s < n, else ValueError
    ec.verify(ec.P256, q, r, s, digest)         # True or False
    q = ec.decode_point(ec.P256, octets)        # 04 || X || Y or compressed; ValueError unless on the curve

Points are Jacobian (X, Y, Z) inside (Z = 0: the point at infinity), affine (x, y) outside.
Scalar multiplication uses width-w NAF digits over precomputed odd multiples in affine form
(mixed additions); verification interleaves u1*G and u2*Q (Shamir/Straus), and the odd multiples
of G are kept per curve once made (8 points).

Signing nonces follow RFC 6979 (HMAC-DRBG on the key and the digest) with 32 random bytes of
extra input by default (RFC 6979 section 3.6: a deterministic fallback if the RNG is weak, a
random k if it is not); extra=b"" gives the plain deterministic k of the RFC.

Side channels: Python's big ints are not constant-time, so every multiplication by a secret
scalar (key generation, public(), signing) is blinded: the scalar gets a random multiple of the
group order added (k + m*n, m of 64 random bits), so the NAF digits and their timing change on
every call, and the first point of the sum gets random Jacobian coordinates. The modular inverse
of k is blinded too. What remains (timing of the blinded operations, power analysis on the
device) is accepted: keys are made once and signing happens for a certificate request, which
an attacker can neither trigger at will nor time precisely over a network.
"""
import os

from micropython import const

_W_G = const(5)  # NAF width of the cached multiples of G: 8 points
_W_Q = const(4)  # NAF width of another point (verification): 4 points


class Curve:
    """y^2 = x^3 - 3x + b over GF(p), base point (gx, gy) of prime order n; SIZE octets per
    coordinate, BITS the bit length of n."""

    def __init__(self, name, size, p, b, n, gx, gy):
        self.name = name
        self.size = size
        self.bits = size * 8
        self.p = p
        self.b = b
        self.n = n
        self.g = (gx, gy)
        self._gt = None  # odd multiples of G, made on first use

    def gtable(self):
        if self._gt is None:
            self._gt = _table(self.g, _W_G, self.p)
        return self._gt


P256 = Curve(
    "P-256", 32,
    0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
P384 = Curve(
    "P-384", 48,
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
    0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
    0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
)


# --- point arithmetic (Jacobian; a = -3) ---

def _dbl(X, Y, Z, p):
    if not Z or not Y:
        return 1, 1, 0
    d = Z * Z % p
    m = 3 * (X - d) * (X + d) % p
    y2 = Y * Y % p
    s = 4 * X * y2 % p
    X3 = (m * m - 2 * s) % p
    return X3, (m * (s - X3) - 8 * y2 * y2) % p, 2 * Y * Z % p


def _madd(X, Y, Z, x, y, p):
    """(X, Y, Z) + affine (x, y)."""
    if not Z:
        return x, y, 1
    z2 = Z * Z % p
    h = (x * z2 - X) % p
    r = (y * z2 % p * Z - Y) % p
    if not h:
        return _dbl(x, y, 1, p) if not r else (1, 1, 0)
    h2 = h * h % p
    h3 = h2 * h % p
    v = X * h2 % p
    X3 = (r * r - h3 - 2 * v) % p
    return X3, (r * (v - X3) - Y * h3) % p, Z * h % p


def _affine(pts, p):
    """Affine (x, y) of each Jacobian point of PTS (none at infinity): one inversion for all."""
    pre = []
    acc = 1
    for P in pts:
        pre.append(acc)
        acc = acc * P[2] % p
    inv = pow(acc, p - 2, p)
    out = [None] * len(pts)
    for i in range(len(pts) - 1, -1, -1):
        X, Y, Z = pts[i]
        zi = inv * pre[i] % p
        inv = inv * Z % p
        z2 = zi * zi % p
        out[i] = (X * z2 % p, Y * z2 % p * zi % p)
    return out


def _table(P, w, p):
    """[P, 3P, 5P, ..., (2^(w-1) - 1)P] in affine form, for NAF digits of width W."""
    x, y = P
    (x2, y2), = _affine((_dbl(x, y, 1, p),), p)
    pts = [(x, y, 1)]
    for _ in range((1 << (w - 2)) - 1):
        X, Y, Z = pts[-1]
        pts.append(_madd(X, Y, Z, x2, y2, p))
    return _affine(pts, p)


def _naf(k, w):
    """Width-W NAF digits of K >= 0, least significant first, as octets (two's complement)."""
    out = bytearray()
    m = 1 << w
    while k:
        if k & 1:
            d = k & (m - 1)
            if d >= m >> 1:
                d -= m
            k -= d
            out.append(d & 0xFF)
        else:
            out.append(0)
        k >>= 1
    return out


def _mul(c, terms, lam=1):
    """Jacobian sum of k*P for each (k, table of P, width) of TERMS. LAM: the first point added
    gets Jacobian coordinates (x lam^2, y lam^3, lam)."""
    p = c.p
    l2 = lam * lam % p
    l3 = l2 * lam % p
    terms = [(_naf(k, w), t) for k, t, w in terms]
    X = Y = 1
    Z = 0
    for i in range(max(len(d) for d, _ in terms) - 1, -1, -1):
        if Z:
            X, Y, Z = _dbl(X, Y, Z, p)
        for d, t in terms:
            if i < len(d) and d[i]:
                v = d[i]
                if v < 128:
                    x, y = t[v >> 1]
                else:
                    x, y = t[(256 - v) >> 1]
                    y = p - y
                if Z:
                    X, Y, Z = _madd(X, Y, Z, x, y, p)
                else:
                    X, Y, Z = x * l2 % p, y * l3 % p, lam
    return X, Y, Z


def _rand(n):
    """A random integer in [1, n)."""
    size = (_bits(n) + 7) // 8
    while True:
        k = int.from_bytes(os.urandom(size), "big")
        if 0 < k < n:
            return k


def _bits(v):
    """Bit length of V > 0 (MicroPython's int has no bit_length)."""
    h = "%x" % v
    t = int(h[0], 16)
    return 4 * len(h) - (3 if t == 1 else 2 if t < 4 else 1 if t < 8 else 0)


def _mulg(c, k):
    """Affine k*G for secret K, blinded: (k + m*n)*G with a random 64-bit m, random coordinates."""
    m = int.from_bytes(os.urandom(8), "big") | 1 << 63
    X, Y, Z = _mul(c, ((k + m * c.n, c.gtable(), _W_G),), _rand(c.p))
    if not Z:
        raise ValueError("ec: scalar is a multiple of the order")
    return _affine(((X, Y, Z),), c.p)[0]


# --- encodings ---

def on_curve(c, x, y):
    p = c.p
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + c.b)) % p == 0


def decode_point(c, data):
    """Affine (x, y) of SEC 1 octets DATA (04 X Y, or 02 / 03 X); ValueError unless a point of C
    other than infinity."""
    n = c.size
    if len(data) == 2 * n + 1 and data[0] == 4:
        x = int.from_bytes(data[1 : n + 1], "big")
        y = int.from_bytes(data[n + 1 :], "big")
    elif len(data) == n + 1 and data[0] in (2, 3):
        p = c.p
        x = int.from_bytes(data[1:], "big")
        if x >= p:
            raise ValueError("ec: not a point")
        y = pow((x * x * x - 3 * x + c.b) % p, (p + 1) // 4, p)  # p = 3 mod 4
        if y & 1 != data[0] & 1:
            y = p - y
    else:
        raise ValueError("ec: not a point encoding")
    if not on_curve(c, x, y):
        raise ValueError("ec: not a point")
    return x, y


def encode_point(c, q):
    """Uncompressed SEC 1 octets of affine point Q."""
    return b"\x04" + q[0].to_bytes(c.size, "big") + q[1].to_bytes(c.size, "big")


def _der_int(v):
    b = v.to_bytes((_bits(v) + 8) // 8 if v else 1, "big")  # room for a leading zero bit
    return b"\x02" + bytes((len(b),)) + b


def encode_sig(r, s):
    """DER Ecdsa-Sig-Value of R and S (each below 2^1000)."""
    body = _der_int(r) + _der_int(s)
    n = len(body)
    return (b"\x30" + bytes((n,)) if n < 128 else b"\x30\x81" + bytes((n,))) + body


def decode_sig(c, der):
    """(r, s) of DER Ecdsa-Sig-Value DER for curve C; ValueError unless DER is exactly that,
    minimally encoded, with 0 < r, s < n."""
    from x509 import element, uint
    der = memoryview(der)
    _, i, end = element(der, 0, len(der), 0x30)
    if end != len(der):
        raise ValueError("ecdsa: bytes after the signature")
    r, i = uint(der, i, end, c.size + 1)
    s, i = uint(der, i, end, c.size + 1)
    if i != end:
        raise ValueError("ecdsa: bytes after s")
    if not (0 < r < c.n and 0 < s < c.n):
        raise ValueError("ecdsa: r or s out of range")
    return r, s


# --- ECDSA ---

def _z(c, digest):
    """The digest as an integer, cut to the bit length of n (SEC 1, RFC 6979 bits2int)."""
    z = int.from_bytes(digest, "big")
    extra = 8 * len(digest) - c.bits
    return z >> extra if extra > 0 else z


def verify(c, q, r, s, digest):
    """Is (R, S) an ECDSA signature of DIGEST by public point Q (affine, on C)?"""
    n = c.n
    p = c.p
    if not (0 < r < n and 0 < s < n):
        return False
    w = pow(s, n - 2, n)
    X, Y, Z = _mul(c, ((_z(c, digest) * w % n, c.gtable(), _W_G), (r * w % n, _table(q, _W_Q, p), _W_Q)))
    if not Z:
        return False
    z2 = Z * Z % p
    if X == r * z2 % p:  # x(R) mod n == r: x = r or, rarely, x = r + n
        return True
    r += n
    return r < p and X == r * z2 % p


def keygen(c):
    """A new private scalar d of curve C, from os.urandom."""
    return _rand(c.n)


def public(c, d):
    """The public point d*G of private scalar D."""
    return _mulg(c, d)


def _hmac(hname, key, *parts):
    import sha2
    size = sha2.BLOCK[hname]
    key = key + bytes(size - len(key))
    inner = sha2.new(hname, bytes(b ^ 0x36 for b in key))
    for m in parts:
        inner.update(m)
    return sha2.new(hname, bytes(b ^ 0x5C for b in key) + inner.digest()).digest()


def _nonces(c, d, digest, hname, extra):
    """RFC 6979 section 3.2 candidates k (with EXTRA as additional input, section 3.6)."""
    import sha2
    size = c.size
    x = d.to_bytes(size, "big")
    h1 = (_z(c, digest) % c.n).to_bytes(size, "big")
    hlen = sha2.SIZE[hname]
    v = b"\x01" * hlen
    k = bytes(hlen)
    k = _hmac(hname, k, v, b"\x00", x, h1, extra)
    v = _hmac(hname, k, v)
    k = _hmac(hname, k, v, b"\x01", x, h1, extra)
    v = _hmac(hname, k, v)
    while True:
        t = b""
        while len(t) < size:
            v = _hmac(hname, k, v)
            t += v
        cand = _z(c, t[:size])
        if 0 < cand < c.n:
            yield cand
        k = _hmac(hname, k, v, b"\x00")
        v = _hmac(hname, k, v)


def sign(c, d, digest, hname="sha256", extra=None):
    """ECDSA signature (r, s) of DIGEST (made with hash HNAME) by private scalar D. EXTRA: the
    additional input of the nonce generator; None = 32 fresh random bytes, b"" = RFC 6979's
    deterministic k."""
    n = c.n
    if not 0 < d < n:
        raise ValueError("ec: private scalar out of range")
    e = _z(c, digest)
    for k in _nonces(c, d, digest, hname, os.urandom(32) if extra is None else extra):
        r = _mulg(c, k)[0] % n
        if not r:
            continue
        b = _rand(n)  # (k b)^-1 b = k^-1, without inverting k itself
        s = pow(k * b % n, n - 2, n) * (b * ((e + r * d) % n) % n) % n
        if s:
            return r, s
