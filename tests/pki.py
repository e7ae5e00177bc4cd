"""A throw-away PKI made with the openssl CLI, for TLS tests."""
import shutil
import subprocess

import pytest


def make_pki(d):
    """In folder D: ca, other_ca (PEM + DER, with keys) and server certificates signed by ca:
    `server` for 127.0.0.1 / localhost and `wrong_host` for other.example."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not found")

    def sh(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other_ca"):
        sh("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=" + ca)
        sh("x509", "-in", ca + ".pem", "-outform", "DER", "-out", ca + ".der")
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1"), ("wrong_host", "DNS:other.example")):
        (d / (name + ".ext")).write_text("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % san)
        sh("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        sh("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
           "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")
    return d


def server_context(pki, name="server"):
    """An ssl.SSLContext serving certificate NAME of PKI."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / (name + ".pem"), pki / (name + ".key"))
    return ctx
