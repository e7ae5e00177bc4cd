"""SHA-384 and SHA-512 (FIPS 180-4) in Python, streaming, for ports whose hashlib lacks them.

    h = sha512.SHA512("sha384")  # or "sha512"
    h.update(chunk); ...
    h.digest()                   # unlike hashlib's, digest() leaves the object usable

The words are 64-bit, which are big ints on the device: about half a millisecond per 128-byte
block on a PC, far more on an ESP32. Enough for certificates and signatures, not for megabytes
(use sha2.new(), which prefers hashlib's).
"""
_M = 0xFFFFFFFFFFFFFFFF
_K = None  # the 80 round constants, made on first use
_K_HEX = (  # one string
    "428a2f98d728ae227137449123ef65cdb5c0fbcfec4d3b2fe9b5dba58189dbbc3956c25bf348b53859f111f1b605d019"
    "923f82a4af194f9bab1c5ed5da6d8118d807aa98a303024212835b0145706fbe243185be4ee4b28c550c7dc3d5ffb4e2"
    "72be5d74f27b896f80deb1fe3b1696b19bdc06a725c71235c19bf174cf692694e49b69c19ef14ad2efbe4786384f25e3"
    "0fc19dc68b8cd5b5240ca1cc77ac9c652de92c6f592b02754a7484aa6ea6e4835cb0a9dcbd41fbd476f988da831153b5"
    "983e5152ee66dfaba831c66d2db43210b00327c898fb213fbf597fc7beef0ee4c6e00bf33da88fc2d5a79147930aa725"
    "06ca6351e003826f142929670a0e6e7027b70a8546d22ffc2e1b21385c26c9264d2c6dfc5ac42aed53380d139d95b3df"
    "650a73548baf63de766a0abb3c77b2a881c2c92e47edaee692722c851482353ba2bfe8a14cf10364a81a664bbc423001"
    "c24b8b70d0f89791c76c51a30654be30d192e819d6ef5218d69906245565a910f40e35855771202a106aa07032bbd1b8"
    "19a4c116b8d2d0c81e376c085141ab532748774cdf8eeb9934b0bcb5e19b48a8391c0cb3c5c95a634ed8aa4ae3418acb"
    "5b9cca4f7763e373682e6ff3d6b2b8a3748f82ee5defb2fc78a5636f43172f6084c87814a1f0ab728cc702081a6439ec"
    "90befffa23631e28a4506cebde82bde9bef9a3f7b2c67915c67178f2e372532bca273eceea26619cd186b8c721c0c207"
    "eada7dd6cde0eb1ef57d4f7fee6ed17806f067aa72176fba0a637dc5a2c898a6113f9804bef90dae1b710b35131c471b"
    "28db77f523047d8432caab7b40c724933c9ebe0a15c9bebc431d67c49c100d4c4cc5d4becb3e42b6597f299cfc657e2a"
    "5fcb6fab3ad6faec6c44198c4a475817"
)
_IV = {
    "sha384": (0xCBBB9D5DC1059ED8, 0x629A292A367CD507, 0x9159015A3070DD17, 0x152FECD8F70E5939,
               0x67332667FFC00B31, 0x8EB44A8768581511, 0xDB0C2E0D64F98FA7, 0x47B5481DBEFA4FA4),
    "sha512": (0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
               0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179),
}


def _compress(h, b, K):
    """Fold 128-byte block B (bytes-like) into state H (list of 8 ints)."""
    M = _M
    w = [int.from_bytes(b[i : i + 8], "big") for i in range(0, 128, 8)]
    for t in range(16, 80):
        x = w[t - 15]
        y = w[t - 2]
        s0 = ((x >> 1 | x << 63) ^ (x >> 8 | x << 56) ^ x >> 7) & M
        s1 = ((y >> 19 | y << 45) ^ (y >> 61 | y << 3) ^ y >> 6) & M
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & M)
    a, b, c, d, e, f, g, hh = h
    for t in range(80):
        s1 = (e >> 14 | e << 50) ^ (e >> 18 | e << 46) ^ (e >> 41 | e << 23)
        t1 = hh + (s1 & M) + ((e & f) ^ (e ^ M) & g) + K[t] + w[t]
        s0 = (a >> 28 | a << 36) ^ (a >> 34 | a << 30) ^ (a >> 39 | a << 25)
        t2 = (s0 & M) + ((a & b) ^ (a & c) ^ (b & c))
        hh = g
        g = f
        f = e
        e = (d + t1) & M
        d = c
        c = b
        b = a
        a = (t1 + t2) & M
    for i, v in enumerate((a, b, c, d, e, f, g, hh)):
        h[i] = (h[i] + v) & M


class SHA512:
    """SHA-384 or SHA-512 (NAME) in Python: update() and digest() as hashlib's objects."""

    def __init__(self, name="sha512", data=None):
        global _K
        if _K is None:
            import binascii
            k = binascii.unhexlify(_K_HEX)
            _K = tuple(int.from_bytes(k[i : i + 8], "big") for i in range(0, 640, 8))
        if name not in _IV:
            raise ValueError("not sha384 or sha512: " + str(name))
        self._h = list(_IV[name])
        self._size = 48 if name == "sha384" else 64
        self._buf = bytearray()
        self._n = 0  # bytes hashed
        if data:
            self.update(data)

    def update(self, data):
        data = memoryview(data)
        self._n += len(data)
        buf = self._buf
        i = 0
        if buf:
            i = min(128 - len(buf), len(data))
            buf.extend(data[:i])
            if len(buf) < 128:
                return
            _compress(self._h, buf, _K)
            buf[:] = b""
        end = len(data) - 127
        while i < end:
            _compress(self._h, data[i : i + 128], _K)
            i += 128
        buf.extend(data[i:])

    def digest(self):
        h = list(self._h)
        tail = bytearray(self._buf)
        tail.append(0x80)
        tail.extend(bytes((112 - len(tail)) % 128))
        tail.extend((self._n * 8).to_bytes(16, "big"))
        for i in range(0, len(tail), 128):
            _compress(h, memoryview(tail)[i : i + 128], _K)
        return b"".join(v.to_bytes(8, "big") for v in h)[: self._size]
