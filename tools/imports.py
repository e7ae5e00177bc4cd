#!/usr/bin/env python3
"""The import graph of the device code: firmware/ (package uwallbox), the board definitions and the
simulator's MicroPython side (sim/mpy/); every import counts, those inside functions (the lazy
ones) and `__import__("uwallbox.profiles." + name)` (rpc's, of every profile module) too.

    tools/imports.py            each module and what it imports
    tools/imports.py --check    exit 1, naming them, if modules import each other in a cycle

`make test` runs --check: a cycle makes the order of initialisation matter and the parts
inseparable, so none may come back.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FLAT = (ROOT / "sim" / "mpy",) + tuple(sorted((ROOT / "boards").iterdir()))  # folders on MICROPYPATH
DYNAMIC = "uwallbox.profiles."  # __import__(DYNAMIC + name): any module of that package


def modules():
    """{module name: path}; a board's board.py is `board@<folder>` (each board is one `board`)."""
    found = {}
    for p in FIRMWARE.rglob("*.py"):
        parts = list(p.relative_to(FIRMWARE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = p
    for folder in FLAT:
        for p in folder.glob("*.py"):
            found[p.stem if p.stem != "board" else "board@" + folder.name] = p
    return found


def imports(name, path, known):
    """The modules of KNOWN that module NAME (file PATH) imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            for a in node.names:
                full = mod + "." + a.name
                found.add(full if full in known else mod)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.BinOp) and getattr(arg.left, "value", None) == DYNAMIC:
                found.update(m for m in known if m.startswith(DYNAMIC))
    boards = [m for m in known if m.startswith("board@")]
    if "board" in found:  # the board a module imports is any board
        found.discard("board")
        found.update(boards)
    return {m for m in found if m in known and m != name}


def cycles(graph):
    """The strongly connected components of GRAPH with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    known = modules()
    graph = {m: imports(m, p, known) for m, p in known.items()}
    found = cycles(graph)
    if "--check" in sys.argv:
        for comp in found:
            print("import cycle: " + " <-> ".join(comp))
        print("%d modules, no import cycle" % len(graph) if not found else "")
        return 1 if found else 0
    for m in sorted(graph):
        print("%s -> %s" % (m, ", ".join(sorted(graph[m])) or "-"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
