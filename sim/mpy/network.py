# Mock of the ESP32 `network` module, for the tests of uwallbox.system.netup and the setup access point
# (web/setup.py): the sim board has WIFI only with UWB_SIM_WIFI set. One station and one access point
# (WLAN(AP_IF): `WLAN.ap` holds its config() and active state); the test sets the station's
# behaviour on the class (UWB_SIM_WIFI_FAIL sets `fail` at import):
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


import os

NETWORKS = [(b"HomeNet", b"\x01\x02\x03\x04\x05\x06", 6, -52, 3, False),
            (b"Neighbour", b"\x01\x02\x03\x04\x05\x07", 11, -80, 3, False)]


class WLAN:
    fail = int(os.getenv("UWB_SIM_WIFI_FAIL") or 0)
    ap = {"active": False}
    rssi = -60
    calls = []
    _attempts = 0
    _connected = False
    _active = False

    def __init__(self, interface=STA_IF):
        WLAN.calls.append(("WLAN", (interface,)))
        self.interface = interface

    def active(self, on=None):
        if self.interface == AP_IF:
            if on is not None:
                WLAN.ap["active"] = bool(on)
            return WLAN.ap["active"]
        if on is None:
            return WLAN._active
        WLAN.calls.append(("active", (on,)))
        WLAN._active = bool(on)

    def config(self, *args, **kw):
        WLAN.calls.append(("config", kw))
        if self.interface == AP_IF:
            WLAN.ap.update(kw)

    def scan(self):
        if not WLAN._active:
            raise OSError("Wifi Not Started")
        return list(NETWORKS)

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
        if self.interface == AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "0.0.0.0")
        if WLAN._connected:
            return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
