# MicroPython unit tests of the web page's admin sessions (uwallbox/web/auth.py) and settings rules
# (uwallbox/web/settings.py), in a fresh flash folder.
import json
import time

from uwallbox.flash import store
from uwallbox.station.config import Config
from uwallbox.web import auth, settings


class Clock:
    """time for auth.py, moved by hand."""
    def __init__(self):
        self.ms = 1000

    def ticks_ms(self):
        return self.ms

    ticks_diff = staticmethod(time.ticks_diff)
    ticks_add = staticmethod(time.ticks_add)


def _sessions():
    auth.set_password("correct-horse")
    clock = Clock()
    auth.time = clock
    return auth.Sessions(), clock


def test_password_stored_hashed():
    auth.set_password("correct-horse")
    with open("webadmin.json") as f:
        text = f.read()
    rec = json.loads(text)
    assert "correct-horse" not in text and len(rec["hash"]) == 64 and len(rec["salt"]) == 32
    for bad in ("short", "x" * 65, 12345678):
        try:
            auth.set_password(bad)
            assert False, bad
        except ValueError:
            pass


def test_login_csrf_and_expiry():
    s, clock = _sessions()
    token, csrf = s.login("correct-horse")
    cookie = "theme=dark; sid=" + token
    assert s.check(cookie) == token  # a GET
    assert s.check(cookie, csrf) == token  # a POST with its token
    assert s.check(cookie, "") is None and s.check(cookie, "0" * 32) is None
    assert s.check("sid=" + "f" * 32) is None and s.check(None) is None
    clock.ms += 29 * 60000
    assert s.check(cookie) == token  # used: 30 more minutes
    clock.ms += 31 * 60000
    assert s.check(cookie) is None and not s.live  # expired, forgotten


def test_at_most_three_sessions():
    s, clock = _sessions()
    tokens = []
    for _ in range(4):
        clock.ms += 10
        tokens.append(s.login("correct-horse")[0])
    assert len(s.live) == 3 and tokens[0] not in s.live and tokens[3] in s.live


def test_lock_out_after_wrong_passwords():
    s, clock = _sessions()
    assert s.login("wrong-1") is None and s.login("wrong-2") is None  # free
    assert s.login("wrong-3") is None  # the lock-out starts: 2 s
    assert s.login("correct-horse") == "locked"
    clock.ms += 2001
    assert s.login("wrong-4") is None  # now 4 s
    clock.ms += 3000
    assert s.login("correct-horse") == "locked"
    clock.ms += 1001
    assert isinstance(s.login("correct-horse"), tuple)  # and the counter starts again
    assert s.login("wrong") is None and s.login("wrong") is None and s.login("wrong") is None
    assert s.login("correct-horse") == "locked"


def _problems(d, setup=False):
    try:
        settings.check(d, Config(), setup)
    except ValueError as e:
        return str(e)
    return ""


def test_setup_needs_everything():
    p = _problems({}, setup=True)
    for part in ("wifi_ssid: missing", "url: missing", "id: missing", "admin_password: 8 to 64"):
        assert part in p, p
    good = {"wifi_ssid": "HomeNet", "wifi_password": "", "url": "wss://csms.local/ocpp", "id": "CP9",
            "admin_password": "12345678"}
    assert _problems(good, setup=True) == ""


def test_deploy_rules_and_messages():
    assert "not a ws:// or wss:// URL" in _problems({"url": "http://csms.local"})
    assert "still the example's" in _problems({"url": "ws://csms.example.com:9000/ocpp"})
    assert "printable ASCII" in _problems({"id": "CP 1"})
    assert "needs a wss:// url" in _problems({"url": "ws://a/b", "security_profile": 2})
    assert "authorization_key: missing" in _problems({"security_profile": 1})
    assert "16 to 40" in _problems({"security_profile": 1, "authorization_key": "short"})
    assert "no ':'" in _problems({"security_profile": 1, "id": "a:b", "authorization_key": "k" * 16})
    assert "8 to 63 characters" in _problems({"wifi_ssid": "Net", "wifi_password": "short"})
    assert "unknown setting 'color'" in _problems({"color": "red"})
    assert "max_current: 6 to 80 A" in _problems({"max_current": 5})
    assert "free_charging: true or false" in _problems({"free_charging": 1})


def test_apply_keeps_secrets_and_the_wifi_password():
    c = Config()
    store.save("wifi.json", {"ssid": "HomeNet", "password": "home-secret"})
    assert settings.apply(c, {"security_profile": 1, "authorization_key": "k" * 20}) is True
    shown = settings.shown(c)
    assert shown["authorization_key_set"] and "k" * 20 not in json.dumps(shown)
    assert "home-secret" not in json.dumps(shown) and shown["wifi_ssid"] == "HomeNet"
    # the page sends the SSID back without a password: the stored one stays, nothing to reboot for
    assert settings.apply(c, {"wifi_ssid": "HomeNet", "max_current": 16, "local_id_tag": "OWNER1"}) is False
    assert store.load("wifi.json") == {"ssid": "HomeNet", "password": "home-secret"}
    assert c["MaxCurrent"] == 16 and c["LocalIdTag"] == "OWNER1" and c["AuthorizationKey"] == "k" * 20
    # nothing is stored when anything is wrong
    try:
        settings.apply(c, {"max_current": 20, "url": "ftp://x"})
        assert False
    except ValueError:
        pass
    assert c["MaxCurrent"] == 16


def test_setup_access_point_gives_way_to_offline_start():
    """Stored Wi-Fi that did not join: the access point is open (SSID from the board name and the
    unique id, the derived password), pilots at +12 V and contactors open; with no save before
    the give-up time, setup.run returns (the application starts offline) instead of restarting."""
    import board
    import machine
    import network
    from uwallbox.web import setup
    setup._GIVE_UP_S = 0.3
    setup.run(board, retry=True)  # machine.reset() would end the process (exit 75)
    ap = network.WLAN.ap
    uid = machine.unique_id()
    assert ap["essid"] == "uwallbox-sim-" + "%02x%02x%02x" % (uid[-3], uid[-2], uid[-1]), ap
    assert ap["password"] == setup.ap_password(uid) and len(ap["password"]) == 10
    assert ap["authmode"] == 3 and not ap["active"]  # WPA2, closed again
    c = board.CONNECTORS[0]
    assert machine.Pin(c["relay"]).value() == 0 and machine.Pin(c["pilot_pwm"]).value() == 1
