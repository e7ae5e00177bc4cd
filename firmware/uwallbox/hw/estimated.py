"""An energy meter for boards without one: an ESTIMATE from the Evse (the board's meter(index) of
docs/ARCHITECTURE.md, "Board definition")."""
import time

from .. import files
from ..flash import store


class EstimatedMeter:
    """An ESTIMATE of the energy, for boards without a meter chip: integrates the offered
    current x VOLTS x PHASES while the contactor is closed (the EV may draw less than it is
    offered, so this is an upper bound). `read() -> (energy_wh, power_w, amps, volts)`.

    The register never goes backwards across restarts: read() returns only values persisted in
    flash (files.METER, written atomically). To spare the flash it persists at most every
    PERSIST_S seconds, so a reading lags the integration by up to that time.
    """
    PERSIST_S = 30

    def __init__(self, index, volts, phases):
        self.index = index
        self.volts = volts
        self.phases = phases
        self.path = files.METER % (index + 1)
        self.evse = None          # set by attach()
        self._saved = 0
        self._saved = int(store.load(self.path, {}).get("wh", 0))
        self._energy = float(self._saved)
        self._t = time.ticks_ms()
        self._t_saved = self._t
        self.power = 0.0

    def _integrate(self):
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self._t)
        self._t = now
        self._energy += self.power * dt / 3600000
        e = self.evse
        self.power = e.offered_a * self.volts * self.phases if (e is not None and e.relay) else 0.0

    def read(self):
        self._integrate()
        wh = int(self._energy)
        if wh > self._saved and (time.ticks_diff(self._t, self._t_saved) >= self.PERSIST_S * 1000
                                 or self.power == 0.0):
            store.save(self.path, {"wh": wh})
            self._saved = wh
            self._t_saved = self._t
        a = self.power / self.volts / self.phases
        return (self._saved, self.power, (a, a, a), (float(self.volts),) * 3)
