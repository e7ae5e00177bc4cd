# Runs one test function of a MicroPython test module: micropython runner.py MODULE FUNC
import sys
import asyncio

mod = __import__(sys.argv[1])
fn = getattr(mod, sys.argv[2])
r = fn()
if hasattr(r, "send"):
    asyncio.run(r)
print("PASS")
