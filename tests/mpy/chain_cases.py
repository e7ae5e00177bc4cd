# MicroPython unit tests of lib/chain.py on the chains tests/chains.py made with `cryptography` in
# $CHAINS_DIR/chains.json, and of the dates security.parse_chain adds.
import binascii
import json
import os

import chain
import x509

PYTEST = {"timeout": 300, "fixtures": {"CHAINS_DIR": "chain_certs"}}  # how tests/conftest.py runs these cases


def _cases():
    with open(os.getenv("CHAINS_DIR") + "/chains.json") as f:
        return json.load(f)


def _certs(hexes):
    return [x509.Certificate(binascii.unhexlify(h)) for h in hexes]


def _verify(case):
    """None when CASE's chain verifies to one of its roots, else the error text."""
    try:
        roots = _certs(case["roots"])
        got = chain.verify(_certs(case["certs"]), roots)
        assert any(got is r for r in roots)
        return None
    except ValueError as e:
        return str(e)


def test_good_and_bad_chains():
    cases = _cases()
    assert len(cases) == 23
    for name, case in cases.items():
        why = _verify(case)
        if case["ok"]:
            assert why is None, (name, why)
        else:
            assert why is not None and case["why"] in why, (name, why)


def test_every_flipped_byte_is_refused():
    """A bit changed anywhere in the leaf or the intermediate of a good chain: ValueError, and
    nothing else, at every position."""
    case = _cases()["ec"]
    checked = 0
    for k in range(2):
        der = bytearray(binascii.unhexlify(case["certs"][k]))
        for i in range(len(der)):
            der[i] ^= 0x01
            bad = dict(case)
            bad["certs"] = list(case["certs"])
            bad["certs"][k] = binascii.hexlify(der).decode()
            assert _verify(bad) is not None, (k, i)
            der[i] ^= 0x01
            checked += 1
    assert checked > 500, checked
    assert _verify(case) is None


def test_truncated_and_trailing_bytes_are_refused():
    case = _cases()["ec"]
    der = binascii.unhexlify(case["certs"][0])
    for bad in (der[:-1], der[:40], der + b"\x00", der + der[:5]):
        c = dict(case)
        c["certs"] = [binascii.hexlify(bad).decode(), case["certs"][1]]
        assert _verify(c) is not None


def test_self_signed_roots():
    cases = _cases()
    root = _certs(cases["ec"]["roots"])[0]
    assert chain.self_signed(root)
    leaf = _certs(cases["ec"]["certs"])[0]
    assert not chain.self_signed(leaf)
    der = bytearray(binascii.unhexlify(cases["ec"]["roots"][0]))
    der[-3] ^= 1
    assert not chain.self_signed(x509.Certificate(der))


def test_extensions():
    cases = _cases()
    ext = chain.extensions(_certs(cases["ec"]["certs"])[1])  # Sub: basicConstraints, keyUsage
    assert ext[b"\x55\x1d\x13"][0] is True and ext[b"\x55\x1d\x0f"][0] is True
    assert chain._basic(ext) == (True, None) and chain._usage(ext) & 0x04
    leaf = chain.extensions(_certs(cases["ec"]["certs"])[0])
    assert chain._basic(leaf) == (False, None) and chain._usage(leaf) == 0x80


def test_expired_intermediate_is_refused_by_the_dates():
    import fakes
    import pem
    from uwallbox.flash import certs
    from uwallbox.profiles import security
    case = _cases()["expired_sub"]
    app = fakes.app({})
    root = binascii.unhexlify(case["roots"][0])
    certs.add("ManufacturerRootCertificate", root, x509.Certificate(root))
    text = "".join(pem.to_pem(binascii.unhexlify(h)) for h in case["certs"])
    try:
        security.parse_chain(app, text, "ManufacturerRootCertificate")
        assert False, "an expired intermediate"
    except ValueError as e:
        assert "valid from" in str(e)
    good = _cases()["ec"]
    text = "".join(pem.to_pem(binascii.unhexlify(h)) for h in good["certs"])
    assert security.parse_chain(app, text, "ManufacturerRootCertificate")[1][0].subject
    try:
        security.parse_chain(app, text, "CentralSystemRootCertificate")  # a root of another type
        assert False, "a root of another type"
    except ValueError as e:
        assert "root" in str(e)
