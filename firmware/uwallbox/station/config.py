"""Configuration values: typed, persisted (files.CONFIG, atomic), over the key table
(station/keytable.py). The rules of a change are station/keyrules.py, loaded for a change only."""

from .. import files, transient
from ..flash import store
from .keytable import spec


class Config:
    """Typed values over the key table; `listener(key)` hears every accepted change."""

    def __init__(self, overrides=None):
        self.values = store.load(files.CONFIG, {})
        self._defaults = {}  # default values read so far
        self.fixed = overrides or {}  # read-only values set by the board
        self.listener = None

    def __getitem__(self, key):
        """The value of KEY. Allocates nothing once KEY has been read: a default is read from
        the table once and kept (the tasks read some keys every second)."""
        v = self.fixed.get(key)
        if v is None:
            v = self.values.get(key)
        if v is None:
            v = self._defaults.get(key)
        if v is None:
            v = self._defaults[key] = self.default(key)
        return v

    def get(self, key, default):
        """The value of KEY, DEFAULT (its default: the caller has the table) if it has none set;
        keeps nothing (GetConfiguration of every key)."""
        v = self.fixed.get(key)
        if v is None:
            v = self.values.get(key)
        return default if v is None else v

    @staticmethod
    def default(key):
        """The default value of KEY (KeyError: no such key), from the table."""
        s = spec(key)
        if s is None:
            raise KeyError(key)
        return s[2]

    def change(self, key, value):
        """ChangeConfiguration: 'Accepted' | 'Rejected' | 'RebootRequired' | 'NotSupported'."""
        with transient():
            from .keyrules import change
            return change(self, key, value)

    def set(self, key, v):
        """Store a typed value (already validated) and persist it."""
        d = self._defaults.get(key)
        if v == (self.default(key) if d is None else d):
            self.values.pop(key, None)
        else:
            self.values[key] = v
        store.save(files.CONFIG, self.values)
        if self.listener:
            self.listener(key)
