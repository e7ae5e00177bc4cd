"""Files to and from the locations a CSMS names: http://, https:// and ftp:// URLs (lib/http.py,
lib/ftp.py), streamed. Uploads go as a multipart/form-data POST to an http(s) location, or
into an ftp folder."""
import os

import ftp
import http

from ..log import log


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
