"""The settings form of the page (station and setup mode): what it shows and how a save is checked
and applied. The rules and messages are those of `make deploy` (tools/deploy.py); secrets (the
AuthorizationKey, the Wi-Fi and admin passwords) are write-only: never sent to the browser, an
empty field keeps the stored one."""
from .. import files
from ..flash import store

# form field -> configuration key
_KEYS = (("url", "CentralSystemUrl"), ("id", "ChargePointId"), ("security_profile", "SecurityProfile"),
         ("max_current", "MaxCurrent"), ("local_id_tag", "LocalIdTag"), ("free_charging", "FreeCharging"))
_REBOOT = ("url", "id", "security_profile", "authorization_key", "wifi_ssid", "wifi_password")


def shown(config):
    """The values the form shows: no secret, only whether it is set."""
    d = {name: config[key] for name, key in _KEYS}
    d["authorization_key_set"] = bool(config["AuthorizationKey"])
    wifi = store.load(files.WIFI) or {}
    d["wifi_ssid"] = wifi.get("ssid", "")
    return d


def _text(d, key, lo, hi, what, problems):
    v = d.get(key)
    if not isinstance(v, str):
        problems.append("%s: %s: %s" % (key, "missing" if v is None else "must be a string", what))
    elif not lo <= len(v) <= hi:
        problems.append("%s: %d characters, must be %d to %d: %s" % (key, len(v), lo, hi, what))
    else:
        return v
    return None


def check(d, config, setup=False):
    """Form D checked -> {field: value} of what changes; ValueError naming every problem.
    SETUP: the first setup, where Wi-Fi, URL, id and the admin password are required."""
    problems = []
    known = [n for n, _ in _KEYS] + ["authorization_key", "wifi_ssid", "wifi_password", "admin_password"]
    for k in d:
        if k not in known:
            problems.append("unknown setting %r" % k)
    out = {}
    if setup or d.get("wifi_ssid"):
        ssid = _text(d, "wifi_ssid", 1, 32, "the Wi-Fi network name", problems)
        if ssid is not None and len(ssid.encode()) > 32:
            problems.append("wifi ssid: longer than 32 bytes")
        pw = d.get("wifi_password")
        stored = store.load(files.WIFI) or {}
        if pw is None or (pw == "" and not setup):  # no password given: the stored one stays
            pw = stored.get("password", "") if stored.get("ssid") == ssid else ""
        if not isinstance(pw, str) or not (pw == "" or 8 <= len(pw) <= 63 or (
                len(pw) == 64 and all(c in "0123456789abcdefABCDEF" for c in pw))):
            problems.append("wifi password: 8 to 63 characters (WPA2), 64 hex digits, or empty (open network)")
        elif ssid and (ssid, pw) != (stored.get("ssid"), stored.get("password")):
            out["wifi"] = {"ssid": ssid, "password": pw}
    url = d.get("url") if "url" in d or setup else None
    if url is not None or setup:
        url = _text(d, "url", 1, 200, "the CSMS base URL, e.g. ws://csms.example.com:9000/ocpp", problems)
        if url is not None:
            scheme, _, rest = url.partition("://")
            host = rest.split("/")[0].split(":")[0]
            if scheme not in ("ws", "wss") or not host:
                problems.append("url: %r is not a ws:// or wss:// URL" % url)
            elif host == "example.com" or host.endswith(".example.com"):
                problems.append("url: still the example's: give the address of your CSMS")
            else:
                out["url"] = url
    if "id" in d or setup:
        cp = _text(d, "id", 1, 48, "the charge point id the CSMS knows", problems)
        if cp is not None:
            if not all(32 < ord(c) < 127 for c in cp):
                problems.append("id: printable ASCII characters only")
            else:
                out["id"] = cp
    profile = d.get("security_profile", config["SecurityProfile"])
    if type(profile) is not int or not 0 <= profile <= 3:
        problems.append("security_profile: %r is not 0, 1 or 2" % (profile,))
    elif profile != config["SecurityProfile"]:
        if profile == 3:
            problems.append("security_profile: 3 needs a client certificate: the CSMS installs one and raises the profile")
        if profile == 2 and not out.get("url", config["CentralSystemUrl"]).startswith("wss://"):
            problems.append("security_profile 2 (TLS) needs a wss:// url")
        out["security_profile"] = profile
    key = d.get("authorization_key") or None
    if key is not None:
        key = _text(d, "authorization_key", 16, 40, "the Basic auth password of security profiles 1 and 2",
                    problems)
        if key:
            out["authorization_key"] = key
    elif profile in (1, 2) and not config["AuthorizationKey"]:
        problems.append("authorization_key: missing: the Basic auth password of security profiles 1 and 2")
    if profile in (1, 2) and ":" in out.get("id", config["ChargePointId"]):
        problems.append("id: no ':' with HTTP Basic authentication (security profiles 1 and 2)")
    if "max_current" in d:
        a = d["max_current"]
        if type(a) is not int or not 6 <= a <= 80:
            problems.append("max_current: 6 to 80 A")
        else:
            out["max_current"] = a
    if "local_id_tag" in d:
        t = d["local_id_tag"]
        if not isinstance(t, str) or len(t) > 20:
            problems.append("local_id_tag: up to 20 characters")
        else:
            out["local_id_tag"] = t
    if "free_charging" in d:
        if type(d["free_charging"]) is not bool:
            problems.append("free_charging: true or false")
        else:
            out["free_charging"] = d["free_charging"]
    pw = d.get("admin_password") or None
    if pw is not None or setup:
        if not isinstance(pw, str) or not 8 <= len(pw) <= 64:
            problems.append("admin_password: 8 to 64 characters")
        else:
            out["admin_password"] = pw
    if problems:
        raise ValueError("; ".join(problems))
    return out


def apply(config, d, setup=False):
    """Check form D, then store it (each file atomically: flash/store.py); True if a reboot is
    needed for it to take effect. ValueError (nothing stored) if anything is wrong."""
    out = check(d, config, setup)
    reboot = "wifi" in out
    if reboot:
        store.save(files.WIFI, out.pop("wifi"))
    if "admin_password" in out:
        from .auth import set_password
        set_password(out.pop("admin_password"))
    names = dict(_KEYS)
    names["authorization_key"] = "AuthorizationKey"
    for k, v in out.items():
        if config[names[k]] != v:
            config.set(names[k], v)
            reboot = reboot or k in _REBOOT
    return reboot
