"""Security profiles 1 (Basic auth) and 2 (TLS + Basic auth), end to end."""
import pytest

from harness import Csms, connector, registered
from pki import server_context

pytestmark = pytest.mark.timeout(120)
KEY = "0123456789abcdef0123"


def test_profile1_basic_auth(csms, charge_point):
    csms.auth = {"CP001": KEY}
    cp = charge_point(settings={"security_profile": 1, "authorization_key": KEY})
    registered(cp, csms)
    assert KEY not in cp.log()


def test_profile1_wrong_key_is_refused(csms, charge_point):
    csms.auth = {"CP001": KEY}
    cp = charge_point(settings={"security_profile": 1, "authorization_key": "wrong-key-0123456789"})
    cp.api.wait(lambda s: "connection failed" in cp.log(), timeout=20)
    assert not csms.messages(cp.id)
    assert cp.api.state()["ocpp"]["registration"] is None
    assert "wrong-key-0123456789" not in cp.log()


@pytest.fixture
def tls_csms(pki):
    server = Csms(ssl_context=server_context(pki)).start()
    yield server
    server.stop()
    assert server.errors == []


def test_profile2_tls_with_basic_auth(tls_csms, charge_point, pki):
    tls_csms.auth = {"CP001": KEY}
    cp = charge_point(url=tls_csms.url, settings={
        "security_profile": 2, "authorization_key": KEY, "ca": (pki / "ca.pem").read_text()})
    registered(cp, tls_csms)
    assert connector(cp.api.state())["status"] == "Available"


@pytest.mark.parametrize("ca", ["other_ca", None])
def test_profile2_bad_server_certificate_is_refused(pki, charge_point, ca):
    server = Csms(ssl_context=server_context(pki)).start()
    try:
        settings = {"security_profile": 2, "authorization_key": KEY}
        if ca:
            settings["ca"] = (pki / (ca + ".pem")).read_text()
        cp = charge_point(url=server.url, settings=settings)
        cp.api.wait(lambda s: "connection failed" in cp.log(), timeout=20)
        assert not server.messages(cp.id, kind="call")
        assert "certificate" in cp.log().lower()
    finally:
        server.stop()
