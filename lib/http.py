# HTTP/1.1 client for MicroPython asyncio streams: bodies are streamed, never held in RAM.
#
#   status = await http.get(url, sink)                     # sink(chunk) for each piece of a 2xx body
#   status = await http.put(url, source, size)             # body read with source.readinto(buf)
#   status = await http.post_file(url, source, size, "report.txt")   # multipart/form-data
#
# One request per connection (Connection: close). get() reads bodies sized by Content-Length,
# chunked, or ended by the server closing, and follows up to 3 redirects; the body of any other
# answer than 2xx is not read. A chunk handed to `sink` is a memoryview valid during the call only.
# `timeout`: seconds without progress (connecting, each read and write) before asyncio.TimeoutError.
# https: `ssl` is an ssl.SSLContext used as given, None the port's default (which on MicroPython
# 1.29 does NOT verify the server), False explicitly CERT_NONE (as in lib/ws.py).
# Credentials in the URL (http://user:password@host/) are sent as Basic authentication.
# Errors: OSError (network), HttpError (not HTTP, body cut short), ValueError (bad URL).
#
# connect(), Conn and split() are the stream layer lib/ftp.py is built on.
import asyncio
import binascii
import os
from micropython import const

import tcp

_CHUNK = const(1024)  # bytes read or written at a time (one buffer per connection)
_MAX_HEADERS = const(64)
_REDIRECTS = const(3)
_PORTS = {"http": 80, "https": 443, "ftp": 21}
_KEPT = ("content-length", "transfer-encoding", "location")  # the response headers we need


class HttpError(Exception):
    pass


def unquote(s):
    """Decode the %XX escapes of a URL part."""
    if "%" not in s:
        return s
    parts = s.split("%")
    out = bytearray(parts[0].encode())
    for p in parts[1:]:
        out.append(int(p[:2], 16))
        out += p[2:].encode()
    return out.decode()


