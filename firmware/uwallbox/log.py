"""One readable line per event on the console."""
import time

_MAX = 400  # longest logged payload, characters
tail = None  # a list while the web page shows the log (web/): its last lines
_TAIL = 20
_LINE = 160  # characters of a line kept for the web page


def log(tag, text="", more=()):
    """Print one line: the time, TAG, TEXT, then the strings MORE (a frame's start is logged as
    its pieces: printed one by one, no string of the whole line is made)."""
    t = time.localtime()
    if len(text) > _MAX:
        text = text[:_MAX] + "...(%d chars)" % len(text)
    head = "%02d:%02d:%02d %-5s " % (t[3], t[4], t[5], tag)
    print(head, end="")
    print(text, end="")
    for p in more:
        print(p, end="")
    print()
    if tail is not None:
        line = head + text
        for p in more:
            if len(line) >= _LINE:
                break
            line += p
        if len(tail) >= _TAIL:
            tail.pop(0)
        tail.append(line[:_LINE])
