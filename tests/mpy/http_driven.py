# MicroPython side of tests/test_firmware_management.py: lib/http.py and lib/ftp.py against the
# CPython servers at $HTTP_URL and $FTP_URL. Bodies follow pattern(n): byte i is i % 251.
import asyncio
import gc
import hashlib
import os
import ssl

import ftp
import http

HTTP = os.getenv("HTTP_URL")
FTP = os.getenv("FTP_URL")
_CYCLE = bytes(range(251))


def digest(n):
    """SHA-256 of pattern(N), computed without holding it."""
    h = hashlib.sha256()
    for _ in range(n // 251):
        h.update(_CYCLE)
    h.update(_CYCLE[: n % 251])
    return h.digest()


def write_pattern(path, n):
    with open(path, "wb") as f:
        for _ in range(n // 251):
            f.write(_CYCLE)
        f.write(_CYCLE[: n % 251])


class Sink:
    """Hashes what it is handed; keeps nothing else."""

    def __init__(self):
        self.h = hashlib.sha256()
        self.n = 0
        self.calls = 0

    def __call__(self, chunk):
        self.h.update(chunk)
        self.n += len(chunk)
        self.calls += 1

    def check(self, n):
        assert self.n == n, (self.n, n)
        assert self.h.digest() == digest(n), "body differs from pattern(%d)" % n


async def get(path, n, status=200):
    s = Sink()
    r = await http.get(HTTP + path, s, timeout=5)
    assert r == status, r
    s.check(n)
    return s


async def raises(aw, exc, text=None):
    try:
        await aw
    except exc as e:
        assert text is None or text in str(e), str(e)
        return e
    raise AssertionError("no " + exc.__name__)


async def test_content_length():
    for n in (0, 1, 1023, 1024, 1025, 100000):
        await get("/data/%d" % n, n)


async def test_chunked():
    for n in (0, 1, 5000, 100000):
        await get("/chunked/%d" % n, n)


async def test_until_close():
    await get("/eof/5000", 5000)


async def test_redirects():
    await get("/redirect/3/777", 777)  # absolute and relative Location headers
    await raises(http.get(HTTP + "/redirect/4/777", Sink(), timeout=5), http.HttpError, "redirects")


async def test_not_found():
    s = await get("/missing", 0, 404)
    assert s.calls == 0  # the body of an error is not handed on


async def test_cut_short():
    await raises(http.get(HTTP + "/short/3000", Sink(), timeout=5), http.HttpError, "short")


async def test_credentials_and_headers():
    s = Sink()
    url = HTTP.replace("://", "://fw%40user:p%3Ass@") + "/echo"
    assert await http.get(url, s, headers={"X-Test": "42"}, timeout=5) == 200
    assert s.n > 0


async def test_stall_times_out():
    await raises(http.get(HTTP + "/stall", Sink(), timeout=1), asyncio.TimeoutError)


async def test_large_body_small_heap():
    # run with -X heapsize=64K: the body is many times the heap; what stays allocated is bounded
    n = int(os.getenv("SIZE"))
    await get("/data/1000", 1000)  # first use: imports, the event loop's own objects
    gc.collect()
    before = gc.mem_alloc()
    s = await get("/data/%d" % n, n)
    await asyncio.sleep_ms(1)  # finished tasks of the last wait_for may hold its 1 KB buffer until then
    gc.collect()
    grown = gc.mem_alloc() - before
    assert grown < 1024, grown
    assert s.calls >= n // 1024


async def test_put():
    write_pattern("up.bin", 10000)
    with open("up.bin", "rb") as f:
        assert await http.put(HTTP + "/put/up.bin", f, 10000, timeout=5) == 201


async def test_post_file():
    write_pattern("report.txt", 7000)
    with open("report.txt", "rb") as f:
        assert await http.post_file(HTTP + "/form", f, 7000, "report.txt", timeout=5) == 200


async def test_https():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with open(os.getenv("CA"), "rb") as f:
        ctx.load_verify_locations(cadata=f.read())
    ctx.verify_mode = ssl.CERT_REQUIRED
    s = Sink()
    assert await http.get(HTTP + "/chunked/20000", s, timeout=5, ssl=ctx) == 200
    s.check(20000)


async def test_ftp_retr():
    s = Sink()
    await ftp.retr(FTP.replace("://", "://user:se%40cret@") + "/pub/fw.bin", s, timeout=5)
    s.check(50000)
    s = Sink()
    await ftp.retr(FTP + "/pub/fw.bin", s, timeout=5)  # anonymous
    s.check(50000)


async def test_ftp_stor():
    write_pattern("diag.txt", 9000)
    with open("diag.txt", "rb") as f:
        await ftp.stor(FTP.replace("://", "://user:se%40cret@") + "/up/diag.txt", f, timeout=5)


async def test_ftp_errors():
    e = await raises(ftp.retr(FTP.replace("://", "://user:wrong@") + "/pub/fw.bin", Sink(), timeout=5),
                     ftp.FtpError)
    assert e.code == 530, e.code
    e = await raises(ftp.retr(FTP + "/pub/none.bin", Sink(), timeout=5), ftp.FtpError)
    assert e.code == 550, e.code
