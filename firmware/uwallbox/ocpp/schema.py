"""Validate an incoming CALL payload against its compact schema (tools/genschemas.py)."""
import json

from .. import clock
from ..errors import NOT_IMPLEMENTED, OCCURENCE, PROPERTY, TYPE, CallError

_DIR = __file__.rsplit("/", 1)[0] + "/schemas/"


def _fail(code, where, what):
    raise CallError(code, (where or "payload") + ": " + what)


def check(node, v, where=""):
    t = node["t"]
    if t == "o":
        if type(v) is not dict:
            _fail(TYPE, where, "object expected")
        props = node.get("p", {})
        for k in node.get("r", ()):
            if k not in v:
                _fail(OCCURENCE, where + k, "required")
        pre = where + "." if where else where
        for k in v:
            sub = props.get(k)
            if sub is None:
                if "x" not in node:
                    _fail(OCCURENCE, pre + k, "not allowed")
            else:
                check(sub, v[k], pre + k)
    elif t == "a":
        if type(v) is not list:
            _fail(TYPE, where, "array expected")
        if len(v) < node.get("n", 0):
            _fail(OCCURENCE, where, "too few items")
        for i, x in enumerate(v):
            check(node["i"], x, "%s[%d]" % (where, i))
    elif t == "s":
        if type(v) is not str:
            _fail(TYPE, where, "string expected")
        if len(v) > node.get("m", len(v)):
            _fail(TYPE, where, "longer than %d" % node["m"])
        if "e" in node and v not in node["e"]:
            _fail(PROPERTY, where, "not one of " + ", ".join(node["e"]))
        if "f" in node:
            try:
                clock.parse(v)
            except ValueError:
                _fail(PROPERTY, where, "not a date-time")
    elif t == "i":
        if type(v) is not int:
            _fail(TYPE, where, "integer expected")
    elif t == "n":
        if type(v) not in (int, float):
            _fail(TYPE, where, "number expected")
    elif type(v) is not bool:
        _fail(TYPE, where, "boolean expected")


def load(action):
    """The compact schema of an ACTION request; CallError NotImplemented when there is none.
    A file of schemas/ (the sources and the .mpy image); in a frozen image, which has no data
    files, the same text from the generated _schemas module (one string constant in flash: the
    module stays loaded, ~0.1 KB, and a lookup copies nothing)."""
    try:
        f = open(_DIR + action + ".json")
    except OSError:
        t = _frozen(action)
        if t is None:
            raise CallError(NOT_IMPLEMENTED, "no schema for " + action)
        return json.loads(t)
    with f:
        return json.loads(f.read())  # a few hundred bytes, a CALL's: read at once (json.load reads a byte at a time, store.load)


def _frozen(action):
    """The schema text of ACTION in _schemas (a line "name text" of its one string constant): a
    view of it, nothing copied; None when it has none."""
    from ._schemas import S
    i = S.find("\n%s " % action)
    if i < 0:
        return None
    i += len(action) + 2
    return memoryview(S)[i:S.find("\n", i)]


def validate(action, payload):
    """Raise CallError unless PAYLOAD is a valid ACTION request."""
    check(load(action), payload)
