"""Configuration keys: type, access, range, persistence (config.json, atomic)."""
from micropython import const

from . import store

_PATH = "config.json"
RO = const(1)  # read-only
REBOOT = const(2)  # a change takes effect after a reboot
SECRET = const(4)  # write-only: never returned or logged
RAISE = const(8)  # may only be raised (SecurityProfile)
BOOL, INT, CSL, STR = "b", "i", "c", "s"

MEASURANDS = (
    "Energy.Active.Import.Register", "Energy.Active.Import.Interval", "Power.Active.Import",
    "Current.Import", "Current.Offered", "Voltage", "Power.Offered", "Frequency",
    "Temperature", "SoC",
)
_M = "Energy.Active.Import.Register"
_MAXCSL = const(8)

# name: (kind, flags, default, low, high); low/high bound ints, lengths of strings, items of CSLs.
KEYS = {
    # Core
    "AllowOfflineTxForUnknownId": (BOOL, 0, False, 0, 0),
    "AuthorizationCacheEnabled": (BOOL, 0, True, 0, 0),
    "AuthorizeRemoteTxRequests": (BOOL, 0, True, 0, 0),
    "BlinkRepeat": (INT, 0, 3, 0, 100),
    "ClockAlignedDataInterval": (INT, 0, 0, 0, 86400),
    "ConnectionTimeOut": (INT, 0, 60, 1, 3600),
    "ConnectorPhaseRotation": (CSL, 0, "0.RST", 0, _MAXCSL),
    "ConnectorPhaseRotationMaxLength": (INT, RO, _MAXCSL, 0, 0),
    "GetConfigurationMaxKeys": (INT, RO, 100, 0, 0),
    "HeartbeatInterval": (INT, 0, 300, 0, 86400),
    "LightIntensity": (INT, 0, 100, 0, 100),
    "LocalAuthorizeOffline": (BOOL, 0, True, 0, 0),
    "LocalPreAuthorize": (BOOL, 0, False, 0, 0),
    "MaxEnergyOnInvalidId": (INT, 0, 0, 0, 1000000),
    "MeterValuesAlignedData": (CSL, 0, _M, 0, _MAXCSL),
    "MeterValuesAlignedDataMaxLength": (INT, RO, _MAXCSL, 0, 0),
    "MeterValuesSampledData": (CSL, 0, _M, 0, _MAXCSL),
    "MeterValuesSampledDataMaxLength": (INT, RO, _MAXCSL, 0, 0),
    "MeterValueSampleInterval": (INT, 0, 60, 0, 86400),
    "MinimumStatusDuration": (INT, 0, 0, 0, 3600),
    "NumberOfConnectors": (INT, RO, 1, 0, 0),
    "ResetRetries": (INT, 0, 3, 0, 10),
    "StopTransactionOnEVSideDisconnect": (BOOL, 0, True, 0, 0),
    "StopTransactionOnInvalidId": (BOOL, 0, True, 0, 0),
    "StopTxnAlignedData": (CSL, 0, "", 0, _MAXCSL),
    "StopTxnAlignedDataMaxLength": (INT, RO, _MAXCSL, 0, 0),
    "StopTxnSampledData": (CSL, 0, "", 0, _MAXCSL),
    "StopTxnSampledDataMaxLength": (INT, RO, _MAXCSL, 0, 0),
    "SupportedFeatureProfiles": (CSL, RO, "Core", 0, 0),
    "SupportedFeatureProfilesMaxLength": (INT, RO, 6, 0, 0),
    "TransactionMessageAttempts": (INT, 0, 3, 1, 100),
    "TransactionMessageRetryInterval": (INT, 0, 60, 0, 86400),
    "UnlockConnectorOnEVSideDisconnect": (BOOL, 0, True, 0, 0),
    "WebSocketPingInterval": (INT, 0, 60, 0, 86400),
    # Local Auth List Management
    "LocalAuthListEnabled": (BOOL, 0, True, 0, 0),
    "LocalAuthListMaxLength": (INT, RO, 10000, 0, 0),
    # 20 entries: <= 2.8 KB of JSON, what ws can receive in the sim at 112wK; applying costs ~5 KB
    "SendLocalListMaxLength": (INT, RO, 20, 0, 0),
    # Reservation
    "ReserveConnectorZeroSupported": (BOOL, RO, True, 0, 0),
    # Smart Charging
    "ChargeProfileMaxStackLevel": (INT, RO, 10, 0, 0),
    "ChargingScheduleAllowedChargingRateUnit": (CSL, RO, "Current,Power", 0, 0),
    "ChargingScheduleMaxPeriods": (INT, RO, 24, 0, 0),
    "ConnectorSwitch3to1PhaseSupported": (BOOL, RO, False, 0, 0),
    "MaxChargingProfilesInstalled": (INT, RO, 20, 0, 0),
    # Security (whitepaper)
    "SecurityProfile": (INT, RAISE | REBOOT, 0, 0, 3),
    "AuthorizationKey": (STR, SECRET | REBOOT, "", 16, 40),
    "CpoName": (STR, 0, "", 0, 50),
    # Vendor keys of this firmware
    "CentralSystemUrl": (STR, REBOOT, "", 0, 200),
    "ChargePointId": (STR, RO, "CP001", 0, 48),
    "MaxCurrent": (INT, 0, 32, 6, 80),
    "NominalVoltage": (INT, 0, 230, 100, 400),
    "Phases": (INT, RO, 3, 1, 3),
}


