# The opening handshake of a WebSocket client (RFC 6455, client side), for ws.connect: a module
# of its own, needed only while connecting (ws.py holds the connection).
import binascii
import hashlib
import os
from micropython import const

import tcp

_MAX_HEADERS = const(64)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def handshake(url, subprotocols, headers, ctx, max_size, error, connection):
    """The opening handshake of ws.connect: CONNECTION(reader, writer, subprotocol, max_size)
    once upgraded, ERROR(message, status) raised when the server does not (ws's classes, given:
    this module does not import ws)."""
    tls = url.startswith("wss://")
    if not tls and not url.startswith("ws://"):
        raise ValueError("not a ws:// or wss:// URL")
    rest = url[6 if tls else 5 :]
    i = rest.find("/")
    netloc, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    host, _, port = netloc.partition(":")  # no IPv6 literals
    port = int(port) if port else 443 if tls else 80
    r, w = await tcp.open(host, port, tls, ctx)
    try:
        key = binascii.b2a_base64(os.urandom(16), newline=False)
        req = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, netloc, key.decode())
        if subprotocols:
            req += "Sec-WebSocket-Protocol: %s\r\n" % ", ".join(subprotocols)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        w.write(req.encode() + b"\r\n")
        req = None
        await w.drain()

        status = (await r.readline()).decode().strip()
        parts = status.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise error("bad response: %r" % status[:80])
        code = int(parts[1])
        if code != 101:
            raise error(status, code)
        hdr = {}
        for _ in range(_MAX_HEADERS):
            line = (await r.readline()).strip()
            if not line:  # end of headers (or of the stream: the checks below fail)
                break
            k, _, v = line.decode().partition(":")
            hdr[k.strip().lower()] = v.strip()
        else:
            raise error("too many headers", code)
        if hdr.get("upgrade", "").lower() != "websocket" or "upgrade" not in hdr.get("connection", "").lower():
            raise error("not a websocket upgrade", code)
        if hdr.get("sec-websocket-accept", "").encode() != binascii.b2a_base64(
                hashlib.sha1(key + _GUID).digest(), newline=False):
            raise error("bad Sec-WebSocket-Accept", code)
        proto = hdr.get("sec-websocket-protocol")
        if proto not in (subprotocols or (None,)):
            raise error("server chose subprotocol %r" % proto, code)
        return connection(r, w, proto, max_size)
    except BaseException:  # including the CancelledError of a timeout
        w.close()
        await w.wait_closed()
        raise
