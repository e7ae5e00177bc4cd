# An in-memory request stream for lib/httpd.py under micropython: the readline()/readexactly()
# of asyncio's StreamReader over bytes. Used by httpd_cases.py and tools/bench/web_mpy.py.


class Reader:
    def __init__(self, raw, gate=None):
        self.raw, self.i, self.gate = raw, 0, gate  # GATE: an Event each line waits for

    async def readline(self):
        if self.gate is not None:
            await self.gate.wait()
        j = self.raw.find(b"\n", self.i) + 1 or len(self.raw)
        line, self.i = self.raw[self.i : j], j
        return line

    async def readexactly(self, n):
        b, self.i = self.raw[self.i : self.i + n], self.i + n
        return b
