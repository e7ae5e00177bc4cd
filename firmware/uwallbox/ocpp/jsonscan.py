"""Walk JSON text without building it: the spans of array elements and object members.

Works on any bytes-like BUF (a memoryview of the received str costs no copy), so a large message
can be parsed piece by piece with json.loads(buf[start:end]). Structure errors raise ValueError.
"""
import json
from micropython import const

_QUOTE = const(34)  # "
_BACKSLASH = const(92)
_COMMA = const(44)
_COLON = const(58)
_LBRACKET = const(91)
_RBRACKET = const(93)
_LBRACE = const(123)
_RBRACE = const(125)
_SPACE = b" \t\r\n"
_SCALAR_END = b" \t\r\n,]}"


def skip(buf, i):
    """Index of the first byte at or after I that is not whitespace (len(buf) at the end)."""
    n = len(buf)
    while i < n and buf[i] in _SPACE:
        i += 1
    return i


def _at(buf, i):
    if i >= len(buf):
        raise ValueError("JSON text ends too early")
    return buf[i]


def end(buf, i):
    """Index just past the JSON value that starts at BUF[I]."""
    c = _at(buf, i)
    n = len(buf)
    if c != _LBRACE and c != _LBRACKET and c != _QUOTE:  # number, true, false, null
        while i < n and buf[i] not in _SCALAR_END:
            i += 1
        return i
    depth = 0
    try:
        while True:
            c = buf[i]
            i += 1
            if c == _QUOTE:
                c = buf[i]
                while c != _QUOTE:
                    if c == _BACKSLASH:
                        i += 1
                    i += 1
                    c = buf[i]
                i += 1
                if not depth:
                    return i
            elif c == _LBRACE or c == _LBRACKET:
                depth += 1
            elif c == _RBRACE or c == _RBRACKET:
                depth -= 1
                if not depth:
                    return i
    except IndexError:
        raise ValueError("JSON text ends too early")


def _first(buf, i, opening, closing):
    """Start of the first item of the array or object at BUF[I]; -1 when it is empty."""
    if _at(buf, i) != opening:
        raise ValueError("array or object expected")
    i = skip(buf, i + 1)
    return -1 if _at(buf, i) == closing else i


def _next(buf, i, closing):
    """Start of the item after the one that ends at I; -1 at the closing bracket."""
    i = skip(buf, i)
    c = _at(buf, i)
    if c == closing:
        return -1
    if c != _COMMA:
        raise ValueError("',' expected")
    return skip(buf, i + 1)


def elements(buf, i):
    """(start, end) of each element of the JSON array at BUF[I]."""
    i = _first(buf, i, _LBRACKET, _RBRACKET)
    while i >= 0:
        j = end(buf, i)
        yield i, j
        i = _next(buf, j, _RBRACKET)


def members(buf, i):
    """(key, start, end) of each member of the JSON object at BUF[I]; the value is BUF[start:end]."""
    i = _first(buf, i, _LBRACE, _RBRACE)
    while i >= 0:
        if _at(buf, i) != _QUOTE:
            raise ValueError("member name expected")
        j = end(buf, i)
        key = json.loads(buf[i:j])
        i = skip(buf, j)
        if _at(buf, i) != _COLON:
            raise ValueError("':' expected")
        i = skip(buf, i + 1)
        j = end(buf, i)
        yield key, i, j
        i = _next(buf, j, _RBRACE)
