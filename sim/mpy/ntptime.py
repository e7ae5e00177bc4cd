# Mock of micropython-lib `ntptime`, for the tests of uwallbox.system.netup only (no network traffic).
# `fail = True` makes settime() raise OSError(ETIMEDOUT) like an unreachable server; `calls`
# counts settime() calls.
host = "pool.ntp.org"
timeout = 1
fail = False
calls = 0


def settime():
    global calls
    calls += 1
    if fail:
        raise OSError(110)
