"""Network at boot (boards with WIFI = True): join Wi-Fi with back-off, then set the clock by NTP.

The credentials live in `wifi.json` ({"ssid", "password"}); the "wifi" entry of a `settings.json`
(written by `make deploy`, merged and deleted by the application) replaces them.
"""
import time

import network
import ntptime
from micropython import const

from .. import clock, files
from ..flash import store
from ..log import log

_ATTEMPTS = const(5)  # attempts before the application starts offline
_TRY_MS = const(10000)  # how long one attempt may take
_POLL_MS = const(100)
_WEAK_DBM = const(-80)  # below this the signal is reported weak


def credentials():
    """{"ssid", "password"} from a new settings.json (saved to wifi.json) or wifi.json; or None."""
    wifi = (store.load(files.SETTINGS) or {}).get("wifi")
    if wifi:
        store.save(files.WIFI, wifi)
        return wifi
    return store.load(files.WIFI)


def connect(wlan, ssid, password):
    """Join SSID; the pause after a failed attempt doubles from 1 s. The signal strength (dBm)
    once connected, else None (the interface keeps trying on its own)."""
    pause = 1
    for attempt in range(1, _ATTEMPTS + 1):
        log("wifi", "connecting to %s (attempt %d)" % (ssid, attempt))
        wlan.connect(ssid, password)
        for _ in range(_TRY_MS // _POLL_MS):
            if wlan.isconnected():
                rssi = wlan.status("rssi")
                log("wifi", "connected, address %s, signal %d dBm%s" % (
                    wlan.ifconfig()[0], rssi, " (weak)" if rssi < _WEAK_DBM else ""))
                return rssi
            time.sleep_ms(_POLL_MS)
        wlan.disconnect()
        if attempt < _ATTEMPTS:
            log("wifi", "not connected (status %s); retry in %d s" % (wlan.status(), pause))
            time.sleep_ms(pause * 1000)
            pause *= 2
    log("wifi", "not connected (status %s): starting offline" % wlan.status())
    wlan.connect(ssid, password)
    return None


def set_clock():
    """UTC from NTP (needed to check certificates); the CSMS time corrects it later."""
    try:
        ntptime.settime()
        log("clock", "set by NTP: " + clock.Clock().iso())
    except OSError as e:
        log("clock", "NTP failed (%r): waiting for the CSMS time" % e)


def up():
    """Bring the network up before the application starts; True once connected."""
    wifi = credentials()
    if not wifi:
        log("wifi", "no credentials in %s: starting offline" % files.WIFI)
        return False
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if connect(wlan, wifi["ssid"], wifi.get("password", "")) is None:
        return False
    set_clock()
    return True
