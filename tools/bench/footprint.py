"""Row "startup": start-up time, and the size of what goes on the device.

Start-up: from the start of the micropython process (/proc) to the CSMS's answer Accepted to its
BootNotification, on a fresh flash, for the device image (.mpy) and for the sources. Size: the
device image (tools/build.py, a development build): .mpy bytecode of firmware/ and of lib/, all
files; and the lines of Python of firmware/ and lib/.
"""
from .launch import ROOT, device_image, firmware, firmware_pid, registered, running
from .measure import spread, started_at


def boot_seconds():
    """Seconds from the firmware's process start to BootNotification Accepted, once."""
    with firmware() as (cp, csms):
        registered(cp, csms)
        start = started_at(firmware_pid(cp))
        answer = next(m for m in csms.messages(cp.id, "BootNotification", "out", "result")
                      if m.payload["status"] == "Accepted")
        return answer.time - start


def sizes(image):
    """Bytes of .mpy of firmware/ and of lib/ in IMAGE, of all its files, and lines of the .py files."""
    files = [p for p in image.rglob("*") if p.is_file()]
    mpy = {"firmware": 0, "lib": 0}
    for p in files:
        if p.suffix == ".mpy":
            mpy["lib" if p.relative_to(image).parts[0] == "lib" else "firmware"] += p.stat().st_size
    lines = {d: sum(len(p.read_text().splitlines()) for p in (ROOT / d).rglob("*.py")) for d in mpy}
    return {"mpy_bytes": mpy, "image_bytes": sum(p.stat().st_size for p in files), "py_lines": lines}


def measure(boots):
    out = {}
    with device_image() as image:
        for name, folder in (("mpy", image), ("source", None)):
            with running(folder):
                out[f"boot_{name}_s"] = spread([boot_seconds() for _ in range(boots)])
        out.update(sizes(image))
    return out
