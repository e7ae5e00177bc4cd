"""Hostile OCPP-J frames for the charge point: valid requests of every action the CSMS may send,
generated from the OCA JSON schemas of the `ocpp` package, then mutated.

    gen = Hostile(seed=1)
    for f in gen.frames(1000):   # Frame(data, text, expect, kind, action, uid)
        ...

Mutations: wrong types, missing / extra fields, huge strings and numbers, deep nesting,
truncation, bad UTF-8, wrong message type ids, long / missing / non-string unique ids, binary
frames, oversized frames, unknown actions, stray CALLRESULTs and CALLERRORs, garbage.

A mutation that is still a valid request of an action with effects (Reset, UpdateFirmware,
ChangeConfiguration, RemoteStart, ...: UNSAFE) is never produced: each candidate is checked with
jsonschema (integral floats counted as integers, a message type id equal to 2 as a CALL) and
dropped if it passes. What the firmware must do with each frame is in `expect`:
    "answer": a CALL with a valid unique id (a string of at most 36 characters): a CALLRESULT or a
              CALLERROR with that id must come back on the same connection;
    "close":  the frame is over the maximum message size: the firmware closes the WebSocket
              (1009) and reconnects;
    "any":    no answer is required (a stray CALLRESULT, an unreadable frame, invalid UTF-8, a
              binary frame): it may answer a CALLERROR or close the link, it must not act.

Command line: `python tools/hostile.py [N] [--seed S]` prints N frames (kind, expect, preview).
"""
import argparse
import copy
import json
import random
from pathlib import Path

import jsonschema
import ocpp

SCHEMAS = Path(ocpp.__file__).parent / "v16" / "schemas"
MAX_MESSAGE = 65536  # the firmware's largest accepted message (ocpp/session.py _MAX_MESSAGE)

# Every action the CSMS may send to a charge point in OCPP 1.6 (with the security whitepaper).
ACTIONS = (
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ChangeConfiguration",
    "ClearCache", "ClearChargingProfile", "DataTransfer", "DeleteCertificate",
    "ExtendedTriggerMessage", "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics",
    "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "InstallCertificate",
    "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList",
    "SetChargingProfile", "SignedUpdateFirmware", "TriggerMessage", "UnlockConnector",
    "UpdateFirmware",
)
# Actions whose valid requests change the charge point (restart, configuration, transactions,
# reservations, certificates, uploads): only invalid mutations of them are sent.
UNSAFE = frozenset((
    "CertificateSigned", "ChangeAvailability", "ChangeConfiguration", "ClearChargingProfile",
    "DeleteCertificate", "ExtendedTriggerMessage", "GetDiagnostics", "GetLog", "InstallCertificate",
    "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList",
    "SetChargingProfile", "SignedUpdateFirmware", "UnlockConnector", "UpdateFirmware",
))

_WORDS = ("A", "W", "Hard", "Soft", "1", "0", "-1", "true", "x", "\u00e9\u20ac\U0001f50c", "\\",
          "\"", "null", "NaN", "2026-01-01T00:00:00Z", "ws://127.0.0.1:1/", "%s%n", "\x00")


def load(action):
    return json.loads((SCHEMAS / (action + ".json")).read_text())


class Frame:
    __slots__ = ("data", "text", "expect", "kind", "action", "uid")

    def __init__(self, data, expect, kind, action=None, uid=None):
        self.data = data  # str: a text frame; bytes: a binary frame (or, with text, raw UTF-8)
        self.text = True
        self.expect, self.kind, self.action, self.uid = expect, kind, action, uid

    def __repr__(self):
        d = self.data if isinstance(self.data, str) else repr(self.data[:80])
        return "<%s %s %s %s>" % (self.kind, self.expect, self.action, d[:120])


