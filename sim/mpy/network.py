# Mock of the ESP32 `network` module, for the tests of uwallbox.system.netup only: the sim board has no
# WIFI, so the simulator never imports it. One station; the test sets its behaviour on the class:
# - `WLAN.fail`: connection attempts that fail before one succeeds (0: the first one succeeds);
# - `WLAN.rssi`: signal strength in dBm once connected;
# - `WLAN.calls`: (method, args) of every call, in order.
STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202


class WLAN:
    fail = 0
    rssi = -60
    calls = []
    _attempts = 0
    _connected = False
    _active = False

    def __init__(self, interface=STA_IF):
        WLAN.calls.append(("WLAN", (interface,)))

    def active(self, on=None):
        if on is None:
            return WLAN._active
        WLAN.calls.append(("active", (on,)))
        WLAN._active = bool(on)

    def connect(self, ssid=None, key=None):
        WLAN.calls.append(("connect", (ssid, key)))
        if not WLAN._active:
            raise OSError("Wifi Not Started")
        WLAN._attempts += 1
        WLAN._connected = WLAN._attempts > WLAN.fail

    def disconnect(self):
        WLAN.calls.append(("disconnect", ()))
        WLAN._connected = False

    def isconnected(self):
        return WLAN._connected

    def status(self, param=None):
        if param == "rssi":
            if not WLAN._connected:
                raise OSError("not connected")
            return WLAN.rssi
        if WLAN._connected:
            return STAT_GOT_IP
        return STAT_NO_AP_FOUND if WLAN._attempts else STAT_IDLE

    def ifconfig(self):
        if WLAN._connected:
            return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
