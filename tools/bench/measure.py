"""Statistics of samples, and what /proc tells about a process (Linux)."""
import os
import statistics
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")  # /proc times are in these ticks per second


def spread(samples, *quantiles):
    """{"n", "median", "min", "max"} of SAMPLES, plus "pNN" for each of QUANTILES (e.g. 99)."""
    s = sorted(samples)
    out = {"n": len(s), "median": statistics.median(s), "min": s[0], "max": s[-1]}
    for q in quantiles:
        out[f"p{q}"] = s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]
    return out


def _stat(pid):
    """Fields of /proc/PID/stat after the command name (field 3, `state`, is index 0)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid):
    """User + system CPU time of process PID so far, s."""
    f = _stat(pid)
    return (int(f[11]) + int(f[12])) / TICK


def started_at(pid):
    """Wall-clock time (time.time()) at which process PID started, to 1/TICK s."""
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(_stat(pid)[19]) / TICK
    return time.time() - age


def child(pid, name):
    """The pid of the child process of PID whose command is NAME, or None."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name and int(_stat(entry.name)[1]) == pid:
                    return int(entry.name)
            except (OSError, ValueError):
                pass  # gone meanwhile
    return None