def split(url):
    """URL -> (scheme, host, port, path, user, password); user is None without credentials.
    ValueError for a scheme other than http, https and ftp. No IPv6 literals."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _PORTS:
        raise ValueError("unsupported URL")
    i = rest.find("/")
    netloc, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    cred, _, hostport = netloc.rpartition("@")
    user, _, password = cred.partition(":")
    host, _, port = hostport.partition(":")
    return scheme, host, int(port) if port else _PORTS[scheme], path, unquote(user) if cred else None, unquote(password)


class Conn:
    """One TCP (or TLS) connection whose every step must progress within `timeout` seconds."""

    def __init__(self, reader, writer, timeout):
        self.r, self.w, self.t = reader, writer, timeout
        self._buf = None  # allocated by the first pipe() or feed(): an FTP control link needs none

    async def line(self):
        """The next line (bytes, with its end); HttpError when the peer has closed."""
        line = await asyncio.wait_for(self.r.readline(), self.t)
        if not line:
            raise HttpError("connection closed")
        return line

    async def write(self, data):
        self.w.write(data)
        await asyncio.wait_for(self.w.drain(), self.t)

    def _chunk(self):
        if self._buf is None:
            self._buf = memoryview(bytearray(_CHUNK))
        return self._buf

    async def pipe(self, sink, n=-1):
        """Hand the next N bytes read (N < 0: all until the peer closes) to sink(chunk)."""
        buf = self._chunk()
        while n:
            k = await asyncio.wait_for(self.r.readinto(buf[:n] if 0 < n < _CHUNK else buf), self.t)
            if k is None:  # TLS record not complete yet
                continue
            if not k:
                if n < 0:
                    return
                raise HttpError("body cut short")
            sink(buf[:k])
            if n > 0:
                n -= k

    async def feed(self, source, n=-1):
        """Write N bytes read with source.readinto(buf) (N < 0: until it runs out)."""
        buf = self._chunk()
        while n:
            k = source.readinto(buf[:n] if 0 < n < _CHUNK else buf)
            if not k:
                if n < 0:
                    return
                raise ValueError("source shorter than its size")
            await self.write(buf[:k])
            if n > 0:
                n -= k

    async def close(self):
        try:
            self.w.close()
            await self.w.wait_closed()
        except OSError:
            pass


async def connect(host, port, timeout, tls=False, ctx=None):
    """A Conn to HOST:PORT; with TLS, CTX is an SSLContext, None (the default) or False (CERT_NONE)."""
    r, w = await asyncio.wait_for(tcp.open(host, port, tls, ctx), timeout)
    return Conn(r, w, timeout)


async def _request(method, url, headers, timeout, ssl, size=0, body=None):
    """Send one request (BODY: coroutine function writing SIZE bytes to the Conn); returns
    (conn, status, {kept header: value}). The caller closes the connection."""
    scheme, host, port, path, user, password = split(url)
    if scheme == "ftp":
        raise ValueError("not an http(s) URL")
    c = await connect(host, port, timeout, scheme == "https", ssl)
    try:
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (
            method, path, host if port == _PORTS[scheme] else "%s:%d" % (host, port))
        if user is not None:
            cred = binascii.b2a_base64(("%s:%s" % (user, password)).encode(), newline=False)
            head += "Authorization: Basic %s\r\n" % cred.decode()
        if body:
            head += "Content-Length: %d\r\n" % size
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        await c.write(head.encode() + b"\r\n")
        head = None
        if body:
            await body(c)
        parts = (await c.line()).split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise HttpError("not an HTTP response")
        hdr = {}
        for _ in range(_MAX_HEADERS):
            line = await c.line()
            if not line.strip():
                break
            k, _, v = line.decode().partition(":")
            k = k.strip().lower()
            if k in _KEPT:
                hdr[k] = v.strip()
        else:
            raise HttpError("too many headers")
        return c, int(parts[1]), hdr
    except BaseException:  # including the CancelledError of a timeout
        await c.close()
        raise


def _join(url, location):
    """The absolute URL of redirect LOCATION, relative to URL."""
    if "://" in location:
        return location
    if location.startswith("//"):  # same scheme, another host
        return url[: url.find(":") + 1] + location
    i = url.find("/", url.find("://") + 3)
    base = url if i < 0 else url[:i]
    if location.startswith("/"):
        return base + location
    return url[: url.rfind("/") + 1] + location if i >= 0 else base + "/" + location


async def _body(c, hdr, sink):
    if "chunked" in hdr.get("transfer-encoding", "").lower():
        while True:
            try:
                n = int((await c.line()).split(b";")[0].strip(), 16)
            except ValueError:
                raise HttpError("bad chunk size")
            if not n:
                break
            await c.pipe(sink, n)
            await c.line()  # the CRLF after the chunk
        while (await c.line()).strip():  # trailers
            pass
    else:
        n = hdr.get("content-length")
        await c.pipe(sink, int(n) if n else -1)


async def get(url, sink, headers=None, timeout=30, ssl=None):
    """GET URL; the body of a 2xx answer goes to sink(chunk). Returns the final status."""
    for _ in range(_REDIRECTS + 1):
        c, status, hdr = await _request("GET", url, headers, timeout, ssl)
        try:
            location = hdr.get("location")
            if status in (301, 302, 303, 307, 308) and location:
                url = _join(url, location)
                continue
            if 200 <= status < 300:
                await _body(c, hdr, sink)
            return status
        finally:
            await c.close()
    raise HttpError("too many redirects")


async def _send(method, url, size, body, headers, timeout, ssl):
    c, status, _ = await _request(method, url, headers, timeout, ssl, size, body)
    await c.close()
    return status


async def put(url, source, size, headers=None, timeout=30, ssl=None):
    """PUT SIZE bytes read with source.readinto(buf) (a file, say) to URL; returns the status."""
    async def body(c):
        await c.feed(source, size)
    return await _send("PUT", url, size, body, headers, timeout, ssl)


async def post_file(url, source, size, filename, field="file", headers=None, timeout=30, ssl=None):
    """POST a multipart/form-data form of one file field FIELD named FILENAME, whose SIZE bytes
    are read with source.readinto(buf); returns the status."""
    boundary = "uwallbox" + binascii.hexlify(os.urandom(12)).decode()
    head = ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n" % (boundary, field, filename)).encode()
    tail = ("\r\n--%s--\r\n" % boundary).encode()
    hdr = dict(headers or {})
    hdr["Content-Type"] = "multipart/form-data; boundary=" + boundary

    async def body(c):
        await c.write(head)
        await c.feed(source, size)
        await c.write(tail)
    return await _send("POST", url, len(head) + size + len(tail), body, hdr, timeout, ssl)
