"""Connector (socket) lock actuator with optional position feedback (input high = locked)."""
from machine import Pin


class Lock:
    def __init__(self, pin_no, feedback_pin_no=None):
        self._pin = Pin(pin_no, Pin.OUT, value=0)
        self._fb = None if feedback_pin_no is None else Pin(feedback_pin_no, Pin.IN)
        self.commanded = False

    def lock(self):
        self._pin.value(1)
        self.commanded = True

    def unlock(self):
        self._pin.value(0)
        self.commanded = False

    @property
    def locked(self):
        """Locked according to the feedback (the command when no feedback is fitted)."""
        if self._fb is None:
            return self.commanded
        return self._fb.value() == 1

    def ok(self):
        """The feedback matches the command (allow the actuator its travel time first)."""
        return self.locked == self.commanded
