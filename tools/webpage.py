#!/usr/bin/env python3
"""The web page's flash file: firmware/uwallbox/web/page.html gzip-compressed (reproducible: no
timestamp, no name), served as is with Content-Encoding: gzip (docs/WEB.md).

    tools/webpage.py OUT      # writes OUT (e.g. build/web.html.gz); prints both sizes
"""
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "firmware" / "uwallbox" / "web" / "page.html"
DEVICE_NAME = "web.html.gz"  # files.WEB_PAGE


def compressed(src=PAGE):
    return gzip.compress(Path(src).read_bytes(), compresslevel=9, mtime=0)


def write(out):
    data = compressed()
    Path(out).write_bytes(data)
    return data


if __name__ == "__main__":
    data = write(sys.argv[1])
    print(f"{PAGE.name}: {PAGE.stat().st_size:,} B -> {sys.argv[1]}: {len(data):,} B")
