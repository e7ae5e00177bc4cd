"""A throw-away PKI made with the openssl CLI, for TLS tests; and the certificates and keys that
tests/mpy/x509_cases.py checks lib/x509.py against (make_x509), with what openssl says of them."""
import datetime
import json
import re
import shutil
import subprocess

import pytest


def make_pki(d):
    """In folder D: ca, other_ca, mfr_ca (PEM + DER, with keys) and server certificates signed by
    ca: `server` for 127.0.0.1 / localhost and `wrong_host` for other.example; `cp` (CN CP001)
    signed by ca, its key `cp.key.der` and CSR `cp.csr.der` in DER; `fw_signer` signed by mfr_ca.
    ISO 15118: roots v2g_root and mo_root, the sub-CA v2g_sub that v2g_root signed, and the CSR
    of a V2G key, `v2g.csr` (PEM) and `v2g.csr.der`, and `v2g_leaf`, which v2g_sub signed for it."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not found")

    def sh(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other_ca", "mfr_ca", "v2g_root", "mo_root"):
        sh("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=" + ca)
        sh("x509", "-in", ca + ".pem", "-outform", "DER", "-out", ca + ".der")
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1"), ("wrong_host", "DNS:other.example")):
        (d / (name + ".ext")).write_text("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
        sh("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        sh("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
           "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")
    (d / "subca.ext").write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    for name, ca, cn in (("cp", "ca", "CP001"), ("fw_signer", "mfr_ca", "fw_signer"),
                         ("v2g_sub", "v2g_root", "v2g_sub")):
        sh("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        sign(d, name + ".csr", ca, name + ".pem", "subca.ext" if name == "v2g_sub" else None)
    sh("pkey", "-in", "cp.key", "-outform", "DER", "-out", "cp.key.der")
    sh("req", "-in", "cp.csr", "-outform", "DER", "-out", "cp.csr.der")
    sh("req", *ec, "-keyout", "v2g.key", "-out", "v2g.csr", "-subj", "/CN=CP001")
    sh("req", "-in", "v2g.csr", "-outform", "DER", "-out", "v2g.csr.der")
    sign(d, "v2g.csr", "v2g_sub", "v2g_leaf.pem")
    return d


def sign(pki, csr, ca, out, extfile=None):
    """Certificate OUT (PEM, 2 days) for certificate request CSR (PEM) signed by CA, in folder PKI
    (with the extensions of EXTFILE)."""
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca + ".pem", "-CAkey", ca + ".key",
                    "-CAcreateserial", "-out", out, "-days", "2"] + (["-extfile", extfile] if extfile else []),
                   cwd=pki, check=True, capture_output=True)


def cert_id(pki, name, issuer):
    """[issuerNameHash, issuerKeyHash, serialNumber] of certificate NAME issued by ISSUER, from
    openssl's SHA-256 OCSP CertID (OCPP's certificateHashData), lower-case (openssl prints whole
    bytes: a serial may start with a zero nibble, which OCPP drops)."""
    text = subprocess.run(["openssl", "ocsp", "-sha256", "-issuer", issuer + ".pem", "-cert", name + ".pem",
                           "-no_nonce", "-req_text", "-reqout", name + ".ocsp"], cwd=pki, check=True,
                          capture_output=True, text=True).stdout
    name_hash, key_hash, serial = [re.search(label + r": (\w+)", text).group(1).lower()
                                   for label in ("Issuer Name Hash", "Issuer Key Hash", "Serial Number")]
    return [name_hash, key_hash, serial.lstrip("0") or "0"]  # OCPP: hex without leading zeroes


def server_context(pki, name="server", client_ca=None):
    """An ssl.SSLContext serving certificate NAME of PKI; with CLIENT_CA, clients must present a
    certificate that CA issued."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / (name + ".pem"), pki / (name + ".key"))
    if client_ca:
        ctx.load_verify_locations(pki / (client_ca + ".pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# -- lib/x509.py's test certificates --------------------------------------------------------------

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
    """The output of `openssl ARGS` run in folder D."""
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


def make_x509(d):
    """In folder D: the certificates of CERTS, their keys in several DER forms (PKCS#1, SEC1,
    PKCS#8), and expected.json: what openssl and an ASN.1 walk say of each, for
    tests/mpy/x509_cases.py."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not found")
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
