"""The web page's admin: a password stored as an iterated, salted SHA-256 (files.WEB_ADMIN),
sessions (a random cookie token and a CSRF token each, expiring), a lock-out after wrong passwords
(from the third in a row: 2 s, doubling up to 64 s; one counter for every client).

No default password: without files.WEB_ADMIN the web server does not start (station mode) and only
the setup access point can set one (or `make deploy`, or the simulator's settings).
"""
import binascii
import hashlib
import os
import time

from micropython import const

from .. import files
from ..flash import store

_ROUNDS = const(1000)  # SHA-256 iterations (ESP32: hardware SHA, a few ms)
_SESSION_MS = const(1800000)  # a session ends 30 min after its last request
_SESSIONS = const(3)  # at most this many at once: the oldest leaves
_FREE_FAILS = const(2)  # wrong passwords in a row before the lock-out starts
_LOCK_MAX_S = const(64)  # then the pause after each doubles from 2 s up to this


def _hash(password, salt, rounds):
    h = hashlib.sha256(salt + password.encode()).digest()
    for _ in range(rounds - 1):
        h = hashlib.sha256(h + salt).digest()
    return binascii.hexlify(h).decode()


def _token():
    return binascii.hexlify(os.urandom(16)).decode()


def set_password(password):
    """Store PASSWORD (8-64 characters) hashed; ValueError otherwise."""
    if not isinstance(password, str) or not 8 <= len(password) <= 64:
        raise ValueError("admin password: 8-64 characters")
    salt = os.urandom(16)
    store.save(files.WEB_ADMIN, {"salt": binascii.hexlify(salt).decode(), "rounds": _ROUNDS,
                                 "hash": _hash(password, salt, _ROUNDS)})


class Sessions:
    def __init__(self):
        self.live = {}  # cookie token -> [csrf token, ticks_ms of the last use]
        self.fails = 0  # wrong passwords in a row
        self.locked_until = None  # ticks_ms before which no password is checked

    def login(self, password):
        """(token, csrf) for the right PASSWORD; None for a wrong one; "locked" while locked out."""
        now = time.ticks_ms()
        if self.locked_until is not None and time.ticks_diff(self.locked_until, now) > 0:
            return "locked"
        rec = store.load(files.WEB_ADMIN)
        if not rec or not isinstance(password, str) or len(password) > 64 \
                or _hash(password, binascii.unhexlify(rec["salt"]), rec["rounds"]) != rec["hash"]:
            self.fails += 1
            if self.fails > _FREE_FAILS:
                self.locked_until = time.ticks_add(
                    now, 1000 * min(_LOCK_MAX_S, 1 << min(self.fails - _FREE_FAILS, 7)))
            return None
        self.fails = 0
        self.locked_until = None
        live = self.live
        while len(live) >= _SESSIONS:
            oldest = None
            for k, v in live.items():
                if oldest is None or time.ticks_diff(v[1], live[oldest][1]) < 0:
                    oldest = k
            del live[oldest]
        token, csrf = _token(), _token()
        live[token] = [csrf, now]
        return token, csrf

    def check(self, cookie, csrf=None):
        """The session of COOKIE (a Cookie header) if live, and, for a state-changing request
        (CSRF given), if CSRF is its token; else None. Refreshes its expiry."""
        token = None
        for part in (cookie or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "sid":
                token = v
        s = self.live.get(token) if token else None
        if s is None:
            return None
        now = time.ticks_ms()
        if time.ticks_diff(now, s[1]) > _SESSION_MS:
            del self.live[token]
            return None
        if csrf is not None and csrf != s[0]:
            return None
        s[1] = now
        return token

    def logout(self, token):
        self.live.pop(token, None)