def _parse(spec, text):
    """Text value -> typed value, or None when it does not fit SPEC."""
    kind, _, _, lo, hi = spec
    if kind == BOOL:
        t = text.lower()
        return True if t == "true" else False if t == "false" else None
    if kind == INT:
        try:
            v = int(text)
        except ValueError:
            return None
        return v if lo <= v <= hi else None
    if kind == STR:
        return text if lo <= len(text) <= hi else None
    items = [i.strip() for i in text.split(",") if i.strip()]
    return ",".join(items) if len(items) <= hi else None


_ROTATIONS = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")


def _measurands(v):
    return all(m in MEASURANDS for m in v.split(",") if m)


def _rotations(v):
    for item in v.split(","):
        c, _, r = item.partition(".")
        if not c.isdigit() or r not in _ROTATIONS:
            return False
    return True


def text(v):
    return ("true" if v else "false") if type(v) is bool else str(v)


class Config:
    """Typed values over KEYS; `listener(key)` hears every accepted change."""

    def __init__(self, overrides=None):
        self.values = store.load(_PATH, {})
        self.fixed = overrides or {}  # read-only values set by the board
        self.checks = {"ConnectorPhaseRotation": _rotations}  # key -> fn(value) -> bool
        for k in ("MeterValuesAlignedData", "MeterValuesSampledData", "StopTxnAlignedData",
                  "StopTxnSampledData"):
            self.checks[k] = _measurands
        self.listener = None

    def __getitem__(self, key):
        if key in self.fixed:
            return self.fixed[key]
        v = self.values.get(key)
        return KEYS[key][2] if v is None else v

    def visible(self):
        """Names GetConfiguration lists."""
        return [k for k, s in KEYS.items() if not s[1] & SECRET]

    def change(self, key, value):
        """ChangeConfiguration: 'Accepted' | 'Rejected' | 'RebootRequired' | 'NotSupported'."""
        spec = KEYS.get(key)
        if spec is None:
            return "NotSupported"
        if spec[1] & RO or key in self.fixed:
            return "Rejected"
        v = _parse(spec, value)
        if v is None or (spec[1] & RAISE and v < self[key]):
            return "Rejected"
        check = self.checks.get(key)
        if check and not check(v):
            return "Rejected"
        self.set(key, v)
        return "RebootRequired" if spec[1] & REBOOT else "Accepted"

    def set(self, key, v):
        """Store a typed value (already validated) and persist it."""
        if v == KEYS[key][2]:
            self.values.pop(key, None)
        else:
            self.values[key] = v
        store.save(_PATH, self.values)
        if self.listener:
            self.listener(key)
