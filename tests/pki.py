"""A throw-away PKI made with the openssl CLI, for TLS tests."""
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
    for name, ca, cn in (("cp", "ca", "CP001"), ("fw_signer", "mfr_ca", "fw_signer"),
                         ("v2g_sub", "v2g_root", "v2g_sub")):
        sh("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        sign(d, name + ".csr", ca, name + ".pem")
    sh("pkey", "-in", "cp.key", "-outform", "DER", "-out", "cp.key.der")
    sh("req", "-in", "cp.csr", "-outform", "DER", "-out", "cp.csr.der")
    sh("req", *ec, "-keyout", "v2g.key", "-out", "v2g.csr", "-subj", "/CN=CP001")
    sh("req", "-in", "v2g.csr", "-outform", "DER", "-out", "v2g.csr.der")
    sign(d, "v2g.csr", "v2g_sub", "v2g_leaf.pem")
    return d


def sign(pki, csr, ca, out):
    """Certificate OUT (PEM, 2 days) for certificate request CSR (PEM) signed by CA, in folder PKI."""
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca + ".pem", "-CAkey", ca + ".key",
                    "-CAcreateserial", "-out", out, "-days", "2"], cwd=pki, check=True, capture_output=True)


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
