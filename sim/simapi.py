"""Tiny client for the simulator's control API (served by the firmware process, sim/mpy/simctl.py).

    api = SimApi(port)
    api.ev(plug=True); api.rfid("DEMO1234"); api.ev(charge=True, max_a=16)
    state = api.wait(lambda s: connector(s)["status"] == "Charging", timeout=30)
"""
import http.client
import json
import time
import urllib.error
import urllib.request


class SimApiError(Exception):
    """The control API answered with an HTTP error."""


def connector(state, id=1):
    """The entry of connector `id` in a GET /state answer."""
    return next(c for c in state["connectors"] if c["id"] == id)


class SimApi:
    def __init__(self, port, host="127.0.0.1", timeout=5):
        self.host, self.port, self.timeout = host, port, timeout

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise SimApiError(f"{method} {path} -> HTTP {e.code}: {e.read().decode(errors='replace')}") from None
        return json.loads(text) if text.strip() else {}

    def state(self):
        return self.request("GET", "/state")

    def ev(self, connector=1, **kw):
        """plug, charge, max_a, phases, diode_fault, ventilation, cable_a."""
        return self.request("POST", "/ev", {"connector": connector, **kw})

    def rfid(self, id_tag, **kw):
        return self.request("POST", "/rfid", {"id_tag": id_tag, **kw})

    def fault(self, **kw):
        return self.request("POST", "/fault", kw)

    def meter(self, connector=1, **kw):
        """energy_wh (the lifetime register), fail (the meter stops answering)."""
        return self.request("POST", "/meter", {"connector": connector, **kw})

    def clock(self, advance_s):
        return self.request("POST", "/clock", {"advance_s": advance_s})

    def wait(self, predicate, timeout=30):
        """Poll GET /state every 50 ms until predicate(state) is true; return that state.
        Connection failures (firmware not up yet, restarting) and KeyError/IndexError/StopIteration
        in the predicate count as "not yet". Raises TimeoutError with the last state."""
        deadline = time.monotonic() + timeout
        last, problem = None, None
        while True:
            try:
                last = self.state()
                if predicate(last):
                    return last
                problem = None
            except (OSError, ValueError, http.client.HTTPException) as e:
                problem = f"control API: {e!r}"
            except (KeyError, IndexError, StopIteration, TypeError) as e:
                problem = f"predicate: {e!r}"
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator state not reached within {timeout} s"
                                   f"{' (' + problem + ')' if problem else ''}; last state: {json.dumps(last)}")
            time.sleep(0.05)
