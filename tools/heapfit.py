#!/usr/bin/env python3
"""Does the bench's standard scenario (tools/bench/scenario.py) fit a heap? A developer's quick check
of one image, in KiB of the 32-bit build, the simulated hardware's share taken off.

    tools/heapfit.py mpy 120            one probe at -X heapsize=120K: passed or why not
    tools/heapfit.py frozen 60 110      bisection between 60 (failing) and 110 K, then the window
    tools/heapfit.py mpy --boot         heap in use after boot only (firmware and sim)

`make bench` (row heap) gives the figure of record: bisection, then a window above it.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import scenario  # noqa: E402
from bench.launch import device_image, frozen, running  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("image", choices=("mpy", "frozen", "source"))
    p.add_argument("heap", nargs="*", type=int, help="K: one size (a probe), or LO HI (bisection)")
    p.add_argument("--boot", action="store_true", help="heap in use after boot")
    p.add_argument("--cards", type=int, default=1000)
    a = p.parse_args()
    with device_image() as image, running(image if a.image == "mpy" else None), frozen(a.image == "frozen"):
        used, sim = scenario.after_boot()
        print(f"after boot: {used / 1024:.1f} KiB in use, the sim's {sim / 1024:.1f} KiB: "
              f"the firmware {(used - sim) / 1024:.1f} KiB", flush=True)
        if a.boot or not a.heap:
            return 0
        if len(a.heap) == 1:
            ok, why, s = scenario.probe(a.heap[0], a.cards, 300)
            print(f"{a.heap[0]} K: {'passed' if ok else 'failed: ' + why} in {s:.0f} s "
                  f"(the firmware's share {a.heap[0] - sim / 1024:.0f} K)")
            return 0 if ok else 1
        r = scenario.smallest_heap(a.cards, a.heap[0], a.heap[1], 1, print)
        print(f"smallest: {r['heap_k']} K, the firmware {r['heap_k'] - sim / 1024:.0f} K")
    return 0


if __name__ == "__main__":
    sys.exit(main())
