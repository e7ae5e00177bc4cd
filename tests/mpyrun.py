"""Run code under the real MicroPython unix binary."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import mpbin  # noqa: E402

try:  # $UWB_MICROPYTHON, else the 32-bit build of `make mp32` (tools/mpbin.py)
    MICROPYTHON, MISSING = mpbin.micropython(), None
except LookupError as e:  # conftest.py stops the session with this
    MICROPYTHON, MISSING = None, str(e)
MPY_DIR = ROOT / "tests" / "mpy"
SIM_PATH = [ROOT / "boards" / "sim", ROOT / "sim" / "mpy", ROOT / "firmware", ROOT / "lib"]


def mpy_env(path=(), env=None):
    e = dict(os.environ)
    e["MICROPYPATH"] = ":".join(str(p) for p in (*path, MPY_DIR, *SIM_PATH)) + ":.frozen"
    e.update(env or {})
    return e


def run_mpy(args, *, path=(), heapsize=None, timeout=60, cwd=None, env=None):
    """Run micropython with ARGS (list); returns CompletedProcess with text output."""
    cmd = [MICROPYTHON]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    return subprocess.run(cmd + list(args), cwd=cwd, env=mpy_env(path, env), timeout=timeout,
                          capture_output=True, text=True)


def read_cases(path):
    """(options, [(name, line)]) of the MicroPython test module at PATH, read without importing
    it: its top-level `def test_*` / `async def test_*`, and its literal `PYTEST = {...}` ({} when
    it has none; tests/conftest.py says what it may hold)."""
    tree = ast.parse(Path(path).read_text(), str(path))
    opts, cases = {}, []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PYTEST" for t in node.targets):
            opts = ast.literal_eval(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            cases.append((node.name, node.lineno))
    return opts, cases


def case_names(module):
    """The cases of tests/mpy/MODULE.py. The `*_cases.py` modules are collected by
    tests/conftest.py; a `*_driven.py` module is run case by case by the CPython test serving it."""
    return [name for name, _ in read_cases(MPY_DIR / (module + ".py"))[1]]


def run_case(module, name, tmp_path, heapsize=None, timeout=60, env=None):
    """Run tests/mpy/MODULE.py::NAME under micropython in TMP_PATH; fail with its output."""
    r = run_mpy([str(MPY_DIR / "runner.py"), module, name], heapsize=heapsize,
                timeout=timeout, cwd=tmp_path, env=env)
    if r.returncode != 0 or not r.stdout.rstrip().endswith("PASS"):
        pytest.fail("micropython %s.%s failed (rc=%s)\n%s\n%s" % (
            module, name, r.returncode, r.stdout[-4000:], r.stderr[-4000:]), pytrace=False)
    return r
