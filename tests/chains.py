"""Certificate chains made with the `cryptography` package for lib/chain.py's cases
(tests/mpy/chain_cases.py): good ones of every key type, and ones with a wrong signature, a
wrong root, an issuer that is no CA, wrong key usages, path lengths exceeded, too many
certificates, an unknown critical extension, an expired intermediate."""
import datetime
import json

import pytest


def make_chains(d):
    """chains.json in folder D: {case: {"certs": [DER hex, leaf first], "roots": [DER hex],
    "ok": bool, "why": a word of the error}}."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    p256 = [ec.generate_private_key(ec.SECP256R1()) for _ in range(8)]
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa2k = rsa.generate_private_key(65537, 2048)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(cn, key, issuer_cn, issuer_key, ca=None, path=None, usage=None, days=(-1, 2), extra=(),
             pss=False):
        """A certificate of KEY's public key named CN, signed by ISSUER_KEY; CA: basicConstraints
        (None: no extension), USAGE: keyUsage flags (None: no extension)."""
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(issuer_cn))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now + datetime.timedelta(days=days[0]))
             .not_valid_after(now + datetime.timedelta(days=days[1])))
        if ca is not None:
            b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path), critical=True)
        if usage is not None:
            flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment",
                                   "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"), False)
            flags.update(dict.fromkeys(usage, True))
            b = b.add_extension(x509.KeyUsage(encipher_only=False, decipher_only=False, **flags), critical=True)
        for ext, critical in extra:
            b = b.add_extension(ext, critical=critical)
        h = hashes.SHA384() if isinstance(issuer_key, ec.EllipticCurvePrivateKey) and \
            issuer_key.curve.name == "secp384r1" else hashes.SHA256()
        if pss:
            return b.sign(issuer_key, h, rsa_padding=padding.PSS(padding.MGF1(h), 32))
        return b.sign(issuer_key, h)

    ca_usage = ("key_cert_sign", "crl_sign")
    root = cert("Root", p256[0], "Root", p256[0], ca=True, usage=ca_usage)
    sub = cert("Sub", p256[1], "Root", p256[0], ca=True, usage=ca_usage)
    leaf = cert("Leaf", p256[2], "Sub", p256[1], usage=("digital_signature",))
    impostor = cert("Root", p256[3], "Root", p256[3], ca=True)  # same name, another key
    rsa_root = cert("RSA root", rsa2k, "RSA root", rsa2k, ca=True)
    p384_root = cert("P-384 root", p384, "P-384 root", p384, ca=True)
    not_ca_root = cert("Root", p256[0], "Root", p256[0], ca=False)

    def der(c):
        return c.public_bytes(Encoding.DER)

    def flipped(c, back):
        b = bytearray(der(c))
        b[-back] ^= 1
        return bytes(b)

    def case(certs, roots, ok, why=""):
        return {"certs": [(c if isinstance(c, bytes) else der(c)).hex() for c in certs],
                "roots": [der(r).hex() for r in roots], "ok": ok, "why": why}

    deep = [cert("Leaf", p256[2], "CA 5", p256[7])]
    for i in range(5, 0, -1):  # CA 5 .. CA 1 under Root: 6 certificates below the root
        deep.append(cert("CA %d" % i, p256[2 + i], "CA %d" % (i - 1) if i > 1 else "Root",
                         p256[1 + i] if i > 1 else p256[0], ca=True))
    critical = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    cases = {
        "ec": case([leaf, sub], [root], True),
        "ec_with_root": case([leaf, sub, root], [impostor, root], True),
        "ec_leaf_alone": case([cert("Leaf", p256[2], "Root", p256[0])], [root], True),
        "rsa_root": case([cert("Leaf", p256[2], "Sub", p256[1]),
                          cert("Sub", p256[1], "RSA root", rsa2k, ca=True)], [rsa_root], True),
        "rsa_pss": case([cert("Leaf", p256[2], "RSA root", rsa2k, pss=True)], [rsa_root], True),
        "p384_root": case([cert("Leaf", p256[2], "P-384 root", p384)], [p384_root], True),
        "sub_signature": case([leaf, flipped(sub, 1)], [root], False, "root"),
        "leaf_signature": case([flipped(leaf, 1), sub], [root], False, "signature"),
        "impostor_root": case([leaf, sub], [impostor], False, "root"),
        "root_not_installed": case([leaf, sub, root], [impostor], False, "not installed"),
        "no_root": case([leaf, sub], [], False, "root"),
        "sub_not_ca": case([leaf, cert("Sub", p256[1], "Root", p256[0], ca=False)], [root], False, "CA"),
        "sub_no_constraints": case([leaf, cert("Sub", p256[1], "Root", p256[0])], [root], False, "CA"),
        "sub_no_cert_sign": case([leaf, cert("Sub", p256[1], "Root", p256[0], ca=True,
                                             usage=("digital_signature", "crl_sign"))], [root], False,
                                 "keyCertSign"),
        "leaf_no_signing": case([cert("Leaf", p256[2], "Sub", p256[1], usage=("key_encipherment",)), sub],
                                [root], False, "digitalSignature"),
        "root_not_ca": case([leaf, sub], [not_ca_root], False, "CA"),
        "path_len_0": case([leaf, sub], [cert("Root", p256[0], "Root", p256[0], ca=True, path=0)],
                           False, "pathLen"),
        "path_len_1": case([leaf, sub], [cert("Root", p256[0], "Root", p256[0], ca=True, path=1)], True),
        "sub_path_len_0": case([leaf, cert("Sub", p256[1], "Root", p256[0], ca=True, path=0)], [root], True),
        "too_long": case(deep, [root], False, "more than"),
        "unknown_critical": case([cert("Leaf", p256[2], "Sub", p256[1], extra=[(critical, True)]), sub],
                                 [root], False, "critical"),
        "unknown_not_critical": case([cert("Leaf", p256[2], "Sub", p256[1], extra=[(critical, False)]), sub],
                                     [root], True),
        # dates are the caller's: chain.verify passes it, security.parse_chain refuses it
        "expired_sub": case([leaf, cert("Sub", p256[1], "Root", p256[0], ca=True, days=(-5, -2))],
                            [root], True),
    }
    (d / "chains.json").write_text(json.dumps(cases))
    return d
