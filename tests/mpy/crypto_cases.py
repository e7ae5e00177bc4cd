# MicroPython unit tests of lib/sha2.py, rsa.py, ec.py, sig.py and csr.py on the vectors
# test_crypto.make_vectors made with `cryptography` in $CRYPTO_DIR/vectors.json. make_key_and_csr and
# tls_client are steps of test_crypto.py's TLS test (run on their own, not as test_* cases).
import binascii
import hashlib
import json
import os

import csr
import ec
import sha2
import sha512
import sig
import x509

PYTEST = {"timeout": 300, "fixtures": {"CRYPTO_DIR": "crypto_vectors"}}  # how tests/conftest.py runs these cases

_H = binascii.unhexlify


def _vectors():
    with open(os.getenv("CRYPTO_DIR") + "/vectors.json") as f:
        return json.load(f)


def _alg(v):
    a = v["alg"]
    return a if isinstance(a, str) else _H(a["der"])


def _sample(n, count=24):
    """About COUNT positions spread over 0..N-1, the first and last included."""
    return sorted(set(list(range(0, n, max(1, n // count))) + [n - 1]))


def _flips(b):
    """B with one bit changed, at a sample of positions (a different bit at each)."""
    for i in _sample(len(b)):
        m = bytearray(b)
        m[i] ^= 1 << (i % 8)
        yield m


def _mutations(b):
    yield from _flips(b)
    for n in (0, 1, len(b) // 2, len(b) - 1):
        yield b[:n]
    yield b + b"\x00"
    yield b + bytes(16)
    yield b"\x00" + b


def _rejected(f, *args):
    """F(*ARGS) returns False or raises ValueError; nothing else."""
    try:
        r = f(*args)
    except ValueError:
        return True
    assert r is False, (f, r)
    return True


# -- SHA-2 ------------------------------------------------------------------------------------

def test_sha2_matches_hashlib_in_any_chunking():
    data = bytes(i * 7 & 0xFF for i in range(4097))
    for v in _vectors()["sha"]:
        want = _H(v["digest"])
        n = v["n"]
        makers = [lambda: sha2.new(v["name"])]
        if v["name"] != "sha256":
            makers.append(lambda: sha512.SHA512(v["name"]))  # the Python one, whatever hashlib has
        for make in makers:
            for step in (n or 1, 1, 7, 128, 129, 1000):
                if step == 1 and n > 300:
                    continue
                h = make()
                for i in range(0, n, step):
                    h.update(data[i : min(i + step, n)])
                assert h.digest() == want, (v["name"], n, step)


def test_sha2_python_digest_is_repeatable_and_names_are_checked():
    h = sha512.SHA512("sha384", b"abc")
    d = h.digest()
    assert h.digest() == d and len(d) == 48
    h.update(b"d")
    assert h.digest() == sha2.new("sha384", b"abcd").digest() != d
    assert isinstance(sha2.new("sha384"), sha512.SHA512) == (not hasattr(hashlib, "sha384"))
    for bad in ("md5", "sha1", "SHA256", "", None):
        try:
            sha2.new(bad)
            assert False, bad
        except ValueError:
            pass
    assert sha2.new("sha256", b"abc").digest() == hashlib.sha256(b"abc").digest()


# -- signatures -------------------------------------------------------------------------------

def test_every_signature_verifies():
    for v in _vectors()["sigs"]:
        assert sig.verify(_H(v["spki"]), _alg(v), _H(v["sig"]), _H(v["digest"])) is True, v["id"]
        assert sig.hasher(_alg(v)).digest() == sha2.new(v["alg"][-6:] if isinstance(v["alg"], str)
                                                        else "sha256").digest(), v["id"]


def test_an_oid_alone_names_an_algorithm_without_parameters():
    for v in _vectors()["sigs"]:
        if v["id"] in ("p256-ecdsa-der", "rsa2048-pkcs1-der"):
            ident = _alg(v)
            oid = ident[2 : 4 + ident[3]]  # the OID element inside the AlgorithmIdentifier
            assert oid[0] == 6
            assert sig.verify(_H(v["spki"]), oid, _H(v["sig"]), _H(v["digest"])) is True, v["id"]
            assert _rejected(sig.verify, _H(v["spki"]), oid + b"\x05\x00", _H(v["sig"]), _H(v["digest"]))
        if v["id"] == "rsa2048-pss-der-sha256-mgf512-salt20":
            oid = _alg(v)[2:13]
            assert oid == b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a"
            assert _rejected(sig.verify, _H(v["spki"]), oid, _H(v["sig"]), _H(v["digest"]))


def test_pss_salt_length_auto_or_stated():
    for v in _vectors()["sigs"]:
        if "salt" not in v:
            continue
        args = (_H(v["spki"]), _alg(v), _H(v["sig"]), _H(v["digest"]))
        assert sig.verify(*args, salt=v["salt"]) is True, v["id"]
        assert sig.verify(*args, salt=v["salt"] + 1) is False, v["id"]
        if v["salt"]:
            assert sig.verify(*args, salt=v["salt"] - 1) is False, v["id"]


def test_pss_algorithm_identifier_is_enforced():
    """The DER vector says SHA-256, MGF1 with SHA-512, salt 20: change any of them and it fails."""
    for v in _vectors()["sigs"]:
        if "der" not in v["id"] or "pss" not in v["id"]:
            continue
        args = (_H(v["spki"]), None, _H(v["sig"]), _H(v["digest"]))
        alg = _H(v["alg"]["der"])
        assert sig.verify(args[0], alg, args[2], args[3]) is True
        salt = alg.rfind(b"\xa2\x03\x02\x01\x14")
        other_mgf = alg.replace(b"\x04\x02\x03\x05\x00", b"\x04\x02\x01\x05\x00")
        other_salt = alg[: salt + 4] + b"\x15"
        for a in (other_mgf, other_salt, alg.replace(b"\x01\x01\x08", b"\x01\x01\x09")):
            assert a != alg
            assert _rejected(sig.verify, args[0], a, args[2], args[3])
        assert sig.verify(args[0], "rsa-pss-sha256", args[2], args[3]) is False  # MGF1 is SHA-256 then


def test_every_mutated_signature_is_false():
    count = 0
    for v in _vectors()["sigs"]:
        key, alg, good, digest = _H(v["spki"]), _alg(v), _H(v["sig"]), _H(v["digest"])
        for m in _mutations(good):
            assert sig.verify(key, alg, m, digest) is False, (v["id"], binascii.hexlify(m))
            count += 1
        used = digest
        if v["id"].startswith("p"):  # ECDSA reads the leftmost bits of the digest, as many as n has
            used = digest[: sig.public_key(key)[1][0].size]
        for m in _flips(used):
            assert sig.verify(key, alg, good, m + digest[len(used) :]) is False, v["id"]
            count += 1
    assert count > 29 * 30
    print("mutations rejected:", count)


def test_a_signature_does_not_verify_with_another_key():
    vs = _vectors()["sigs"]
    for v in vs:
        for w in vs:
            if w["spki"] != v["spki"] and w["id"][:3] == v["id"][:3]:  # same kind of key
                assert _rejected(sig.verify, _H(w["spki"]), _alg(v), _H(v["sig"]), _H(v["digest"]))


def test_rsa_signature_values_out_of_range():
    for v in _vectors()["sigs"]:
        if not v["id"].startswith("rsa"):
            continue
        kind, (n, e) = sig.public_key(_H(v["spki"]))
        k = len(_H(v["sig"]))
        for s in (0, 1, n - 1, n, n + 1, (1 << 8 * k) - 1):
            if s < 1 << 8 * k:
                assert sig.verify(_H(v["spki"]), _alg(v), s.to_bytes(k, "big"), _H(v["digest"])) is False
        good = int.from_bytes(_H(v["sig"]), "big")
        if good + n < 1 << 8 * k:  # the same value mod n, not reduced: refused
            assert sig.verify(_H(v["spki"]), _alg(v), (good + n).to_bytes(k, "big"), _H(v["digest"])) is False


def _int(content):
    return b"\x02" + bytes((len(content),)) + content


def _seq(body):
    return b"\x30" + bytes((len(body),)) + body


def _minimal(v):
    """The content octets of V as a DER INTEGER."""
    return ec._der_int(v)[2:]


def test_ecdsa_signatures_must_be_strict_der_in_range():
    for v in _vectors()["sigs"]:
        if not v["id"].startswith("p"):
            continue
        key, alg, good, digest = _H(v["spki"]), _alg(v), _H(v["sig"]), _H(v["digest"])
        curve = sig.public_key(key)[1][0]
        r, s = ec.decode_sig(curve, good)
        assert ec.encode_sig(r, s) == good, v["id"]  # what cryptography made is minimal DER
        n = curve.n
        R, S = _minimal(r), _minimal(s)
        bad = [
            ec.encode_sig(0, s), ec.encode_sig(r, 0), ec.encode_sig(n, s), ec.encode_sig(r, n),
            ec.encode_sig(r + n, s), ec.encode_sig(r, s + n), ec.encode_sig(n - r, s),
            _seq(_int(b"\x00" + R) + _int(S)),  # not minimal
            _seq(_int(R) + _int(b"\x00" + S)),
            _seq(_int(b"\xff" + R) + _int(S)),  # negative
            _seq(_int(R) + _int(bytes((S[0] | 0x80,)) + S[1:] if S[0] else S[1:])),
            _seq(_int(R) + _int(S) + _int(b"\x01")),  # a third integer
            _seq(_int(R)),
            _seq(_int(R) + _int(S))[:-1],
            b"\x30\x81" + _seq(_int(R) + _int(S))[1:],  # long length form for a short length
            b"\x31" + good[1:], b"\x30" + bytes((good[1] + 1,)) + good[2:],
            good[:2] + b"\x03" + good[3:],  # r as a BIT STRING
            _seq(b"\x02\x00" + _int(S)),  # empty integer
            _seq(b"\x02\x81" + bytes((len(R),)) + R + _int(S)),
            r.to_bytes(curve.size, "big") + s.to_bytes(curve.size, "big"),  # raw r || s (IEEE P1363)
            good + b"\x00", b"", b"\x30", b"\x30\x00", b"\x30\x80" + good[2:] + b"\x00\x00",
        ]
        for i, b in enumerate(bad):
            assert b != good, i
            assert sig.verify(key, alg, b, digest) is False, (v["id"], i)
            try:
                ec.decode_sig(curve, b)
                assert i == 6, ("decoded", i)  # n - r: well formed, the wrong r
            except ValueError:
                pass
        assert sig.verify(key, alg, ec.encode_sig(r, n - s), digest) is True  # ECDSA's (r, -s)


def test_hostile_keys_and_algorithms_raise_value_error_only():
    vs = _vectors()["sigs"]
    picks = [v for v in vs if v["id"] in ("rsa2048-pkcs1-sha256", "rsa4096-pss-der-sha256-mgf512-salt20",
                                            "p256-ecdsa-sha256", "p384-ecdsa-sha384", "rsa2048-pkcs1-der",
                                            "p256-ecdsa-der")]
    assert len(picks) == 6
    tried = 0
    for v in picks:
        key, alg, good, digest = _H(v["spki"]), _alg(v), _H(v["sig"]), _H(v["digest"])
        for m in _mutations(key):
            assert _rejected(sig.verify, m, alg, good, digest), v["id"]
            tried += 1
        if not isinstance(alg, str):
            for m in _mutations(alg):
                assert _rejected(sig.verify, key, m, good, digest), v["id"]
                tried += 1
    print("hostile keys / algorithms:", tried)


def test_random_bytes_never_raise_anything_but_value_error():
    v = _vectors()["sigs"][0]
    key, alg, good, digest = _H(v["spki"]), _alg(v), _H(v["sig"]), _H(v["digest"])
    x = 12345
    for i in range(300):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        n = x % 40
        junk = bytearray()
        for _ in range(n):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            junk.append(x >> 16 & 0xFF)
        prefix = (b"", b"\x30", b"\x30\x82", b"\x06\x09")[i % 4]
        for args in ((prefix + junk, alg, good, digest), (key, prefix + junk, good, digest),
                     (key, alg, prefix + junk, digest)):
            assert _rejected(sig.verify, *args)
    for a in ("", "rsa", "rsa-pkcs1", "rsa-pkcs1-sha1", "ecdsa-md5", "-", "rsa-pss-sha256-"):
        assert _rejected(sig.verify, key, a, good, digest)
    assert _rejected(sig.verify, key, alg, good, digest[:-1])


def test_unusable_keys_raise_value_error():
    v = _vectors()
    for k in v["bad_keys"]:
        for a in ("rsa-pkcs1-sha256", "ecdsa-sha256"):
            try:
                sig.verify(_H(k), a, b"\x00" * 256, bytes(32))
                assert False, k[:40]
            except ValueError:
                pass
    rsa_key = _H(v["sigs"][0]["spki"])
    ec_key = [_H(s["spki"]) for s in v["sigs"] if s["id"].startswith("p256")][0]
    for key, alg in ((rsa_key, "ecdsa-sha256"), (ec_key, "rsa-pkcs1-sha256"), (ec_key, "rsa-pss-sha256")):
        try:
            sig.verify(key, alg, b"\x30\x00", bytes(32))
            assert False, alg
        except ValueError:
            pass


def test_an_rsa_pss_key_verifies_pss_only():
    v = _vectors()
    pss_key = _H(v["pss_key"])
    s = [s for s in v["sigs"] if s["id"] == "rsa2048-pss-sha256-salt32"][0]
    assert sig.public_key(pss_key)[0] == "rsa-pss"
    assert sig.verify(pss_key, "rsa-pss-sha256", _H(s["sig"]), _H(s["digest"])) is True
    p = [s for s in v["sigs"] if s["id"] == "rsa2048-pkcs1-sha256"][0]
    try:
        sig.verify(pss_key, "rsa-pkcs1-sha256", _H(p["sig"]), _H(p["digest"]))
        assert False
    except ValueError:
        pass


# -- certificates -----------------------------------------------------------------------------

def test_certificates_are_issued_by_their_ca_only():
    certs = _vectors()["certs"]
    for c in certs:
        ca, leaf = x509.Certificate(_H(c["ca"])), x509.Certificate(_H(c["leaf"]))
        assert sig.issued_by(leaf, ca) is True, c["id"]
        assert sig.issued_by(ca, ca) is True, c["id"]
        assert bytes(leaf.issuer) == bytes(ca.subject)
        for o in certs:
            other = x509.Certificate(_H(o["ca"]))
            if bytes(other.spki) != bytes(ca.spki):  # rsa2048-pkcs1 and rsa2048-pss share a key
                assert _rejected(sig.issued_by, leaf, other), (c["id"], o["id"])


def test_certificate_fields_for_signature_checks():
    for c in _vectors()["certs"]:
        ca, leaf = x509.Certificate(_H(c["ca"])), x509.Certificate(_H(c["leaf"]))
        assert bytes(ca.spki) == _H(c["ca_spki"]), c["id"]
        assert bytes(leaf.tbs) == _H(c["leaf_tbs"]) and bytes(leaf.signature) == _H(c["leaf_sig"]), c["id"]
        assert bytes(leaf.sig_alg) == bytes(ca.sig_alg), c["id"]


def test_x509_is_strict_der():
    der = _H(_vectors()["certs"][0]["leaf"])
    assert der[1] == 0x82  # a two-octet length
    c = x509.Certificate(der)
    tbs_alg = bytes(der).find(bytes(c.sig_alg))  # the copy inside tbsCertificate comes first
    assert 0 < tbs_alg < len(c.tbs)
    other_alg = bytearray(der)
    other_alg[tbs_alg + len(c.sig_alg) - 3] ^= 1  # its OID's last octet (NULL follows)
    for bad, why in ((der + b"\x00", "after"), (der[:1] + b"\x83\x00" + der[2:], "minimal"),
                     (other_alg, "differ")):
        try:
            x509.Certificate(bad)
            assert False, why
        except ValueError as e:
            assert why in str(e), (why, e)
    buf = b"\x02\x02\x00\x7f\x02\x01\x80\x02\x00\x02\x02\xff\x01\x02\x02\x00\x80"
    for i in (0, 4, 7, 9):
        try:
            x509.uint(buf, i, len(buf))
            assert False, i
        except ValueError:
            pass
    assert x509.uint(buf, 13, len(buf)) == (0x80, 17)


def test_mutated_certificates_are_not_issued():
    tried = 0
    for c in _vectors()["certs"]:
        ca = x509.Certificate(_H(c["ca"]))
        leaf = _H(c["leaf"])
        for m in _mutations(leaf):
            try:
                assert _rejected(sig.issued_by, x509.Certificate(m), ca), c["id"]
            except ValueError:
                pass
            tried += 1
    print("mutated certificates:", tried)


# -- ECDSA signing, keys, CSRs ------------------------------------------------------------------

def test_rfc6979_nonces_match_cryptography():
    for v in _vectors()["det"]:
        c = ec.P256 if v["curve"] == "secp256r1" else ec.P384
        d, digest = int(v["d"], 16), _H(v["digest"])
        assert ec.sign(c, d, digest, v["hash"], extra=b"") == (int(v["r"], 16), int(v["s"], 16)), v
        r, s = ec.sign(c, d, digest, v["hash"])  # hedged: random extra input
        assert (r, s) != (int(v["r"], 16), int(v["s"], 16))
        assert ec.verify(c, ec.public(c, d), r, s, digest)


def test_points_and_scalars():
    for c in (ec.P256, ec.P384):
        assert ec.on_curve(c, *c.g)
        assert ec._mul(c, ((c.n, c.gtable(), 5),))[2] == 0  # n G = infinity
        d = ec.keygen(c)
        assert 0 < d < c.n
        q = ec.public(c, d)
        full = ec.encode_point(c, q)
        short = bytes((2 + (q[1] & 1),)) + full[1 : 1 + c.size]
        assert ec.decode_point(c, full) == q == ec.decode_point(c, short)
        assert ec.public(c, 1) == c.g and ec.public(c, c.n - 1) == (c.g[0], c.p - c.g[1])
        for bad in (full[:-1], full + b"\x00", b"\x04" + bytes(2 * c.size), b"\x05" + full[1:],
                    b"\x04" + full[1:-1] + bytes((full[-1] ^ 1,)), b"\x04" + c.p.to_bytes(c.size, "big") * 2,
                    bytes((5 - short[0],)) + short[1:-1] + bytes((short[-1] ^ 1,))):
            try:
                assert ec.decode_point(c, bad) != q
            except ValueError:
                pass
    assert ec.encode_sig(0x80, 1) == b"\x30\x07\x02\x02\x00\x80\x02\x01\x01"


def test_a_device_key_signs_a_csr_that_verifies():
    d = csr.new_key()
    req = memoryview(csr.request(d, "CP001", "Example CPO"))
    # CertificationRequest: SEQUENCE { info, AlgorithmIdentifier, BIT STRING }
    _, i, end = x509.element(req, 0, len(req), 0x30)
    a, i = i, x509.element(req, i, end, 0x30)[2]
    info = req[a:i]
    a, i = i, x509.element(req, i, end, 0x30)[2]
    alg = req[a:i]
    _, a, b = x509.element(req, i, end, 0x03)
    spki = csr.spki(d)
    assert bytes(info).find(spki) > 0 and bytes(info).find(b"\x0c\x0bExample CPO") > 0
    assert sig.verify(spki, alg, req[a + 1 : b], hashlib.sha256(info).digest()) is True
    assert sig.verify(spki, "ecdsa-sha256", req[a + 1 : b], hashlib.sha256(b"other").digest()) is False
    for form in ("pkcs8", "sec1"):
        k = csr.private_key(d, form)
        assert bytes(k).find(d.to_bytes(32, "big")) > 0
    try:
        csr.request(d, "")
        assert False
    except ValueError:
        pass


# -- steps of test_crypto.py's TLS test -------------------------------------------------------

def make_key_and_csr():
    out = os.getenv("CRYPTO_OUT") + "/"
    d = csr.new_key()
    for name, data in (("cp.key", csr.private_key(d)), ("cp.sec1", csr.private_key(d, "sec1")),
                       ("cp.csr", csr.request(d, "CP001", "Example CPO"))):
        with open(out + name, "wb") as f:
            f.write(data)
    signed = []
    for i in range(5):
        msg = "message %d" % i
        r, s = ec.sign(ec.P256, d, hashlib.sha256(msg.encode()).digest())
        signed.append({"msg": msg, "sig": binascii.hexlify(ec.encode_sig(r, s)).decode()})
    with open(out + "signed.json", "w") as f:
        json.dump(signed, f)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def tls_client():
    import socket
    import ssl
    out = os.getenv("CRYPTO_OUT") + "/"
    cert = _read(out + "cp.der")
    for key in ("cp.key", "cp.sec1"):
        assert x509.pairs(x509.Certificate(cert), _read(out + key)), key
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=_read(out + "ca.der"))
        ctx.load_cert_chain(cert, _read(out + key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        s = socket.socket()
        s.connect(socket.getaddrinfo("127.0.0.1", int(os.getenv("CRYPTO_PORT")))[0][-1])
        t = ctx.wrap_socket(s, server_hostname="localhost")
        line = t.readline()
        t.close()
        assert line == b"organizationName=Example CPO,commonName=CP001\n", line
