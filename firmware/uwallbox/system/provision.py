"""First boot: settings.json (written by the simulator or `make deploy`) goes into the
configuration and the key and certificate files, then is deleted."""
import pem

from .. import files
from ..flash import store
from ..log import log

_KEYS = (("url", "CentralSystemUrl"), ("id", "ChargePointId"), ("security_profile", "SecurityProfile"),
         ("authorization_key", "AuthorizationKey"))
# PEM texts stored as DER (MicroPython's TLS wants DER), for flash/certs.py
_FILES = (("ca", files.CA), ("client_key", files.CP_KEY), ("client_csr", files.CP_CSR),
          ("v2g_csr", files.V2G_CSR))


def apply(config):
    """Merge settings.json, if there is one, into CONFIG and the files."""
    s = store.load(files.SETTINGS)
    if s is None:
        return
    for name, key in _KEYS:
        if name in s:
            config.set(key, s[name])
    for name, path in _FILES:
        if name in s:
            ders = pem.to_der(s[name])
            if ders:
                store.write(path, ders[0])
            else:
                log("!", "settings: %s is not PEM: ignored" % name)
    if s.get("admin_password"):  # the web page's admin password, stored hashed
        from ..web.auth import set_password
        set_password(s["admin_password"])
    store.remove(files.SETTINGS)
