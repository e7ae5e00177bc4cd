"""The local authorization list in flash: fixed-size card records in hashed, sorted bucket files.

    lal/index   version, count, generation, then for each bucket the generation of its file (0: none)
    lal/B.G     the records of bucket B as update G wrote them, sorted by key

A record is the key (the idTag in upper case: idTags compare case-insensitively), parentIdTag,
expiry (Unix seconds, 0: none) and a status code. A lookup hashes the key to its bucket and binary
searches the file with seek + readinto into one preallocated buffer. An update writes each bucket it
changes as a new file, then switches to them by replacing the index (one rename): after a power cut
the list is the old or the new one, never a mix. `sweep()`, at boot, removes files the index does
not name, i.e. what an interrupted update left (a failed update removes its own at once).
"""
import os
import struct
from array import array
from micropython import const

from .. import files
from . import store

KEY = const(20)  # bytes of a key: an idTag is at most 20 characters
RECORD = const(45)  # bytes of a record
REMOVE = const(255)  # status code of a change that removes its key
_FORMAT = "<20s20sIB"  # key, parentIdTag, expiry, status code
_BUCKETS = const(128)  # 10,000 cards: ~80 records, 3.5 KB, one flash block per bucket
_HEAD = "<iII"  # version, count, generation
_HEAD_SIZE = const(12)
_INDEX = "index"


def key(tag):
    """The key of idTag TAG; ValueError unless TAG is 1-20 ASCII characters."""
    k = tag.upper().encode()
    if not 0 < len(k) <= KEY or len(k) != len(tag):
        raise ValueError("an idTag must be 1-20 ASCII characters")
    return k + bytes(KEY - len(k))


def pack_into(buf, i, tag, status, expiry, parent):
    """Write the record of TAG at BUF[I]: STATUS code (REMOVE: remove TAG), EXPIRY (Unix seconds,
    or None), PARENT idTag ('' for none)."""
    p = parent.encode()
    if len(p) > KEY:
        raise ValueError("a parentIdTag must be at most 20 ASCII characters")
    t = 0 if expiry is None else min(max(int(expiry), 1), 0xFFFFFFFF)
    struct.pack_into(_FORMAT, buf, i, key(tag), p, t, status)


def unpack(rec):
    """(status code, expiry or None, parent idTag or '') of record REC."""
    _, parent, expiry, status = struct.unpack(_FORMAT, rec)
    return status, expiry or None, parent.rstrip(b"\0").decode()


def bucket(buf, i=0):
    """Bucket of the key (or the record) at BUF[I]."""
    h = 0
    for j in range(i, i + KEY):
        h = (h * 31 + buf[j]) & 0xFFFFFF
    return (h ^ h >> 12) & (_BUCKETS - 1)


