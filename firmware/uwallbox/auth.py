"""Authorization of idTags: CSMS, local list, authorization cache, offline rules."""
import asyncio
from micropython import const

from . import store
from .actions import has
from .errors import CallError
from .rpc import Offline

_CACHE = "authcache.json"
_CACHE_MAX = const(64)  # entries kept; the oldest is dropped first


def _valid(info, now):
    """Is idTagInfo INFO Accepted and unexpired at NOW?"""
    if info is None or info.get("status") != "Accepted":
        return False
    exp = info.get("expiryDate")
    if exp:
        from .clock import parse
        try:
            return parse(exp) > now
        except ValueError:
            return False
    return True


class Auth:
    def __init__(self, app):
        self.app = app
        self.cache = store.load(_CACHE, {})

    def local(self, tag):
        """idTagInfo from the local list, else the cache, else None."""
        cfg = self.app.config
        info = None
        if cfg["LocalAuthListEnabled"] and has("localauth"):
            from . import localauth

            info = localauth.lookup(self.app, tag)
        if info is None and cfg["AuthorizationCacheEnabled"]:
            info = self.cache.get(tag)
        return info

    def remember(self, tag, info):
        """Update the cache with the CSMS's answer for TAG."""
        if not self.app.config["AuthorizationCacheEnabled"]:
            return
        self.cache.pop(tag, None)
        while len(self.cache) >= _CACHE_MAX:
            self.cache.pop(next(iter(self.cache)))
        self.cache[tag] = info
        store.save(_CACHE, self.cache)

    def clear(self):
        self.cache = {}
        store.remove(_CACHE)

    async def authorize(self, tag):
        """idTagInfo for TAG, asking the CSMS when online."""
        app, cfg = self.app, self.app.config
        now = app.clock.now()
        local = self.local(tag)
        if app.online.is_set():
            if cfg["LocalPreAuthorize"] and _valid(local, now):
                return local
            try:
                info = (await app.rpc.call("Authorize", {"idTag": tag}))["idTagInfo"]
                self.remember(tag, info)
                return info
            except (Offline, CallError, OSError, asyncio.TimeoutError):
                pass
        if cfg["LocalAuthorizeOffline"] and _valid(local, now):
            return local
        if local is None and cfg["AllowOfflineTxForUnknownId"]:
            return {"status": "Accepted"}
        return {"status": local["status"] if local and local.get("status") != "Accepted" else "Invalid"}
