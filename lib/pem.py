"""PEM <-> DER for certificates (MicroPython's TLS wants DER)."""
import binascii


def to_der(pem):
    """DER bytes of each block in PEM text (str or bytes), in order."""
    if isinstance(pem, bytes):
        pem = pem.decode()
    out = []
    body = None
    for line in pem.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN"):
            body = []
        elif line.startswith("-----END"):
            if body is not None:
                out.append(binascii.a2b_base64("".join(body)))
            body = None
        elif body is not None and line:
            body.append(line)
    return out


def to_pem(der, label="CERTIFICATE"):
    """PEM text of DER bytes."""
    b64 = binascii.b2a_base64(der).decode().strip()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)