class CardStore:
    """The list in directory PATH: `version`, `count`, `get(tag)`, `update(...)`."""

    def __init__(self, path=files.LOCAL_LIST):
        self.path = path
        self._rec = bytearray(RECORD)
        self._key = memoryview(self._rec)[:KEY]
        # generation of each bucket's file (0: none), read from the index; made from a range,
        # not from bytes: no 512 B of garbage beside it
        slots = self._slots = array("I", range(_BUCKETS))
        self.version = self.count = self._gen = 0
        store.mkdir(path)
        try:
            with open(self._name(_INDEX), "rb") as f:
                head = f.read(_HEAD_SIZE)
                if f.readinto(slots) == 4 * _BUCKETS:
                    self.version, self.count, self._gen = struct.unpack(_HEAD, head)
        except OSError:
            pass
        if not self._gen:  # no index, or a short one: no list
            for b in range(_BUCKETS):
                slots[b] = 0

    def sweep(self):
        """Remove the files the index does not name: what an update cut by a power loss left.
        Once, at boot (a lookup opens the store for itself and reads no directory)."""
        for name in [e[0] for e in os.ilistdir(self.path) if not self._named(e[0])]:
            os.remove(self._name(name))

    def _name(self, name):
        return self.path + "/" + name

    def _file(self, b, gen):
        return "%s/%d.%d" % (self.path, b, gen)

    def _named(self, name):
        """Is NAME the index or a bucket file that it names?"""
        if name == _INDEX:
            return True
        b, _, g = name.partition(".")
        return (b.isdigit() and g.isdigit() and int(b) < _BUCKETS
                and self._slots[int(b)] == int(g) != 0)

    def get(self, tag):
        """The record of TAG, or None. It is a buffer that the next get or update overwrites."""
        try:
            k = key(tag)
        except ValueError:
            return None
        b = bucket(k)
        gen = self._slots[b]
        if not gen:
            return None
        rec, kv = self._rec, self._key
        with open(self._file(b, gen), "rb") as f:
            lo, hi = 0, f.seek(0, 2) // RECORD
            while lo < hi:
                mid = (lo + hi) >> 1
                f.seek(mid * RECORD)
                f.readinto(rec)
                if kv < k:
                    lo = mid + 1
                elif kv > k:
                    hi = mid
                else:
                    return rec
        return None

    def update(self, where, fill, full, version, limit):
        """Apply the changes, records that FILL(i, buf, offset) writes (status REMOVE removes the
        key), to the list, or to an empty list when FULL, then set VERSION. WHERE holds the bucket
        of each change (bytes): a bucket's changes are made when it is written, so the whole
        update never exists in RAM (1.3 KB for 30 cards, at the peak of every SendLocalList).
        ValueError, with nothing changed, when a key comes twice or the list would hold more
        than LIMIT records."""
        gen = self._gen + 1
        # the slots change in place (a copy is 512 B more at the peak of every SendLocalList;
        # the undo record of 30 buckets is 272 B, 32-bit build),
        # and what changed is undone on failure; a full update over a list keeps a copy, to
        # remove the old list's files (or to undo)
        slots = old = self._slots
        if full:
            if self._gen:
                old = array("I", slots)
            for b in range(_BUCKETS):
                slots[b] = 0
        undo = array("I")  # each bucket written, then its generation before: 8 B a bucket
        count = 0 if full else self.count
        try:
            for b in range(_BUCKETS):
                if b not in where:
                    continue
                mine = bytearray(RECORD * sum(1 for w in where if w == b))
                at = 0
                for i in range(len(where)):
                    if where[i] == b:
                        fill(i, mine, at)
                        at += RECORD
                mine = memoryview(mine)
                order = sorted(range(0, at, RECORD), key=lambda i: mine[i:i + KEY])
                name = self._file(b, gen)
                src = self._file(b, old[b]) if old[b] and not full else None
                with open(name, "wb") as out:
                    kept, delta = self._merge(src, mine, order, out)
                mine = order = None
                count += delta
                undo.append(b)
                undo.append(slots[b])
                slots[b] = gen if kept else 0
                if not kept:
                    os.remove(name)
            if count > limit:
                raise ValueError("the list would hold %d cards, more than %d" % (count, limit))
            store.write(self._name(_INDEX), struct.pack(_HEAD, version, count, gen), slots)
        except Exception:
            if old is not slots:
                slots[:] = old
            else:
                for i in range(0, len(undo), 2):
                    slots[undo[i]] = undo[i + 1]
            for b in range(_BUCKETS):
                if b in where:
                    store.remove(self._file(b, gen))
            raise
        self.version, self.count, self._gen = version, count, gen
        if old is not slots:  # every file of the old list goes
            for b in range(_BUCKETS):
                if old[b]:
                    os.remove(self._file(b, old[b]))
        else:
            for i in range(0, len(undo), 2):
                b, g = undo[i], undo[i + 1]
                if g and g != slots[b]:
                    os.remove(self._file(b, g))

    def _merge(self, src, changes, order, out):
        """Write the records of file SRC (None: none) merged with the CHANGES records at offsets
        ORDER (sorted by key) to OUT. Returns (records written, change of the count)."""
        rec, kv = self._rec, self._key
        f = open(src, "rb") if src else None
        have = f is not None and f.readinto(rec) == RECORD
        kept = delta = 0
        last = None
        try:
            for i in order:
                k = changes[i:i + KEY]
                if k == last:
                    raise ValueError("idTag %s comes twice" % bytes(k).rstrip(b"\0").decode())
                last = k
                while have and kv < k:
                    out.write(rec)
                    kept += 1
                    have = f.readinto(rec) == RECORD
                if have and kv == k:
                    delta -= 1
                    have = f.readinto(rec) == RECORD
                if changes[i + RECORD - 1] != REMOVE:
                    out.write(changes[i:i + RECORD])
                    kept += 1
                    delta += 1
            while have:
                out.write(rec)
                kept += 1
                have = f.readinto(rec) == RECORD
        finally:
            if f:
                f.close()
        return kept, delta
