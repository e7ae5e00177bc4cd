"""Main contactor (relay) with optional auxiliary feedback contact (input high = contacts closed)."""
from machine import Pin


class Contactor:
    def __init__(self, pin_no, feedback_pin_no=None):
        self._pin = Pin(pin_no, Pin.OUT, value=0)
        self._fb = None if feedback_pin_no is None else Pin(feedback_pin_no, Pin.IN)
        self.closed = False      # commanded state

    def close(self):
        self._pin.value(1)
        self.closed = True

    def open(self):
        self._pin.value(0)
        self.closed = False

    def welded(self):
        """Feedback says closed while commanded open (False when no feedback pin is fitted).
        Give the contacts time to open (~100 ms) after open() before trusting this."""
        return self._fb is not None and not self.closed and self._fb.value() == 1
