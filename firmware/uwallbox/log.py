"""One readable line per event on the console."""
import time

_MAX = 400  # longest logged payload, characters
tail = None  # a list while the web page shows the log (web/): its last lines
_TAIL = 20


def log(tag, text=""):
    t = time.localtime()
    if len(text) > _MAX:
        text = text[:_MAX] + "...(%d chars)" % len(text)
    line = "%02d:%02d:%02d %-5s %s" % (t[3], t[4], t[5], tag, text)
    print(line)
    if tail is not None:
        if len(tail) >= _TAIL:
            tail.pop(0)
        tail.append(line[:160])
