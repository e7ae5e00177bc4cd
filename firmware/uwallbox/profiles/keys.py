"""Keys made on the device: the ChargePointCertificate's (security profile 3) and the V2G
certificate's (Plug & Charge), each a P-256 key pair from os.urandom (the ESP32's hardware RNG;
lib/csr.py, lib/ec.py).

At each SignCertificate a new key is made and kept as the pending key (files.CP_NEW_KEY,
files.V2G_NEW_KEY); the key in use (files.CP_KEY, files.V2G_KEY) stays until a certificate for
the new key is installed (`owner` finds which key a certificate is for, `install` makes it the
key in use). The CSR: subject O = CpoName (when set), CN = `common_name` (the configuration key
CertificateCommonName, else the serial number BootNotification reports), signed with the new key.
A CSR the host provisioned (`cp.csr`, `v2g.csr`) is sent instead, and then the host made the key.

Private keys are written to flash only: never logged, never in a message, diagnostics or log
upload. Imported only while a certificate is requested or installed.
"""
import asyncio
import os

import pem
import x509

from .. import files
from ..flash import store
from ..log import log

CP = (files.CP_KEY, files.CP_NEW_KEY, files.CP_CSR)  # (key in use, pending key, provisioned CSR)
V2G = (files.V2G_KEY, files.V2G_NEW_KEY, files.V2G_CSR)


def common_name(app):
    """The CN of the device's certificate requests: CertificateCommonName, else the serial number."""
    cn = app.config["CertificateCommonName"]
    if cn:
        return cn
    from .. import serial_number
    return serial_number()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


async def request(app, which):
    """The DER CSR to send for WHICH (CP or V2G): the provisioned one, else that of a new key,
    which becomes the pending key. Each step (key, public key, signed request) takes a few ms on
    the unix port: the loop runs between them. MemoryError when the heap has no room now (the
    caller gives up; the CSMS may trigger again)."""
    _, pending, provisioned = which
    if store.exists(provisioned):
        return _read(provisioned)
    from .. import forget_crypto
    forget_crypto()  # a collection first: the modules need ~20 KB
    try:
        import csr
        d = csr.new_key()
        await asyncio.sleep(0)
        key = csr.private_key(d)
        await asyncio.sleep(0)
        req = csr.request(d, common_name(app), app.config["CpoName"] or None)
        del d
        store.write(pending, key)  # after the request: a failure above leaves the old pending key
        del key
    finally:
        forget_crypto()
    return req


async def request_pem(app, which, what):
    """request() as the PEM text of a SignCertificate, or None when the heap has no room now: then
    logged and reported as the security event MemoryExhaustion (WHAT: the trigger), no crash; the
    CSMS may trigger again."""
    try:
        return pem.to_pem(await request(app, which), "CERTIFICATE REQUEST")
    except MemoryError:
        log("sec", "no heap to make a key now (%s)" % what)
        app.security_event("MemoryExhaustion", what)
        return None


def owner(cert, which):
    """The file of the key (pending, else in use) whose public key x509.Certificate CERT holds,
    or None."""
    key, pending, _ = which
    for path in (pending, key):
        if store.exists(path) and x509.pairs(cert, _read(path)):
            return path
    return None


def install(path, which, cert_path, data):
    """Store DATA (the certificate or chain) in CERT_PATH for the key in file PATH (owner()), and
    make that key the one in use. The certificate is written first: a power cut in between
    leaves the pending key and the new certificate, which flash/certs.py's tls_context completes
    (the V2G key is the 15118 stack's to read: it would find v2g.key.new beside v2g.pem)."""
    store.write(cert_path, data)
    if path != which[0]:
        os.rename(path, which[0])
