"""One readable line per event on the console."""
import time

_MAX = 400  # longest logged payload, characters


def log(tag, text=""):
    t = time.localtime()
    if len(text) > _MAX:
        text = text[:_MAX] + "...(%d chars)" % len(text)
    print("%02d:%02d:%02d %-5s %s" % (t[3], t[4], t[5], tag, text))