class Hostile:
    def __init__(self, seed=1, actions=ACTIONS):
        self.rnd = random.Random(seed)
        self.actions = actions
        self.schemas = {a: load(a) for a in actions}
        self.validators = {a: jsonschema.Draft4Validator(s) for a, s in self.schemas.items()}
        self.n = 0
        self.skipped = 0  # candidates dropped: still valid requests of an UNSAFE action

    # -- valid requests --------------------------------------------------------------------------
    def _resolve(self, schema, root):
        while "$ref" in schema:
            node = root
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def value(self, schema, root, depth=0):
        """A random instance of SCHEMA (ROOT resolves $ref)."""
        r = self.rnd
        schema = self._resolve(schema, root)
        if "enum" in schema:
            return r.choice(schema["enum"])
        t = schema.get("type")
        if t == "object":
            props = schema.get("properties", {})
            req = set(schema.get("required", ()))
            return {k: self.value(s, root, depth + 1) for k, s in props.items()
                    if k in req or r.random() < 0.5}
        if t == "array":
            return [self.value(schema["items"], root, depth + 1) for _ in range(r.randint(0 if depth else 1, 3))]
        if t == "integer":
            return r.choice((0, 1, 1, 2, r.randint(0, 100000)))
        if t == "number":
            return round(r.choice((0, 6, 16, 32, r.uniform(0, 500))), 1)
        if t == "boolean":
            return r.random() < 0.5
        if schema.get("format") == "date-time":
            return "2026-%02d-%02dT%02d:00:00.000Z" % (r.randint(1, 12), r.randint(1, 28), r.randint(0, 23))
        n = schema.get("maxLength", 20)
        s = "".join(r.choice("ABCDEF0123456789") for _ in range(r.randint(1, min(n, 20))))
        return s

    def valid(self, action):
        return self.value(self.schemas[action], self.schemas[action])

    def uid(self):
        self.n += 1
        return "h%d" % self.n

    # -- mutations -------------------------------------------------------------------------------
    def _paths(self, obj, path=()):
        """Every (path) to a value inside OBJ, containers included."""
        yield path
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from self._paths(v, path + (k,))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                yield from self._paths(v, path + (i,))

    def _junk(self):
        r = self.rnd
        return r.choice((
            None, True, False, 0, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 64, 10 ** 40, 1e308, -1e308, 0.5,
            1.0, 3.14159, "", r.choice(_WORDS), "x" * r.choice((37, 256, 5000, 30000)),
            "\u00e9" * r.choice((10, 3000)), [], {}, [1, "a", None], {"a": {"b": {}}},
            "9" * 400, [[[[[]]]]],
        ))

    def _deep(self):
        n = self.rnd.choice((50, 200, 1000, 5000))
        return json.loads("[" * n + "]" * n) if n <= 500 else _Raw("[" * n + "]" * n) if self.rnd.random() < 0.5 \
            else _Raw('{"a":' * n + "1" + "}" * n)

    def mutate_payload(self, payload):
        """A copy of PAYLOAD with one to three mutations."""
        r = self.rnd
        p = copy.deepcopy(payload)
        for _ in range(r.choice((1, 1, 1, 2, 3))):
            paths = list(self._paths(p))
            path = r.choice(paths)
            op = r.choice(("type", "type", "drop", "extra", "huge", "deep", "null", "dup"))
            parent, key = None, None
            node = p
            for k in path:
                parent, key, node = node, k, node[k]
            if op == "drop" and parent is not None:
                del parent[key]
            elif op == "extra" and isinstance(node, dict):
                node[r.choice(("extra", "x" * 40, "", "idTag", "\u00e9"))] = self._junk()
            elif op == "deep":
                if parent is None:
                    p = {"deep": self._deep()}
                else:
                    parent[key] = self._deep()
            elif op == "dup" and isinstance(node, list) and node:
                node.extend([copy.deepcopy(node[0])] * r.choice((1, 10, 300)))
            else:
                junk = None if op == "null" else (
                    r.choice(("x" * 20000, 10 ** 300, -10 ** 30, 1e300, "\U0001f50c" * 2000))
                    if op == "huge" else self._junk())
                if parent is None:
                    p = junk
                else:
                    parent[key] = junk
        return p

    def frame(self):
        """One hostile Frame (never a valid request of an UNSAFE action)."""
        while True:
            f = self._candidate()
            if not self._dangerous(f):
                return f
            self.skipped += 1

    def _candidate(self):
        r = self.rnd
        action = r.choice(self.actions)
        payload = self.valid(action)
        uid = self.uid()
        roll = r.random()
        if roll < 0.55:  # a request with a mutated payload
            return self._text([2, uid, action, self.mutate_payload(payload)], "answer", "payload", action, uid)
        if roll < 0.62 and action not in UNSAFE:  # the valid request itself
            return self._text([2, uid, action, payload], "answer", "valid", action, uid)
        kind = r.choices(_KINDS, _WEIGHTS)[0]
        if kind == "truncated":
            text = _dumps([2, uid, action, self.mutate_payload(payload) if r.random() < 0.3 else payload])
            return Frame(text[:r.randint(0, len(text) - 1)], "any", kind, action, uid)
        if kind == "badutf8":
            text = _dumps([2, uid, action, payload]).encode()
            i = r.randint(0, len(text))
            bad = r.choice((b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80"))
            # the firmware may read it (its JSON reader takes bytes) or close the link (1007)
            return Frame(text[:i] + bad + text[i:], "any", kind, action, uid)
        if kind == "type":
            t = r.choice((0, 1, 5, 6, -2, "2", 2.5, None, True, [2], 2 ** 70))
            return self._text([t, uid, action, payload], "any", kind, action, uid)
        if kind == "longuid":
            long = "u" * r.choice((37, 40, 100, 5000, 40000))
            return self._text([2, long, action, payload], "any", kind, action, long)
        if kind == "uidtype":
            bad = r.choice((1, None, True, 2.5, [], {}, ""))
            return self._text([2, bad, action, payload], "any" if bad != "" else "answer", kind, action, bad)
        if kind == "elements":
            msg = r.choice(([2, uid], [2, uid, action], [2, uid, action, payload, "extra"],
                            [2, uid, action, payload, payload]))
            return self._text(msg, "answer", kind, action, uid)
        if kind == "binary":
            f = Frame(_dumps([2, uid, action, payload]).encode(), "any", kind, action, uid)
            f.text = False
            return f
        if kind == "oversized":
            return self._text([2, uid, "DataTransfer", {"vendorId": "x", "data": "o" * (MAX_MESSAGE + 10)}],
                              "close", kind, "DataTransfer", uid)
        if kind == "unknown":
            return self._text([2, uid, r.choice(("Foo", "reset", "BootNotification", "Heartbeat", "",
                                                 "StartTransaction", "x" * 500)), payload],
                              "answer", kind, action, uid)
        if kind == "action":
            return self._text([2, uid, r.choice((1, None, [], {}, True)), payload], "answer", kind, action, uid)
        if kind == "stray":
            msg = r.choice(([3, uid, {}], [4, uid, "InternalError", "x", {}], [3, uid], [4, uid],
                            [3, uid, payload, 1], [4, uid, 1, 2, 3]))
            return self._text(msg, "any", kind, action, uid)
        if kind == "garbage":
            g = r.choice(("", " ", "[", "]", "{}", "null", "2", '"x"', "[2,", "[[[", "\u00e9",
                          "".join(chr(r.randint(32, 126)) for _ in range(r.randint(1, 200)))))
            return Frame(g, "any", kind, action, uid)
        if kind == "empty":
            return self._text(r.choice(([], [2], [None, None, None, None])), "any", kind, action, uid)
        if kind == "notlist":
            return self._text({"2": uid, "action": action, "payload": payload}, "any", kind, action, uid)
        # manyuid: a payload with many copies of a valid CALL inside it
        return self._text([2, uid, action, {"x": [[2, uid, action, payload]] * 50}], "answer",
                          kind, action, uid)

    def _text(self, msg, expect, kind, action, uid):
        text = _dumps(msg)
        if len(text.encode()) > MAX_MESSAGE:
            expect = "close"
        return Frame(text, expect, kind, action, uid)

    def _dangerous(self, f):
        """Is frame F still a valid CALL of an UNSAFE action?"""
        data = f.data
        try:
            msg = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return False
        if not isinstance(msg, list) or len(msg) < 4:
            return False
        kind, action = msg[0], msg[2]
        if isinstance(kind, bool) or not isinstance(kind, (int, float)) or kind != 2:
            return False
        if not isinstance(action, str) or action not in UNSAFE:
            return False
        try:
            return self.validators[action].is_valid(_ints(msg[3]))
        except RecursionError:
            return False

    def frames(self, n):
        for _ in range(n):
            yield self.frame()


# the frame-level mutations and their weights (a frame that closes the link costs a reconnect)
_KINDS = ("truncated", "badutf8", "type", "longuid", "uidtype", "elements", "binary", "oversized",
          "unknown", "action", "stray", "garbage", "empty", "notlist", "manyuid")
_WEIGHTS = (10, 3, 10, 6, 6, 6, 2, 1, 8, 6, 8, 8, 5, 4, 4)


class _Raw:
    """JSON text to put in a frame as it is (nesting deeper than the host's json allows)."""

    def __init__(self, text):
        self.text = text


def _dumps(obj):
    """JSON text of OBJ; _Raw parts go in as they are."""
    raws = []

    def enc(o):
        if isinstance(o, _Raw):
            raws.append(o.text)
            return "\x01RAW%d\x01" % (len(raws) - 1)
        raise TypeError(type(o))
    text = json.dumps(obj, default=enc, separators=(",", ":"), ensure_ascii=False)
    for i, raw in enumerate(raws):
        text = text.replace('"\\u0001RAW%d\\u0001"' % i, raw)
    return text


def _ints(obj):
    """OBJ with integral floats as ints (a lenient reader takes 1.0 for 1)."""
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 1e18:
        return int(obj)
    if isinstance(obj, dict):
        return {k: _ints(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_ints(v) for v in obj]
    return obj


# -- the campaign: frames sent to a simulated charge point (tests/harness.py, tools/csms.py) --------

def heap_in_use(cp):
    """Bytes of heap the firmware holds after a full collection (GET /state), the simulated
    hardware's share left out."""
    h = cp.api.state()["heap"]
    return h["alloc"] - h["sim"]


def _online(cp, timeout=60):
    cp.api.wait(lambda s: s["ocpp"]["connected"] and s["ocpp"]["registration"] == "Accepted", timeout)


def send(csms, cp_id, data, text=True):
    """DATA as one WebSocket frame to charge point CP_ID, not recorded: Csms.send_raw() parses
    what it records, and these frames may nest deeper than CPython's json allows."""
    conn = csms._station(cp_id)._connection
    csms._run(conn.send(data, text=True) if text else conn.send(data), 10)


def answer(csms, cp_id, uid, since, timeout=15):
    """The frame of CP_ID answering message id UID (a CALLRESULT or CALLERROR) recorded after
    SINCE (csms.mark()), or None within TIMEOUT s."""
    return csms._wait(lambda m: m.raw and m.direction == "in" and m.cp_id == cp_id and m.unique_id == uid,
                      since, timeout)[1]


def campaign(csms, cp, n, seed=1, warmup=300, every=500, say=None):
    """Send N hostile frames to charge point CP (registered with CSMS) one at a time; return the
    figures. Fails (AssertionError) when a CALL with a valid unique id is not answered (the link
    closed instead, or no answer within 15 s) or the firmware process dies. Heap in use is
    sampled after WARMUP frames (every profile module has been imported by then) and every EVERY
    frames."""
    import time
    gen = Hostile(seed)
    answered = closes = 0
    heap = []  # (frames sent, bytes in use)
    kinds, kinds_expect = {}, {}
    t0 = time.monotonic()
    for i, f in enumerate(gen.frames(n), 1):
        for attempt in (0, 1):
            connects = csms.connects[cp.id]
            since = csms.mark()
            try:
                send(csms, cp.id, f.data, f.text)
            except Exception:  # the link closed under the previous frame: wait, send again
                assert cp.running, "the firmware process died"
                _online(cp)
                continue
            if f.expect == "answer":
                if answer(csms, cp.id, f.uid, since) is not None:
                    answered += 1
                    break
                # no answer: only excusable when the previous frame closed the link ("any")
                assert attempt == 0 and csms.connects[cp.id] != connects or not csms.connected(cp.id), \
                    "frame %d (%r) was not answered" % (i, f)
                _online(cp)
                continue
            if f.expect == "close":
                closes += 1
                cp.api.wait(lambda s: csms.connects[cp.id] > connects, 30)
                _online(cp)
            break
        else:
            raise AssertionError("frame %d (%r) was never answered" % (i, f))
        assert cp.running, "the firmware process died after frame %d (%r)" % (i, f)
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
        kinds_expect[f.expect] = kinds_expect.get(f.expect, 0) + 1
        if i == warmup or i > warmup and (i - warmup) % every == 0 or i == n:
            if not csms.connected(cp.id):
                _online(cp)
            heap.append((i, heap_in_use(cp)))
            if say:
                say("%d frames, heap in use %d B, %d answered, %d reconnects, %.0f s" % (
                    i, heap[-1][1], answered, csms.connects[cp.id] - 1, time.monotonic() - t0))
    # growth: the least-squares slope of the samples (one sample moves by a KB or two with what
    # the tasks hold at that instant)
    mx = sum(x for x, _ in heap) / len(heap)
    my = sum(y for _, y in heap) / len(heap)
    var = sum((x - mx) ** 2 for x, _ in heap)
    per_k = 1000 * sum((x - mx) * (y - my) for x, y in heap) / var if var else 0
    return {"frames": n, "calls": kinds_expect.get("answer", 0), "answered": answered, "closes_expected": closes,
            "reconnects": csms.connects[cp.id] - 1, "skipped_valid_unsafe": gen.skipped,
            "heap": heap, "heap_growth_per_1000_b": round(per_k), "kinds": kinds,
            "seconds": round(time.monotonic() - t0, 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int, nargs="?", default=20)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    gen = Hostile(a.seed)
    for f in gen.frames(a.n):
        print(f)
    print("skipped (still valid requests of an unsafe action):", gen.skipped)


if __name__ == "__main__":
    main()
