# MicroPython unit tests of lib/x509.py (and the hash data of uwallbox/flash/certs.py) on the
# certificates tests/pki.py make_x509 made with openssl in $X509_DIR, against its expected.json.
import binascii
import hashlib
import json
import os

import x509
from uwallbox.flash import certs

PYTEST = {"fixtures": {"X509_DIR": "x509_certs"}}  # how tests/conftest.py runs these cases

_DIR = os.getenv("X509_DIR") + "/"


def _read(name):
    with open(_DIR + name, "rb") as f:
        return f.read()


def _expected():
    with open(_DIR + "expected.json") as f:
        return json.load(f)


def _hex(b):
    return binascii.hexlify(b).decode()


def _sha(b):
    return _hex(hashlib.sha256(b).digest())


def test_fields_match_openssl():
    for name, e in _expected().items():
        c = x509.Certificate(_read(name + ".der"))
        assert _hex(c.issuer) == e["issuer"], name
        assert _hex(c.subject) == e["subject"], name
        assert _hex(c.key) == e["key"], name
        assert _hex(c.serial).lstrip("0") == e["serial"].lstrip("0"), name
        assert (c.not_before, c.not_after) == (e["not_before"], e["not_after"]), name
        assert c.self_signed == (e["issuer_cert"] == name), name


def test_hashes_match_the_ocsp_cert_ids():
    """issuerNameHash = SHA-256 of the issuer Name; issuerKeyHash = SHA-256 of the issuer's key bits."""
    expected = _expected()
    for name, e in expected.items():
        c = x509.Certificate(_read(name + ".der"))
        issuer = x509.Certificate(_read(e["issuer_cert"] + ".der"))
        name_hash, key_hash, serial = e["ids"]
        assert _sha(c.issuer) == name_hash and _sha(issuer.subject) == name_hash, name
        assert _sha(issuer.key) == key_hash, name
        assert certs.serial(_hex(c.serial)) == serial.lstrip("0"), name
        assert c.issuer == issuer.subject, name


def test_hash_data_of_roots():
    for name in ("ec_root", "rsa_root"):
        assert certs.ids(x509.Certificate(_read(name + ".der"))) == _expected()[name]["ids"], name


def test_serial_without_leading_zeroes():
    assert certs.serial("0080") == "80" and certs.serial("00") == "0" and certs.serial("0A1b") == "a1b"


def test_private_keys_pair_with_their_certificate():
    ec_leaf = x509.Certificate(_read("ec_leaf.der"))
    rsa_leaf = x509.Certificate(_read("rsa_leaf.der"))  # the same key, issued by the RSA root
    rsa_root = x509.Certificate(_read("rsa_root.der"))
    for form in ("ec_leaf.sec1", "ec_leaf.pkcs8"):
        key = _read(form)
        assert x509.pairs(ec_leaf, key) and x509.pairs(rsa_leaf, key), form
        assert not x509.pairs(rsa_root, key), form
    for form in ("rsa_root.pkcs1", "rsa_root.pkcs8"):
        assert x509.pairs(rsa_root, _read(form)), form
        assert not x509.pairs(ec_leaf, _read(form)), form
    assert not x509.pairs(ec_leaf, _read("stranger.sec1"))


def test_fields_are_views_of_the_certificate():
    der = bytearray(_read("ec_leaf.der"))
    c = x509.Certificate(der)
    serial, key = bytes(c.serial), bytes(c.key)
    for i in range(len(der)):
        der[i] ^= 0xFF
    assert bytes(c.serial) != serial and bytes(c.key) != key  # nothing was copied


def test_broken_der_raises_value_error():
    der = _read("rsa_leaf.der")
    for n in range(len(der)):  # every truncation
        try:
            x509.Certificate(der[:n])
            assert False, "a certificate cut at %d parsed" % n
        except ValueError:
            pass
    for i in range(0, len(der), 3):  # a damaged byte: parsed or ValueError, nothing else
        broken = bytearray(der)
        broken[i] ^= 0x5A
        try:
            x509.Certificate(broken)
        except ValueError:
            pass
    for key in (b"", b"\x30\x00", b"\x30\x03\x02\x01\x00", b"\x04\x01\x00"):
        try:
            assert not x509.pairs(x509.Certificate(der), key)
        except ValueError:
            pass
