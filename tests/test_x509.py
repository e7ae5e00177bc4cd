"""lib/x509.py under MicroPython (tests/mpy/x509_cases.py), on certificates and keys made with
openssl (pki.make_x509, the x509_certs fixture).

The expected values come from openssl itself (`x509 -serial -startdate -enddate`, and the SHA-256
CertID of an OCSP request: issuer name hash, issuer key hash, serial number, which is what OCPP's
certificateHashData holds) and from a short ASN.1 walk in CPython for the raw field bytes."""
import json


def test_expectations_are_sound(x509_certs):
    """The oracle agrees with itself: a serial of 0x80 is DER 00 80, shown without the zero."""
    e = json.loads((x509_certs / "expected.json").read_text())
    assert e["ec_root"]["ids"][2] == "80" and e["ec_root"]["serial"] == "80"
    assert e["rsa_root"]["not_after"] >= "2050" and e["ec_leaf"]["not_after"] < "2050"
    assert e["ec_leaf"]["issuer"] == e["ec_root"]["subject"]
