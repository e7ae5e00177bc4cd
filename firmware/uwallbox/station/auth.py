"""Authorization of idTags: CSMS, local list, authorization cache, offline rules."""
import asyncio
from micropython import const

from ..errors import CallError, Offline
from .. import files, transient
from ..flash import store

_CACHE_MAX = const(64)  # entries kept; the oldest is dropped first


def _status(info, now):
    """The status of idTagInfo INFO at NOW: Accepted past its expiryDate is Expired."""
    status, exp = info.get("status"), info.get("expiryDate")
    if status == "Accepted" and exp:
        from ..clock import parse
        try:
            return "Accepted" if parse(exp) > now else "Expired"
        except ValueError:
            return "Invalid"
    return status


def same(a, b):
    """Are idTags A and B the same? IdToken is a CiString20: case-insensitive."""
    return a is not None and b is not None and a.upper() == b.upper()


def _valid(info, now):
    """Is idTagInfo INFO Accepted and unexpired at NOW?"""
    return info is not None and _status(info, now) == "Accepted"


class Auth:
    def __init__(self, app):
        self.app = app
        self.cache = store.load(files.AUTH_CACHE, {})
        if store.exists(files.LOCAL_LIST_INDEX):
            with transient():
                from ..flash.cardstore import CardStore
                CardStore().sweep()  # what an update cut by a power loss left

    def listed(self, tag):
        """idTagInfo of TAG in the local list (when enabled), or None."""
        if self.app.config["LocalAuthListEnabled"] and store.exists(files.LOCAL_LIST_INDEX):
            with transient():  # a run of SendLocalList may hold the list: it stays
                from ..profiles import localauth
                return localauth.lookup(self.app, tag)
        return None

    def local(self, tag):
        """idTagInfo from the local list, else the cache, else None."""
        info = self.listed(tag)
        if info is None and self.app.config["AuthorizationCacheEnabled"]:
            info = self.cache.get(tag.upper())
        return info

    def remember(self, tag, info):
        """Cache the CSMS's answer for TAG; for a listed TAG, report an answer that contradicts
        the list instead (the cache never holds listed idTags)."""
        listed = self.listed(tag)
        if listed is not None:
            if _status(listed, self.app.clock.now()) != info["status"]:
                self.app.statuses.conflict(tag)
            return
        if not self.app.config["AuthorizationCacheEnabled"]:
            return
        tag = tag.upper()
        self.cache.pop(tag, None)
        while len(self.cache) >= _CACHE_MAX:
            self.cache.pop(next(iter(self.cache)))
        self.cache[tag] = info
        store.save(files.AUTH_CACHE, self.cache)

    def clear(self):
        self.cache = {}
        store.remove(files.AUTH_CACHE)

    async def authorize(self, tag):
        """idTagInfo for TAG, asking the CSMS when online."""
        app, cfg = self.app, self.app.config
        now = app.clock.now()
        local = self.local(tag)
        if app.session.online.is_set():
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
        status = _status(local, now) if local else "Invalid"
        return {"status": "Invalid" if status == "Accepted" else status}
