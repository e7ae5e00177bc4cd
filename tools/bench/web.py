"""Row "web": what the web page (docs/WEB.md) costs the heap, measured by tools/bench/web_mpy.py
under micropython with the sim board while a transaction runs: the server built (its modules
imported), and each request (read, handled, answered) with the collector off, garbage included.
Taken on the .mpy image `make deploy` copies (bytecode on the heap) and, when `make mp32` built it,
on the frozen build (bytecode in flash, as in an ESP32 image with uwallbox frozen in)."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .launch import ROOT, device_image

SCRIPT = Path(__file__).with_name("web_mpy.py")
sys.path.insert(0, str(ROOT / "tools"))
import mpbin  # noqa: E402
import webpage  # noqa: E402


def _run(binary, path):
    with tempfile.TemporaryDirectory(prefix="uwb-bench-web-") as tmp:
        webpage.write(Path(tmp) / webpage.DEVICE_NAME)
        env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in (
            ROOT / "boards" / "sim", ROOT / "sim" / "mpy", *path, ROOT / "tests" / "mpy")) + ":.frozen")
        r = subprocess.run([str(binary), str(SCRIPT)], cwd=tmp, env=env, capture_output=True, text=True,
                           timeout=120)
    if r.returncode:
        raise RuntimeError(f"{SCRIPT.name} failed:\n{r.stdout}{r.stderr}")
    return json.loads(r.stdout.splitlines()[-1])


def measure():
    out = {"page_gz_bytes": len(webpage.compressed()), "page_bytes": webpage.PAGE.stat().st_size}
    with device_image() as img:
        out["mpy"] = _run(mpbin.micropython(), (img, img / "lib"))
    if mpbin.MP32_FROZEN.exists() and not os.environ.get("UWB_MICROPYTHON"):
        out["frozen"] = _run(mpbin.MP32_FROZEN, ())
    return out
