"""How much heap an operation needs, measured under MicroPython (the benchmarks run it there).

    need(op)     the smallest free region (bytes, to 128) in which op() completes: the rest of the
                 heap is filled with small blocks, so op cannot borrow from anywhere else
    largest()    the largest block the heap can give now
"""
import gc


def largest():
    """The largest block (bytes, to 128) the heap can give now."""
    gc.collect()
    lo, hi = 0, gc.mem_free()
    while hi - lo > 128:
        mid = (lo + hi) // 2
        try:
            bytearray(mid)
            lo = mid
        except MemoryError:
            hi = mid
    return lo


def need(op):
    """The smallest free heap region (bytes, to 128) in which OP() completes: bisection, each probe
    keeping MID bytes in one piece while the rest of the heap is filled, then freeing them for OP."""
    pad = [None] * 512  # the filler's own list, made before the largest block is measured
    lo, hi = 0, largest() - 8192
    while hi - lo > 128:
        mid = (lo + hi) // 2
        for j in range(len(pad)):
            pad[j] = None
        gc.collect()
        spare = bytearray(mid)
        i = 0
        for size in (4096, 512, 64, 0):
            try:
                while i < len(pad):
                    pad[i] = bytearray(size) if size else (i,)
                    i += 1
            except MemoryError:
                pass
        spare = None  # noqa: F841  (freed: the region OP gets)
        try:
            op()
            hi = mid
        except MemoryError:
            lo = mid
    for j in range(len(pad)):
        pad[j] = None
    return hi
