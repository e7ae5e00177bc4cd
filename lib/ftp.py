# FTP client (passive mode, binary) for MicroPython asyncio streams: files are streamed.
#
#   await ftp.retr("ftp://user:password@host/dir/fw.bin", sink)     # sink(chunk) for each piece
#   await ftp.stor("ftp://user:password@host/dir/report.txt", source)  # source.readinto(buf)
#
# Without credentials in the URL the login is anonymous. The path is relative to the login
# folder (RFC 1738: ftp://host/%2Fetc/x names /etc/x). The data connection goes to the host of the
# control connection whatever address PASV names (a server behind NAT names its private one).
# A chunk handed to `sink` is a memoryview valid during the call only. `timeout`: seconds
# without progress. Errors: FtpError (an unexpected reply), OSError, asyncio.TimeoutError.
import re

import http


class FtpError(Exception):
    def __init__(self, code, text):
        super().__init__(code, text)
        self.code = code


async def _reply(c):
    """(code, text) of the server's next reply; a multi-line reply ends with 'NNN text'."""
    line = (await c.line()).decode()
    code = line[:3]
    while line[3:4] == "-" or line[:3] != code:
        line = (await c.line()).decode()
    return int(code), line[4:].strip()


async def _ask(c, command, *ok):
    """Send COMMAND (None: only read the reply); the reply text if its code is one of OK."""
    if command:
        await c.write(command.encode() + b"\r\n")
    code, text = await _reply(c)
    if code not in ok:
        raise FtpError(code, text)
    return text


async def _transfer(url, command, move, timeout):
    """Log in, open a passive data connection, send COMMAND path, run move(data connection)."""
    scheme, host, port, path, user, password = http.split(url)
    if scheme != "ftp":
        raise ValueError("not an ftp URL")
    c = await http.connect(host, port, timeout)
    try:
        await _ask(c, None, 220)
        if user is None:
            user, password = "anonymous", "uwallbox@"
        await c.write(("USER %s\r\n" % user).encode())
        code, text = await _reply(c)
        if code == 331:
            await _ask(c, "PASS " + password, 230, 202)
        elif code != 230:
            raise FtpError(code, text)
        await _ask(c, "TYPE I", 200)
        m = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", await _ask(c, "PASV", 227))
        if not m:
            raise FtpError(227, "no address in the PASV reply")
        d = await http.connect(host, int(m.group(5)) * 256 + int(m.group(6)), timeout)
        try:
            await _ask(c, "%s %s" % (command, http.unquote(path[1:])), 125, 150)
            await move(d)
        finally:
            await d.close()  # the end of the data marks the end of the file
        await _ask(c, None, 226, 250)
        await c.write(b"QUIT\r\n")
    finally:
        await c.close()


async def retr(url, sink, timeout=30):
    """Download the file at URL into sink(chunk)."""
    async def move(d):
        await d.pipe(sink)
    await _transfer(url, "RETR", move, timeout)


async def stor(url, source, timeout=30):
    """Upload what source.readinto(buf) gives (until it runs out) as the file at URL."""
    async def move(d):
        await d.feed(source)
    await _transfer(url, "STOR", move, timeout)
