import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from harness import Csms, SimChargePoint  # noqa: E402
from mpyrun import MPY_DIR, read_cases, run_case  # noqa: E402


def pytest_configure(config):
    from mpyrun import MISSING
    if MISSING:  # no binary to run the firmware with: say how to get one, once
        raise pytest.UsageError(MISSING)
    config.addinivalue_line("markers", "soak: a campaign: a small sample by default, full size with "
                            "UWB_SOAK=1 (make soak)")
    config.addinivalue_line("markers", "slow: takes minutes of CPU (make test runs it; -m 'not slow' "
                            "leaves it out)")
    config.addinivalue_line("markers", "e2e: runs the firmware in the simulator (given to every test that "
                            "uses the charge_point fixture); make test runs these again with the "
                            "firmware frozen into the 32-bit binary (UWB_SIM_FROZEN=1)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "charge_point" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


# -- tests/mpy/*_cases.py: MicroPython test cases, one pytest item each ----------------------------

def _mpy_cases(path):
    return path.parent == MPY_DIR and path.name.endswith("_cases.py")


def pytest_collect_file(file_path, parent):
    # a file named on the command line goes to the Python plugin, which asks the hook below
    if _mpy_cases(file_path) and not parent.session.isinitpath(file_path):
        return MpyCases.from_parent(parent, path=file_path)
    return None


def pytest_pycollect_makemodule(module_path, parent):
    if _mpy_cases(module_path):
        return MpyCases.from_parent(parent, path=module_path)
    return None


class MpyCases(pytest.File):
    """A module of MicroPython test cases: each top-level `def test_*` (or `async def`) is one
    item, run alone under the micropython binary in a fresh folder (tests/mpyrun.py run_case).

    The module may say how with a literal `PYTEST = {...}` (read, never imported, by CPython):
    "env": {VAR: value}; "fixtures": {VAR: fixture name}: VAR = str(the fixture's value);
    "heapsize": "112K", or {case name: heapsize}; "timeout": seconds (default 60)."""

    def collect(self):
        opts, cases = read_cases(self.path)
        for name, line in cases:
            item = MpyCase.from_parent(self, name=name, callobj=_case(self.path.stem, name, opts))
            item.lineno = line - 1
            yield item


class MpyCase(pytest.Function):
    def reportinfo(self):
        return self.path, self.lineno, "%s (micropython)" % self.name


def _case(module, name, opts):
    """The test function of case NAME of MODULE; fixtures named in OPTS are asked for as it runs."""
    def run(request, tmp_path):
        env = dict(opts.get("env", {}))
        for var, fixture in opts.get("fixtures", {}).items():
            env[var] = str(request.getfixturevalue(fixture))
        heap = opts.get("heapsize")
        if isinstance(heap, dict):
            heap = heap.get(name)
        run_case(module, name, tmp_path, heapsize=heap, timeout=opts.get("timeout", 60), env=env)
    return run


@pytest.fixture
def csms():
    """A fresh test CSMS on a free port. At teardown every message the charge points sent must
    have passed the OCPP 1.6 schemas (csms.errors empty)."""
    server = Csms().start()
    yield server
    server.stop()
    assert server.errors == [], "the CSMS saw protocol errors:\n  " + "\n  ".join(server.errors)


@pytest.fixture
def charge_point(csms, tmp_path, request):
    """Factory: charge_point(id="CP001", connectors=1, heapsize=None, state_dir=None, url=None,
    settings=None (extra provisioning settings: security_profile, authorization_key, ca))
    launches sim/launch.py against `csms` (or `url`) and returns a harness.SimChargePoint once its
    control API answers. Every process is killed at teardown; logs are shown when a test fails."""
    launched = request.node.uwb_charge_points = []

    def launch(id="CP001", connectors=1, heapsize=None, state_dir=None, url=None, settings=None,
               **kw):  # more SimChargePoint options, e.g. meter="sdm630", meter_start=WH, web=PORT
        cp = SimChargePoint(url or csms.url, tmp_path, id=id, connectors=connectors,
                            heapsize=heapsize, state_dir=state_dir, settings=settings, **kw)
        launched.append(cp)
        return cp.start()

    yield launch
    for cp in launched:
        cp.stop(timeout=5)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the simulator logs to the report of a failed test (once)."""
    report = (yield).get_result()
    if report.failed and not getattr(item, "uwb_logs_shown", False):
        for cp in getattr(item, "uwb_charge_points", ()):
            item.uwb_logs_shown = True
            report.sections.append((f"simulator {cp.id} ({cp.log_path})", cp.log()))


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A throw-away PKI (tests/pki.py): ca / other_ca and server certificates."""
    from pki import make_pki
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def crypto_vectors(tmp_path_factory):
    """The folder of vectors.json: what `cryptography` signs and says of lib/'s algorithms
    (test_crypto.make_vectors; skipped without the package)."""
    from test_crypto import make_vectors
    return make_vectors(tmp_path_factory.mktemp("crypto"))


@pytest.fixture(scope="session")
def chain_certs(tmp_path_factory):
    """The folder of chains.json: certificate chains good and bad for lib/chain.py (chains.make_chains)."""
    from chains import make_chains
    return make_chains(tmp_path_factory.mktemp("chains"))


@pytest.fixture(scope="session")
def x509_certs(tmp_path_factory):
    """The folder of lib/x509.py's test certificates and keys, and expected.json (pki.make_x509)."""
    from pki import make_x509
    return make_x509(tmp_path_factory.mktemp("x509"))


from browser import browser, page  # noqa: E402,F401  (headless Chromium fixtures)
