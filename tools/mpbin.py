"""Which `micropython` binary the simulator, the tests and the benchmarks run.

By default the 32-bit unix port that `make mp32` builds (.mp/build-32/micropython): the ESP32 is a
32-bit machine too (31-bit small ints, 4-byte words). $UWB_MICROPYTHON (or `sim/launch.py --micropython`)
names another one, e.g. `UWB_MICROPYTHON=.venv/bin/micropython` for the 64-bit port of the pip
package; a relative path is taken from the current folder, else from the repository root; a bare
name is looked up on PATH.
"""
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = "UWB_MICROPYTHON"
MP32 = ROOT / ".mp" / "build-32" / "micropython"
MP32_FROZEN = ROOT / ".mp" / "build-32-frozen" / "micropython"


def micropython(path=None):
    """Absolute path of the binary to run: PATH if given, else $UWB_MICROPYTHON, else the 32-bit
    build. Raises LookupError saying how to get one."""
    given = path or os.environ.get(ENV)
    if not given:
        if MP32.exists():
            return str(MP32)
        raise LookupError(f"no 32-bit micropython at {MP32}: run `make mp32`, or set "
                          f"{ENV}=.venv/bin/micropython to use the 64-bit port")
    if os.sep not in given:
        found = shutil.which(given)
        if not found:
            raise LookupError(f"micropython binary {given} not found on PATH")
        return found
    p = Path(given).expanduser()
    if not p.is_absolute():
        p = (Path.cwd() / p) if (Path.cwd() / p).exists() else ROOT / p
    if not p.exists():
        raise LookupError(f"micropython binary {given} not found")
    return str(p)
