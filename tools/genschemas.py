#!/usr/bin/env python3
"""Compact the OCA JSON schemas of the requests a charge point receives into
firmware/uwallbox/ocpp/schemas/<Action>.json, the form uwallbox.ocpp.schema validates with, and those of the
OCPP 2.0.1 requests ISO 15118 Plug & Charge brings in DataTransfer into schemas/pnc/<Message>.json.
The actions are those of the routing table (ocpp/routes.py), the Plug & Charge messages those
profiles/pnc.py answers (its MESSAGES): both read from the sources, never listed here.

Node forms: {"t": "o", "p": {name: node}, "r": [required], "x": 1 if extra keys are allowed} object; {"t": "a", "i": node, "n": min}
array; {"t": "s", "m": maxLength, "e": [enum], "f": "dt"} string; {"t": "i"} integer;
{"t": "n"} number; {"t": "b"} boolean. Absent keys mean no constraint.
Run with --check to verify the committed files are current.
"""
import ast
import json
import sys
from pathlib import Path

import ocpp

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware" / "uwallbox"
OUT = FIRMWARE / "ocpp" / "schemas"
SRC = Path(ocpp.__file__).parent / "v16" / "schemas"
SRC_PNC = Path(ocpp.__file__).parent / "v201" / "schemas"


def _assigned(path, name):
    """The value node of the top-level assignment to NAME in the Python file PATH."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return node.value
    raise LookupError(f"no {name} in {path}")


def actions():
    """CSMS -> charge point requests (OCPP 1.6 and its security extension): the routing table's."""
    table = ast.literal_eval(_assigned(FIRMWARE / "ocpp" / "routes.py", "_ROUTES"))
    return sorted(line.split()[0] for line in table.splitlines() if line.strip())


def pnc_messages():
    """CSMS -> charge point requests of Plug & Charge (2.0.1 payloads): the messageIds of
    profiles/pnc.py's MESSAGES, the first string of each (name, handler) pair."""
    value = _assigned(FIRMWARE / "profiles" / "pnc.py", "MESSAGES")
    return sorted(n.elts[0].value for n in ast.walk(value) if isinstance(n, ast.Tuple) and n.elts
                  and isinstance(n.elts[0], ast.Constant) and isinstance(n.elts[0].value, str))
_TYPES = {"object": "o", "array": "a", "string": "s", "integer": "i", "number": "n", "boolean": "b"}


def compact(node, root):
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        node = root["definitions"][name]
    out = {"t": _TYPES[node["type"]]}
    if out["t"] == "o":
        out["p"] = {k: compact(v, root) for k, v in node.get("properties", {}).items()}
        if node.get("required"):
            out["r"] = node["required"]
        if node.get("additionalProperties", True) is not False:
            out["x"] = 1
    elif out["t"] == "a":
        out["i"] = compact(node["items"], root)
        if node.get("minItems"):
            out["n"] = node["minItems"]
    elif out["t"] == "s":
        if "maxLength" in node:
            out["m"] = node["maxLength"]
        if "enum" in node:
            out["e"] = node["enum"]
        if node.get("format") == "date-time":
            out["f"] = "dt"
    return out


def generate():
    files = {}
    for src, folder, suffix, names in ((SRC, "", "", actions()), (SRC_PNC, "pnc/", "Request", pnc_messages())):
        for action in names:
            root = json.loads((src / (action + suffix + ".json")).read_text())
            text = json.dumps(compact(root, root), separators=(",", ":"))
            files[folder + action + ".json"] = text + "\n"
    return files


def main():
    files = generate()
    if "--check" in sys.argv:
        stale = [n for n, t in files.items() if not (OUT / n).exists() or (OUT / n).read_text() != t]
        stale += [p.relative_to(OUT).as_posix() for p in OUT.rglob("*.json")  # no longer routed
                  if p.relative_to(OUT).as_posix() not in files]
        print("stale: " + " ".join(stale) if stale else "schemas are current")
        return 1 if stale else 0
    for name, text in files.items():
        (OUT / name).parent.mkdir(parents=True, exist_ok=True)
        (OUT / name).write_text(text)
    print("wrote %d schemas to %s (%d bytes)" % (len(files), OUT, sum(map(len, files.values()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
