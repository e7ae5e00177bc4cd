"""Local Auth List Management: SendLocalList, GetLocalListVersion, and the lookups auth.py makes.

The list lives in flash (cardstore). rpc hands SendLocalList over as JSON text, which is parsed
here one entry at a time: a long list never exists as Python objects in RAM.
"""
import json
from array import array
from micropython import const

from .. import clock
from ..errors import FORMATION, OCCURENCE, PROPERTY, CallError
from ..flash.cardstore import RECORD, REMOVE, CardStore, bucket, pack_into, unpack
from ..log import log
from ..ocpp import jsonscan, schema

_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")  # record status codes
_LIST = "localAuthorizationList"
_ARRAY = const(91)  # '['
_cards = None


def cards():
    """The list in flash, opened on first use."""
    global _cards
    if _cards is None:
        _cards = CardStore()
    return _cards


def version():
    """The list's version: 0 when the list is empty (OCPP 1.6, GetLocalListVersion)."""
    c = cards()
    return c.version if c.count else 0


def lookup(app, tag):
    """idTagInfo of TAG in the local list, or None."""
    rec = cards().get(tag)
    if rec is None:
        return None
    status, expiry, parent = unpack(rec)
    info = {"status": _STATUSES[status]}
    if expiry:
        info["expiryDate"] = clock.iso(expiry)
    if parent:
        info["parentIdTag"] = parent
    return info


def get_local_list_version(app, p):
    return {"listVersion": version()}


def send_local_list(app, text):
    """SendLocalList, given the payload's JSON text (str, bytes or memoryview)."""
    buf = memoryview(text)
    cfg = app.config
    # the whole payload is validated first, as every other CALL is: a malformed entry gets its
    # CALLERROR whatever the list's version or state
    head, start = _head(buf)
    full = head["updateType"] == "Full"
    changes = _changes(buf, start, full, cfg["SendLocalListMaxLength"])
    if not cfg["LocalAuthListEnabled"]:
        return {"status": "NotSupported"}
    if not full and head["listVersion"] <= version():
        return {"status": "VersionMismatch"}
    if changes is None:
        return {"status": "Failed"}
    where, spans = changes

    def fill(i, out, at):  # the record of entry I, parsed again (validated above)
        _record(out, at, json.loads(buf[spans[2 * i]:spans[2 * i + 1]]), full, None, i)
    try:
        cards().update(where, fill, full, head["listVersion"], cfg["LocalAuthListMaxLength"])
    except ValueError as e:
        log("auth", "SendLocalList refused: %s" % e)
        return {"status": "Failed"}
    log("auth", "local list version %d: %d cards" % (version(), cards().count))
    return {"status": "Accepted"}


def _head(buf):
    """The payload's members but the list, validated; and where the list's array starts (or None)."""
    head, start = {}, None
    try:
        for name, a, b in jsonscan.members(buf, jsonscan.skip(buf, 0)):
            if name == _LIST and buf[a] == _ARRAY:
                start = a
            else:
                head[name] = json.loads(buf[a:b])
    except ValueError as e:
        raise CallError(FORMATION, "SendLocalList: %s" % e)
    schema.check(schema.load("SendLocalList"), head)
    return head, start


def _changes(buf, start, full, most):
    """The list at BUF[START], validated one entry at a time: (the cardstore bucket of each entry
    (bytes), where each entry is in BUF (start, end, start, ...)); None when it has more than
    MOST entries. No record is kept: cardstore makes a bucket's records when it writes it."""
    try:
        n = 0 if start is None else sum(1 for _ in jsonscan.elements(buf, start))
        if n > most:
            log("auth", "SendLocalList refused: %d entries, more than SendLocalListMaxLength" % n)
            return None
        where, spans = bytearray(n), array("I", range(2 * n))
        if n:
            rec = bytearray(RECORD)
            item = schema.load("SendLocalList")["p"][_LIST]["i"]
            for i, (a, b) in enumerate(jsonscan.elements(buf, start)):
                _record(rec, 0, json.loads(buf[a:b]), full, item, i)
                where[i] = bucket(rec)
                spans[2 * i], spans[2 * i + 1] = a, b
        return bytes(where), spans  # bytes: `in` (cardstore) is not implemented for a bytearray
    except ValueError as e:
        raise CallError(FORMATION, "%s: %s" % (_LIST, e))


def _record(out, at, entry, full, item, i):
    """Validate ENTRY, number I of the list, against ITEM (None: validated before), and write its
    cardstore record (an update, or a removal: an entry without idTagInfo) at OUT[AT]."""
    where = "%s[%d]" % (_LIST, i)
    if item is not None:
        schema.check(item, entry, where)
    info = entry.get("idTagInfo")
    try:
        if info is None:
            if full:
                raise CallError(OCCURENCE, where + ".idTagInfo: required in a Full update")
            pack_into(out, at, entry["idTag"], REMOVE, None, "")
        else:
            exp = info.get("expiryDate")
            pack_into(out, at, entry["idTag"], _STATUSES.index(info["status"]),
                      clock.parse(exp) if exp else None, info.get("parentIdTag", ""))
    except ValueError as e:
        raise CallError(PROPERTY, "%s: %s" % (where, e))
