"""Residual current device (a 6 mA DC module, IEC 62955): its trip input and its self-test.

`trip_pin`: input, 1 = tripped. `test_pin` (optional): output onto the module's test input, 1 =
simulate a residual current. The self-test, stepped by Evse.step() every 10 ms with the contactor
open: test output high, the trip input must follow within _TEST_STEPS steps; test output low, it
must release within _TEST_STEPS steps. The trip input is masked while the test runs. No answer to
the pulse means a dead RCD (`dead`): GroundFailure until a test passes. No release means a
residual current, or a stuck RCD: GroundFailure like a trip.
"""
from machine import Pin
from micropython import const

_TEST_STEPS = const(20)   # steps each half of the self-test may take (200 ms)

IDLE = const(0)           # self-test phases
PULSE = const(1)          # test output high: waiting for the trip input
RELEASE = const(2)        # test output low again: waiting for the trip input to release


class Rcd:
    def __init__(self, trip_pin, test_pin=None):
        self._trip = Pin(trip_pin, Pin.IN)
        self.test_out = None if test_pin is None else Pin(test_pin, Pin.OUT, value=0)
        self.due = self.test_out is not None   # a self-test is wanted (start-up)
        self.phase = IDLE
        self._n = 0                            # steps in the phase
        self.dead = False                      # the last self-test failed

    def want_test(self):
        """Run a self-test at the next step (when there is a test output)."""
        if self.test_out is not None:
            self.due = True

    def quiet(self):
        """No self-test due or running: the contactor may close as far as the RCD goes."""
        return self.phase == IDLE and not self.due

    def cleared(self):
        """The cause of a GroundFailure is gone: the input released, no failed self-test."""
        return not self.dead and not self._trip.value()

    def step(self, latched):
        """This step of the RCD: its trip input, or one step of the self-test. LATCHED is the
        Evse's latched fault code (or None); returns it, updated."""
        tripped = self._trip.value()
        test = self.test_out
        phase = self.phase
        if phase == IDLE:
            if tripped:
                latched = "GroundFailure"
            elif self.due:
                test.on()
                self.phase = PULSE
                self._n = 0
            self.due = False
        else:
            n = self._n + 1
            self._n = n
            if phase == PULSE:
                if tripped:
                    test.off()
                    self.phase = RELEASE
                    self._n = 0
                elif n >= _TEST_STEPS:
                    test.off()
                    self.phase = IDLE
                    self.dead = True
            elif not tripped:
                self.phase = IDLE
                if self.dead and latched == "GroundFailure":
                    latched = None   # the RCD works again
                self.dead = False
            elif n >= _TEST_STEPS:   # it answered but stays tripped: a residual current
                self.phase = IDLE
                self.dead = False
                latched = "GroundFailure"
        if self.dead and latched is None:
            latched = "GroundFailure"
        return latched
