"""Files to and from the locations a CSMS names: http://, https:// and ftp:// URLs (lib/http.py,
lib/ftp.py), streamed. Uploads go as a multipart/form-data POST to an http(s) location, or
into an ftp folder. `retried` makes the attempts a request's retries / retryInterval ask for."""
import asyncio
import os
from micropython import const

import ftp
import http

from ..log import log

_ATTEMPTS = const(3)  # tries when the CSMS does not say
_INTERVAL = const(60)  # seconds between two tries when the CSMS does not say


def attempts(p):
    """(tries, seconds between two) that request P asks for (retries, retryInterval)."""
    return max(1, p.get("retries", _ATTEMPTS)), max(0, p.get("retryInterval", _INTERVAL))


async def retried(tries, every, attempt, tag, what):
    """`await attempt()` up to TRIES times, EVERY seconds apart, until it gives a true value:
    that value, or None. An exception (network, HTTP, FTP, a full slot) fails one try, logged
    under TAG as WHAT failed."""
    for n in range(tries):
        if n:
            await asyncio.sleep(every)
        try:
            done = await attempt()
            if done:
                return done
        except Exception as e:
            log(tag, "%s failed: %r" % (what, e))
    return None


async def fetch(url, sink):
    """Download URL into sink(chunk); True when the whole file came."""
    if url.startswith("ftp:"):
        await ftp.retr(url, sink)
        return True
    status = await http.get(url, sink)
    if 200 <= status < 300:
        return True
    log("net", "download answered HTTP %d" % status)
    return False


async def upload(location, path, name):
    """Upload file PATH as NAME to LOCATION; True when the server took it."""
    with open(path, "rb") as f:
        if location.startswith("ftp:"):
            await ftp.stor(location.rstrip("/") + "/" + name, f)
            return True
        status = await http.post_file(location, f, os.stat(path)[6], name)
    if 200 <= status < 300:
        return True
    log("net", "upload answered HTTP %d" % status)
    return False
