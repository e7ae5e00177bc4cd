"""lib/sha2, rsa, ec, sig and csr under MicroPython, against the `cryptography` package.

Here (CPython) `cryptography` makes the vectors: signatures of every kind (RSA 2048 / 3072 / 4096
with PKCS#1 v1.5 and PSS, ECDSA on P-256 and P-384), certificates signed each way, RFC 6979
deterministic ECDSA signatures and SHA-2 digests, all in vectors.json. The cases in
tests/mpy/crypto_cases.py verify each one and reject every mutation of it. Then a key and a CSR
made under micropython are checked here, certified by a test CA, and used by MicroPython's ssl
for a TLS connection to a CPython server that requires a client certificate."""
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
import threading

import pytest

from mpyrun import run_case

cryptography = pytest.importorskip("cryptography")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

HASH = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
HASH_OID = {"sha256": "608648016503040201", "sha384": "608648016503040202", "sha512": "608648016503040203"}
RSA_PSS = "2a864886f70d01010a"
MGF1 = "2a864886f70d010108"
SHA_LENGTHS = (0, 1, 55, 56, 63, 64, 111, 112, 113, 127, 128, 129, 255, 256, 1000, 4097)


def der(tag, body):
    """DER element (bytes) of TAG with content BODY."""
    n = len(body)
    head = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 255])
    return bytes([tag]) + head + body


def oid(hexoid):
    return der(0x06, bytes.fromhex(hexoid))


