"""lib/x509.py under MicroPython, on certificates and keys made with openssl.

The expected values come from openssl itself (`x509 -serial -startdate -enddate`, and the SHA-256
CertID of an OCSP request: issuer name hash, issuer key hash, serial number, which is what OCPP's
certificateHashData holds) and from a short ASN.1 walk in CPython for the raw field bytes."""
import datetime
import json
import shutil
import subprocess

import pytest

from mpyrun import mpy_cases, run_case
from pki import cert_id

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
# name: (how it is made, its issuer)
CERTS = {
    "ec_root": (["req", "-x509", *EC, "-keyout", "ec_root.key", "-days", "2", "-set_serial", "0x80",
                 "-subj", "/CN=EC root/O=uwallbox test"], "ec_root"),
    "rsa_root": (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa_root.key",
                  "-days", "20000", "-subj", "/CN=RSA root"], "rsa_root"),  # notAfter: GeneralizedTime
    "ec_leaf": (["x509", "-req", "-in", "ec_leaf.csr", "-CA", "ec_root.pem", "-CAkey", "ec_root.key",
                 "-set_serial", "1", "-days", "1"], "ec_root"),  # version 1: no [0] version field
    "rsa_leaf": (["x509", "-req", "-in", "ec_leaf.csr", "-CA", "rsa_root.pem", "-CAkey", "rsa_root.key",
                  "-days", "1", "-extfile", "v3.ext"], "rsa_root"),  # version 3, a 20-byte serial
}


def openssl(d, *args):
    return subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, text=True).stdout


def tlv(der, i):
    """(tag, content start, end) of the DER element at I."""
    n, j = der[i + 1], i + 2
    if n & 0x80:
        k = n & 0x7F
        n, j = int.from_bytes(der[j:j + k], "big"), j + k
    return der[i], j, j + n


def raw_fields(der):
    """issuer and subject Name elements and the subjectPublicKey bits, by an ASN.1 walk."""
    _, i, _ = tlv(der, 0)
    _, i, end = tlv(der, i)  # tbsCertificate
    kids = []  # (start, content start, end) of each of its elements
    while i < end:
        kids.append((i, *tlv(der, i)[1:]))
        i = kids[-1][2]
    if der[kids[0][0]] == 0xA0:  # version
        kids.pop(0)
    issuer, subject, spki = kids[2], kids[4], kids[5]
    _, a, b = tlv(der, tlv(der, spki[1])[2])  # the BIT STRING after the algorithm
    return {"issuer": der[issuer[0]:issuer[2]].hex(), "subject": der[subject[0]:subject[2]].hex(),
            "key": der[a + 1:b].hex()}


def iso(openssl_date):
    t = datetime.datetime.strptime(openssl_date.strip(), "%b %d %H:%M:%S %Y GMT")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The certificates, their keys in several DER forms, and expected.json."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not found")
    d = tmp_path_factory.mktemp("x509")
    (d / "v3.ext").write_text("basicConstraints=CA:FALSE\nsubjectAltName=DNS:cp.example\n")
    openssl(d, "req", "-new", *EC, "-keyout", "ec_leaf.key", "-out", "ec_leaf.csr", "-subj", "/CN=CP001")
    openssl(d, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-outform", "DER", "-out", "stranger.sec1")
    expected = {}
    for name, (make, issuer) in CERTS.items():
        openssl(d, *make, "-out", name + ".pem")
        openssl(d, "x509", "-in", name + ".pem", "-outform", "DER", "-out", name + ".der")
        info = openssl(d, "x509", "-in", name + ".pem", "-noout", "-serial", "-startdate", "-enddate")
        got = dict(line.split("=", 1) for line in info.splitlines())
        expected[name] = dict(raw_fields((d / (name + ".der")).read_bytes()), issuer_cert=issuer,
                              serial=got["serial"].lower().lstrip("0") or "0", not_before=iso(got["notBefore"]),
                              not_after=iso(got["notAfter"]), ids=cert_id(d, name, issuer))
    for key, forms in (("ec_leaf", ("sec1", "pkcs8")), ("rsa_root", ("pkcs1", "pkcs8"))):
        for form in forms:
            if form == "pkcs8":
                openssl(d, "pkcs8", "-topk8", "-nocrypt", "-in", key + ".key", "-outform", "DER",
                        "-out", key + "." + form)
            else:
                openssl(d, "ec" if form == "sec1" else "rsa", "-in", key + ".key", "-outform", "DER",
                        *(["-traditional"] if form == "pkcs1" else []), "-out", key + "." + form)
    (d / "expected.json").write_text(json.dumps(expected))
    return d


def test_expectations_are_sound(made):
    """The oracle agrees with itself: a serial of 0x80 is DER 00 80, shown without the zero."""
    e = json.loads((made / "expected.json").read_text())
    assert e["ec_root"]["ids"][2] == "80" and e["ec_root"]["serial"] == "80"
    assert e["rsa_root"]["not_after"] >= "2050" and e["ec_leaf"]["not_after"] < "2050"
    assert e["ec_leaf"]["issuer"] == e["ec_root"]["subject"]


@pytest.mark.parametrize("name", mpy_cases("x509_cases"))
def test_x509(name, made, tmp_path):
    run_case("x509_cases", name, tmp_path, env={"X509_DIR": str(made)})
