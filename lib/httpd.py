"""A small HTTP/1.1 server for MicroPython's asyncio: one request per connection, bounded request
size, a few connections at most, responses written in chunks (a file streams through one buffer).

    async def handler(req):              # req: method, path, query, headers (the names asked
        return 200, "text/plain", b"hi"  # for), body (bytes); or None after req.file()/req.send()
    srv = Server(handler, headers=("cookie",))
    await srv.serve(80)

A request the server cannot parse gets 400 (bad line, header or Content-Length), 413 (line, header
block or body too large), 503 (too many connections); a handler that raises gets 500 and is
printed; none of them stops the server. Knows nothing of what it serves.
"""
import asyncio
import sys

from micropython import const

_MAX_LINE = const(512)  # request line and each header line
_MAX_HEADERS = const(32)  # header lines
_CHUNK = const(512)  # bytes a file is sent in
_TIMEOUT_MS = const(5000)  # to receive the whole request
_REASONS = {200: "OK", 204: "No Content", 302: "Found", 303: "See Other", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}


class HttpError(Exception):
    def __init__(self, code, text=""):
        super().__init__(text)
        self.code = code
        self.text = text


class Request:
    def __init__(self, writer):
        self.method = self.path = self.query = ""
        self.headers = {}  # lower-case name -> value, only the names the server was asked for
        self.body = b""
        self.writer = writer
        self.sent = False
        self.extra = None  # response header lines the handler adds ("Set-Cookie: ...\r\n")

    def head(self, code, ctype, length=None, more=""):
        """Write the status line and headers (Connection: close; Content-Length if known)."""
        self.sent = True
        self.writer.write("HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%sConnection: close\r\n"
                          "Cache-Control: no-store\r\n\r\n" % (
                              code, _REASONS.get(code, ""), ctype,
                              "" if length is None else "Content-Length: %d\r\n" % length,
                              more, self.extra or ""))

    async def send(self, code, ctype, body):
        if isinstance(body, str):
            body = body.encode()
        self.head(code, ctype, len(body))
        self.writer.write(body)
        await self.writer.drain()

    async def file(self, path, ctype, more="", buf=None):
        """Stream file PATH in _CHUNK-byte pieces through BUF (a bytearray: none allocated per
        chunk). 404 when it does not exist."""
        try:
            f = open(path, "rb")
        except OSError:
            return await self.send(404, "text/plain", "not found")
        try:
            f.seek(0, 2)
            size = f.tell()
            f.seek(0)
            self.head(200, ctype, size, more)
            mv = memoryview(buf or bytearray(_CHUNK))
            while True:
                n = f.readinto(mv)
                if not n:
                    break
                self.writer.write(mv[:n])
                await self.writer.drain()
        finally:
            f.close()


class Server:
    def __init__(self, handler, headers=(), max_body=2048, max_conns=3):
        self.handler = handler
        self.wanted = headers  # lower-case header names kept in Request.headers
        self.max_body = max_body
        self.max_conns = max_conns
        self.conns = 0
        self.server = None

    async def serve(self, port, host="0.0.0.0"):
        """Serve until cancelled."""
        self.server = await asyncio.start_server(self._client, host, port)
        try:
            await self.server.wait_closed()
        finally:
            self.close()

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _client(self, reader, writer):
        self.conns += 1
        req = Request(writer)
        try:
            try:
                if self.conns > self.max_conns:
                    raise HttpError(503, "busy")
                await asyncio.wait_for_ms(self._read(reader, req), _TIMEOUT_MS)
                r = await self.handler(req)
                if r is not None:
                    await req.send(*r)
            except HttpError as e:
                if not req.sent:
                    await req.send(e.code, "text/plain", e.text or _REASONS.get(e.code, ""))
            except asyncio.TimeoutError:
                await req.send(400, "text/plain", "request timeout")
            except Exception as e:
                sys.print_exception(e)
                if not req.sent:
                    await req.send(500, "text/plain", "internal error")
        except Exception:  # the client went away
            pass
        finally:
            self.conns -= 1
            try:
                writer.close()
                await writer.wait_closed()
            except Exception:
                pass

    async def _read(self, reader, req):
        line = await reader.readline()
        if len(line) > _MAX_LINE:
            raise HttpError(413, "request line too long")
        try:
            parts = line.decode().split()
        except UnicodeError:
            raise HttpError(400, "bad request line")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise HttpError(400, "bad request line")
        req.method = parts[0].upper()
        req.path, _, req.query = parts[1].partition("?")
        length = 0
        for _ in range(_MAX_HEADERS + 1):
            h = await reader.readline()
            if not h or h in (b"\r\n", b"\n"):
                break
            if len(h) > _MAX_LINE:
                raise HttpError(413, "header too long")
            k, sep, v = h.partition(b":")
            if not sep:
                raise HttpError(400, "bad header")
            k = k.strip().lower()
            if k == b"content-length":
                try:
                    length = int(v.strip())
                except ValueError:
                    raise HttpError(400, "bad Content-Length")
            else:
                k = k.decode()
                if k in self.wanted:
                    req.headers[k] = v.strip().decode()
        else:
            raise HttpError(413, "too many headers")
        if length < 0:
            raise HttpError(400, "bad Content-Length")
        if length > self.max_body:
            raise HttpError(413, "body too large")
        if length:
            req.body = await reader.readexactly(length)