def pss_alg(h, mgf, salt):
    """AlgorithmIdentifier of RSASSA-PSS with hash H, MGF1 over MGF, SALT octets (RFC 4055)."""
    hash_alg = der(0x30, oid(HASH_OID[h]) + b"\x05\x00")
    mgf_alg = der(0x30, oid(MGF1) + der(0x30, oid(HASH_OID[mgf]) + b"\x05\x00"))
    params = der(0xA0, hash_alg) + der(0xA1, mgf_alg) + der(0xA2, der(0x02, bytes([salt])))
    return der(0x30, oid(RSA_PSS) + der(0x30, params))


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def name(cn, o=None):
    attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)] if o else []) + [
        x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    return x509.Name(attrs)


def certificate(subject, public_key, issuer, issuer_key, hname="sha256", pss=None, ca=False):
    """A certificate (cryptography object) valid for a day."""
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return b.sign(issuer_key, HASH[hname](), rsa_padding=pss)


def _pss(h, salt, mgf=None):
    return padding.PSS(mgf=padding.MGF1(HASH[mgf or h]()), salt_length=salt)


def signatures(keys):
    """Signature vectors: a message's digest signed by each key, each way."""
    out = []
    msg = b"uwallbox firmware image"

    def add(id_, key, alg, sig, h, **extra):
        out.append(dict(id=id_, spki=spki(key).hex(), alg=alg, sig=sig.hex(),
                        digest=hashlib.new(h, msg).hexdigest(), **extra))

    for bits in (2048, 3072, 4096):
        k = keys["rsa%d" % bits]
        for h in ("sha256", "sha384", "sha512"):
            add("rsa%d-pkcs1-%s" % (bits, h), k, "rsa-pkcs1-" + h, k.sign(msg, padding.PKCS1v15(), HASH[h]()), h)
        add("rsa%d-pss-sha256-salt32" % bits, k, "rsa-pss-sha256", k.sign(msg, _pss("sha256", 32), hashes.SHA256()),
            "sha256", salt=32)
        add("rsa%d-pss-sha384-saltmax" % bits, k, "rsa-pss-sha384",
            k.sign(msg, _pss("sha384", padding.PSS.MAX_LENGTH), hashes.SHA384()), "sha384",
            salt=bits // 8 - 48 - 2)
        add("rsa%d-pss-sha256-salt0" % bits, k, "rsa-pss-sha256", k.sign(msg, _pss("sha256", 0), hashes.SHA256()),
            "sha256", salt=0)
        add("rsa%d-pss-der-sha256-mgf512-salt20" % bits, k, {"der": pss_alg("sha256", "sha512", 20).hex()},
            k.sign(msg, _pss("sha256", 20, "sha512"), hashes.SHA256()), "sha256")
    pkcs1_der = der(0x30, oid("2a864886f70d01010b") + b"\x05\x00").hex()
    k = keys["rsa2048"]
    add("rsa2048-pkcs1-der", k, {"der": pkcs1_der}, k.sign(msg, padding.PKCS1v15(), hashes.SHA256()), "sha256")
    for curve, hs in (("p256", ("sha256", "sha384", "sha512")), ("p384", ("sha384", "sha256", "sha512"))):
        k = keys[curve]
        for h in hs:
            add("%s-ecdsa-%s" % (curve, h), k, "ecdsa-" + h, k.sign(msg, ec.ECDSA(HASH[h]())), h)
    ecdsa_der = der(0x30, oid("2a8648ce3d040302")).hex()
    add("p256-ecdsa-der", keys["p256"], {"der": ecdsa_der}, keys["p256"].sign(msg, ec.ECDSA(hashes.SHA256())), "sha256")
    return out


def certificates(keys):
    """A CA certificate per key and signature kind, and a leaf (P-256 key) it signed."""
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    out = []
    for id_, k, h, pss in (("rsa2048-pkcs1", "rsa2048", "sha256", None),
                           ("rsa3072-pss", "rsa3072", "sha384", _pss("sha384", padding.PSS.DIGEST_LENGTH)),
                           ("rsa4096-pkcs1", "rsa4096", "sha512", None),
                           ("rsa2048-pss", "rsa2048", "sha256", _pss("sha256", 32)),
                           ("p256", "p256", "sha256", None), ("p384", "p384", "sha384", None)):
        ca_name = name(id_ + " CA", "uwallbox test")
        ca = certificate(ca_name, keys[k].public_key(), ca_name, keys[k], h, pss, ca=True)
        leaf = certificate(name("CP001"), leaf_key.public_key(), ca_name, keys[k], h, pss)
        out.append(dict(id=id_, ca=ca.public_bytes(serialization.Encoding.DER).hex(),
                        leaf=leaf.public_bytes(serialization.Encoding.DER).hex(),
                        leaf_tbs=leaf.tbs_certificate_bytes.hex(), leaf_sig=leaf.signature.hex(),
                        ca_spki=spki(keys[k]).hex()))
    return out


def deterministic():
    """RFC 6979 signatures (cryptography's deterministic_signing) with their private scalars."""
    out = []
    for curve, h in ((ec.SECP256R1(), "sha256"), (ec.SECP384R1(), "sha384")):
        k = ec.generate_private_key(curve)
        for msg in (b"sample", b"test", b""):
            r, s = utils.decode_dss_signature(k.sign(msg, ec.ECDSA(HASH[h](), deterministic_signing=True)))
            out.append(dict(curve=curve.name, hash=h, d="%x" % k.private_numbers().private_value,
                            digest=hashlib.new(h, msg).hexdigest(), r="%x" % r, s="%x" % s))
    return out


def make_vectors(d):
    """vectors.json in folder D (the crypto_vectors fixture of conftest.py, for
    tests/mpy/crypto_cases.py)."""
    keys = {"rsa%d" % b: rsa.generate_private_key(65537, b) for b in (2048, 3072, 4096)}
    keys["p256"] = ec.generate_private_key(ec.SECP256R1())
    keys["p384"] = ec.generate_private_key(ec.SECP384R1())
    data = bytes(i * 7 & 0xFF for i in range(max(SHA_LENGTHS)))
    v = {
        "sha": [dict(name=h, n=n, digest=hashlib.new(h, data[:n]).hexdigest())
                for h in ("sha256", "sha384", "sha512") for n in SHA_LENGTHS],
        "sigs": signatures(keys),
        "certs": certificates(keys),
        "det": deterministic(),
        # keys sig.verify refuses: RSA too small or too large (by its limit), other curves
        "bad_keys": [spki(rsa.generate_private_key(65537, 1024)).hex(),
                     spki(rsa.generate_private_key(3, 4104)).hex(),
                     spki(ec.generate_private_key(ec.SECP521R1())).hex(),
                     spki(ec.generate_private_key(ec.SECP256K1())).hex()],
    }
    # the RSA 2048 key as an id-RSASSA-PSS key (parameters absent): for PSS only
    body = keys["rsa2048"].public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.PKCS1)
    v["pss_key"] = der(0x30, der(0x30, oid(RSA_PSS)) + der(0x03, b"\x00" + body)).hex()
    (d / "vectors.json").write_text(json.dumps(v))
    return d


def test_vectors_are_sound(crypto_vectors):
    """The oracle agrees with itself: every signature verifies with `cryptography`."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    v = json.loads((crypto_vectors / "vectors.json").read_text())
    assert len(v["sigs"]) == 3 * 7 + 1 + 6 + 1 and len(v["certs"]) == 6
    for s in v["sigs"]:
        key = load_der_public_key(bytes.fromhex(s["spki"]))
        h = s["alg"].rsplit("-", 1)[1] if isinstance(s["alg"], str) else "sha256"
        pre = utils.Prehashed(HASH[h]())
        sig, dig = bytes.fromhex(s["sig"]), bytes.fromhex(s["digest"])
        if s["id"].startswith("p"):
            key.verify(sig, dig, ec.ECDSA(pre))
        elif "pss" in s["id"]:
            mgf = "sha512" if "mgf512" in s["id"] else h
            key.verify(sig, dig, _pss(h, padding.PSS.AUTO, mgf), pre)
        else:
            key.verify(sig, dig, padding.PKCS1v15(), pre)
    for c in v["certs"]:
        ca = x509.load_der_x509_certificate(bytes.fromhex(c["ca"]))
        x509.load_der_x509_certificate(bytes.fromhex(c["leaf"])).verify_directly_issued_by(ca)


# -- a key and CSR made on the device, certified, then used for TLS ----------------------------

def _serve(ctx, sock, n, seen):
    """Accept N TLS connections on SOCK; each gets back the subject of its client certificate."""
    for _ in range(n):
        conn, _ = sock.accept()
        conn.settimeout(30)
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                peer = tls.getpeercert()
                subject = ",".join("%s=%s" % kv for rdn in peer["subject"] for kv in rdn)
                seen.append(subject)
                tls.sendall(subject.encode() + b"\n")
                tls.recv(16)  # until the client closes
        except (ssl.SSLError, OSError) as e:
            seen.append("error: %r" % e)


def test_device_key_and_csr_make_a_tls_client_certificate(tmp_path):
    d = tmp_path
    run_case("crypto_cases", "make_key_and_csr", d, env={"CRYPTO_OUT": str(d)}, timeout=120)
    req = x509.load_der_x509_csr((d / "cp.csr").read_bytes())
    assert req.is_signature_valid
    assert req.subject == name("CP001", "Example CPO")
    assert req.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    pk8 = serialization.load_der_private_key((d / "cp.key").read_bytes(), None)
    sec1 = serialization.load_der_private_key((d / "cp.sec1").read_bytes(), None)
    assert pk8.private_numbers() == sec1.private_numbers()
    assert pk8.public_key() == req.public_key()
    assert (d / "cp.key").read_bytes() == pk8.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert (d / "cp.sec1").read_bytes() == pk8.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    # signatures the device made with random nonces verify here
    for s in json.loads((d / "signed.json").read_text()):
        pk8.public_key().verify(bytes.fromhex(s["sig"]), s["msg"].encode(), ec.ECDSA(hashes.SHA256()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("Test CSMS CA", "uwallbox test")
    ca = certificate(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)
    cert = certificate(req.subject, req.public_key(), ca_name, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate(name("localhost"), server_key.public_key(), ca_name, ca_key)
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "ca.der").write_bytes(ca.public_bytes(serialization.Encoding.DER))
    (d / "cp.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    (d / "server.pem").write_bytes(server.public_bytes(pem))
    (d / "server.key").write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "server.pem", d / "server.key")
    ctx.load_verify_locations(d / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2)
    sock.settimeout(60)
    seen = []
    t = threading.Thread(target=_serve, args=(ctx, sock, 2, seen), daemon=True)
    t.start()
    try:
        r = run_case("crypto_cases", "tls_client", d, timeout=120,
                     env={"CRYPTO_OUT": str(d), "CRYPTO_PORT": str(sock.getsockname()[1])})
        t.join(30)
    finally:
        sock.close()
    assert seen == ["organizationName=Example CPO,commonName=CP001"] * 2, (seen, r.stdout)


def test_bench_runs_in_an_esp32_heap():
    """tools/bench_crypto.py (--quick) gives every figure (on the 32-bit build by default); each
    verification, key and CSR needs under 16 KB, the headroom the firmware's end-to-end test
    (test_firmware_management.test_keys_and_signatures_while_a_transaction_runs) has."""
    import subprocess
    import sys
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "tools" / "bench_crypto.py"
    r = subprocess.run([sys.executable, str(bench), "--quick"], capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
    f = json.loads(r.stdout)
    ops = ("rsa2048_verify", "rsa2048_pss_verify", "rsa4096_verify", "p256_verify", "p384_verify",
           "p256_keygen", "csr_sign", "sha256_1mb", "sha384_64kb", "chain_verify")
    for op in ops:
        assert 0 < f[op + "_min_ms"] <= f[op + "_ms"] <= f[op + "_max_ms"], (op, f)
        assert f[op + "_heap_b"] > 0, (op, f)
        if "verify" in op or op in ("p256_keygen", "csr_sign"):  # a small part of the heap
            assert f[op + "_heap_b"] < 16 * 1024, (op, f)
    assert f["heapsize"].startswith("256K") and f["import_verify_b"] < f["import_all_b"] < f["import_chain_b"]
