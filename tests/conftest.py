import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from harness import Csms, SimChargePoint  # noqa: E402


def pytest_configure(config):
    from mpyrun import MISSING
    if MISSING:  # no binary to run the firmware with: say how to get one, once
        raise pytest.UsageError(MISSING)
    config.addinivalue_line("markers", "soak: a campaign: a small sample by default, full size with "
                            "UWB_SOAK=1 (make soak)")


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
    launches tools/sim against `csms` (or `url`) and returns a harness.SimChargePoint once its
    control API answers. Every process is killed at teardown; logs are shown when a test fails."""
    launched = request.node.uwb_charge_points = []

    def launch(id="CP001", connectors=1, heapsize=None, state_dir=None, url=None, settings=None):
        cp = SimChargePoint(url or csms.url, tmp_path, id=id, connectors=connectors,
                            heapsize=heapsize, state_dir=state_dir, settings=settings)
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
