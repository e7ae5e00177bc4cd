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


def test_raised_profile_that_does_not_connect_falls_back(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    for key, value in (("AuthorizationKey", KEY), ("SecurityProfile", "1")):
        assert csms.call(cp.id, ("ChangeConfiguration", {"key": key, "value": value})) == {
            "status": "RebootRequired"}
    csms.auth = {"CP001": "not-the-key-0123456789"}  # profile 1 will be refused (401)
    mark = csms.mark()
    assert csms.call(cp.id, ("Reset", {"type": "Soft"})) == {"status": "Accepted"}
    cp.api.wait(lambda s: "does not connect: back to 0" in cp.log(), timeout=40)
    csms.auth = None  # the CSMS takes profile 0 again
    csms.wait_for("BootNotification", cp_id=cp.id, since=mark, timeout=30)
    registered(cp, csms)
    got = csms.call(cp.id, ("GetConfiguration", {"key": ["SecurityProfile"]}))
    assert got["configurationKey"][0]["value"] == "0"
    assert not (cp.state_dir / "secfallback.json").exists()


def test_raised_profile_that_connects_is_kept(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    for key, value in (("AuthorizationKey", KEY), ("SecurityProfile", "1")):
        csms.call(cp.id, ("ChangeConfiguration", {"key": key, "value": value}))
    csms.auth = {"CP001": KEY}
    mark = csms.mark()
    csms.call(cp.id, ("Reset", {"type": "Soft"}))
    csms.wait_for("BootNotification", cp_id=cp.id, since=mark, timeout=30)
    registered(cp, csms)
    got = csms.call(cp.id, ("GetConfiguration", {"key": ["SecurityProfile"]}))
    assert got["configurationKey"][0]["value"] == "1"
    cp.api.wait(lambda s: not (cp.state_dir / "secfallback.json").exists(), timeout=10)
