#!/usr/bin/env python3
"""Benchmark of the signatures and keys in lib/ (sig, rsa, ec, csr, sha2) under MicroPython.

    python tools/bench_crypto.py [--quick]     prints the figures as JSON
    from bench_crypto import run; run()        the same figures as a dict

The host part (CPython) makes an RSA-2048, an RSA-4096, a P-256 and a P-384 signature and a
P-256 certificate chain (root, intermediate, leaf) with the `cryptography` package and runs this
same file under `micropython -X heapsize=256K` (more than an ESP32's ~112 KiB, so that the
bisection below finds free regions in one piece), by default the 32-bit build of `make mp32` (tools/mpbin.py: $UWB_MICROPYTHON names another). That part times
each operation (the median of several runs, with min and max, in ms of the unix port on this
machine, not of an ESP32) and measures the heap it needs: the smallest free region in which it
completes, found by bisection with the rest of the heap filled (128-byte resolution, bytes of the
port run: on the 32-bit build, what an ESP32 needs).
"""
import sys

import heapprobe  # noqa: E402  (tools/heapprobe.py, also on the MicroPython path)

HEAP = "256K"  # room for the bisection of _need in one piece; the figures do not depend on it
MSG = b"uwallbox benchmark message"


# -- under MicroPython ---------------------------------------------------------------------------





def _time(op, runs):
    """(median, min, max) ms of RUNS calls of OP."""
    import time

    t = []
    for _ in range(runs):
        start = time.ticks_us()
        op()
        t.append(time.ticks_diff(time.ticks_us(), start) / 1000)
    t.sort()
    return t[len(t) // 2], t[0], t[-1]


def _device(path, quick):
    import binascii
    import gc
    import json

    with open(path) as f:
        v = {k: binascii.unhexlify(x) for k, x in json.load(f).items()}
    gc.collect()
    before = gc.mem_alloc()
    import sig  # what the verification path holds once imported (from sources)
    import sha2
    import ec
    __import__("rsa")
    gc.collect()
    out = {"heapsize": HEAP, "import_verify_b": gc.mem_alloc() - before}
    import csr
    gc.collect()
    out["import_all_b"] = gc.mem_alloc() - before
    import chain
    import x509
    gc.collect()
    out["import_chain_b"] = gc.mem_alloc() - before
    runs = 3 if quick else 11

    def put(name, op, n=runs, cold=None):
        assert op() is not False, name
        out[name + "_ms"], out[name + "_min_ms"], out[name + "_max_ms"] = _time(op, n)
        out[name + "_heap_b"] = heapprobe.need(cold or op)

    def verifier(key, alg):
        digest = sha2.new(alg[-6:], MSG).digest()
        return lambda: sig.verify(v[key + "_spki"], alg, v[key + "_sig"], digest)

    def cold(op):
        def f():
            ec.P256._gt = ec.P384._gt = None  # the cached multiples of G made again, and counted
            return op()
        return f

    put("rsa2048_verify", verifier("rsa2048", "rsa-pkcs1-sha256"))
    put("rsa2048_pss_verify", verifier("rsa2048pss", "rsa-pss-sha256"))
    put("rsa4096_verify", verifier("rsa4096", "rsa-pkcs1-sha256"), max(3, runs // 2))
    p256 = verifier("p256", "ecdsa-sha256")
    out["p256_verify_first_ms"] = _time(cold(p256), 1)[0]
    put("p256_verify", p256, cold=cold(p256))
    p384 = verifier("p384", "ecdsa-sha384")
    put("p384_verify", p384, max(3, runs // 2), cold=cold(p384))

    path = [x509.Certificate(v["leaf"]), x509.Certificate(v["sub"])]
    roots = [x509.Certificate(v["root"])]
    put("chain_verify", lambda: chain.verify(path, roots), max(3, runs // 2))

    put("p256_keygen", lambda: len(csr.private_key(csr.new_key())))
    d = csr.new_key()
    put("csr_sign", lambda: csr.request(d, "CP001", "Example CPO"))

    chunk = bytearray(4096)
    for i in range(4096):
        chunk[i] = i * 7 & 0xFF

    def sha256_1mb():
        h = sha2.new("sha256")
        for _ in range(256):
            h.update(chunk)
        return h.digest()
    put("sha256_1mb", sha256_1mb, 3)

    def sha384_64kb():
        h = sha2.new("sha384")
        for _ in range(16):
            h.update(chunk)
        return h.digest()
    put("sha384_64kb", sha384_64kb, 3)
    gc.collect()
    out["heap_free_after_b"] = gc.mem_free()
    print(json.dumps(out))


# -- on the host ---------------------------------------------------------------------------------

def _vectors():
    """Public keys (SubjectPublicKeyInfo) and signatures of MSG, hex, by `cryptography`."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    def spki(k):
        return k.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).hex()
    out = {}
    r2, r4 = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 4096)
    p256, p384 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    for name, key, sig in (("rsa2048", r2, r2.sign(MSG, padding.PKCS1v15(), hashes.SHA256())),
                           ("rsa2048pss", r2, r2.sign(MSG, pss, hashes.SHA256())),
                           ("rsa4096", r4, r4.sign(MSG, padding.PKCS1v15(), hashes.SHA256())),
                           ("p256", p256, p256.sign(MSG, ec.ECDSA(hashes.SHA256()))),
                           ("p384", p384, p384.sign(MSG, ec.ECDSA(hashes.SHA384())))):
        out[name + "_spki"], out[name + "_sig"] = spki(key), sig.hex()
    out.update(_chain())
    return out


def _chain():
    """A P-256 root, an intermediate CA and a leaf (DER hex), ECDSA with SHA-256."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    out = {}
    for i, (name, issuer) in enumerate((("root", 0), ("sub", 0), ("leaf", 1))):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ("root", "sub")[issuer])]))
             .public_key(keys[i].public_key()).serial_number(i + 1)
             .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
        if name != "leaf":
            b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        out[name] = b.sign(keys[issuer], hashes.SHA256()).public_bytes(serialization.Encoding.DER).hex()
    return out


def run(quick=False):
    """The benchmark's figures, as a dict."""
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "tools"))
    from mpbin import micropython as binary
    micropython = binary()
    env = dict(os.environ, MICROPYPATH=str(root / "lib") + ":" + str(root / "tools") + ":.frozen")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "vectors.json"
        path.write_text(json.dumps(_vectors()))
        cmd = [str(micropython), "-X", "heapsize=" + HEAP, __file__, "--device", str(path)]
        r = subprocess.run(cmd + (["--quick"] if quick else []), cwd=d, env=env, capture_output=True,
                           text=True, timeout=900)
    if r.returncode:
        raise RuntimeError("micropython failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    return json.loads(r.stdout.splitlines()[-1])


if __name__ == "__main__":
    if sys.implementation.name == "micropython":
        _device(sys.argv[2], "--quick" in sys.argv)
    else:
        import json
        print(json.dumps(run("--quick" in sys.argv), indent=1))
