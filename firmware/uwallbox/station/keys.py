"""The configuration key table: each key's type, access, range and default; parsing and
checking a new value (ChangeConfiguration). Loaded only for those and for reading a default the
first time (station/config.py), then unloaded: the table is 4 KB of text."""
from micropython import const

RO = const(1)  # read-only
REBOOT = const(2)  # a change takes effect after a reboot
SECRET = const(4)  # write-only: never returned or logged
RAISE = const(8)  # may only be raised (SecurityProfile)
BOOL, INT, CSL, STR = "b", "i", "c", "s"

# The measurands the meter gives (meter.py): a list with any other is Rejected, so no MeterValues
# goes out with an empty sampledValue.
MEASURANDS = (
    "Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Current.Offered",
    "Voltage", "Power.Offered",
)

# Every key, one a line (a string costs far less RAM than a dict of tuples): name, kind (b bool,
# i integer, c comma-separated list, s string), flags (RO | REBOOT | SECRET | RAISE), default
# ("-" = empty), low, high (bounds of an integer, of a string's length, of a list's items).
# Core keys first, then Local Auth List, Reservation, Smart Charging, Security, Plug & Charge,
# vendor keys.
# SendLocalListMaxLength 30: <= 4 KB of JSON a message (ocpp.rpc._RX); applying one costs ~4 KB of heap.
_KEYS = """
AllowOfflineTxForUnknownId              b 0 0 0 0
AuthorizationCacheEnabled               b 0 1 0 0
AuthorizeRemoteTxRequests               b 0 1 0 0
BlinkRepeat                             i 0 3 0 100
ClockAlignedDataInterval                i 0 0 0 86400
ConnectionTimeOut                       i 0 60 1 3600
ConnectorPhaseRotation                  c 0 0.RST 0 8
ConnectorPhaseRotationMaxLength         i 1 8 0 0
GetConfigurationMaxKeys                 i 1 100 0 0
HeartbeatInterval                       i 0 300 0 86400
LightIntensity                          i 0 100 0 100
LocalAuthorizeOffline                   b 0 1 0 0
LocalPreAuthorize                       b 0 0 0 0
MaxEnergyOnInvalidId                    i 0 0 0 1000000
MeterValuesAlignedData                  c 0 Energy.Active.Import.Register 0 8
MeterValuesAlignedDataMaxLength         i 1 8 0 0
MeterValuesSampledData                  c 0 Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered,Voltage 0 8
MeterValuesSampledDataMaxLength         i 1 8 0 0
MeterValueSampleInterval                i 0 60 0 86400
MinimumStatusDuration                   i 0 0 0 3600
NumberOfConnectors                      i 1 1 0 0
ResetRetries                            i 0 3 0 10
StopTransactionOnEVSideDisconnect       b 0 1 0 0
StopTransactionOnInvalidId              b 0 1 0 0
StopTxnAlignedData                      c 0 - 0 8
StopTxnAlignedDataMaxLength             i 1 8 0 0
StopTxnSampledData                      c 0 - 0 8
StopTxnSampledDataMaxLength             i 1 8 0 0
SupportedFeatureProfiles                c 1 Core 0 0
SupportedFeatureProfilesMaxLength       i 1 6 0 0
TransactionMessageAttempts              i 0 3 1 100
TransactionMessageRetryInterval         i 0 60 0 86400
UnlockConnectorOnEVSideDisconnect       b 0 1 0 0
WebSocketPingInterval                   i 0 60 0 86400
LocalAuthListEnabled                    b 0 1 0 0
LocalAuthListMaxLength                  i 1 10000 0 0
SendLocalListMaxLength                  i 1 30 0 0
ReserveConnectorZeroSupported           b 1 1 0 0
ChargeProfileMaxStackLevel              i 1 10 0 0
ChargingScheduleAllowedChargingRateUnit c 1 Current,Power 0 0
ChargingScheduleMaxPeriods              i 1 24 0 0
ConnectorSwitch3to1PhaseSupported       b 1 0 0 0
MaxChargingProfilesInstalled            i 1 20 0 0
SecurityProfile                         i 10 0 0 3
AuthorizationKey                        s 6 - 16 40
CpoName                                 s 0 - 0 50
CertificateStoreMaxLength               i 1 10 0 0
CertificateSignedMaxChainSize           i 1 10000 0 0
AdditionalRootCertificateCheck          b 1 0 0 0
ISO15118PnCEnabled                      b 0 0 0 0
CentralContractValidationAllowed        b 0 0 0 0
CertSigningWaitMinimum                  i 0 60 1 86400
CertSigningRepeatTimes                  i 0 3 0 10
ContractValidationOffline               b 0 0 0 0
CentralSystemUrl                        s 2 - 0 200
ChargePointId                           s 1 CP001 0 48
MaxCurrent                              i 0 32 6 80
NominalVoltage                          i 0 230 100 400
Phases                                  i 1 3 1 3
WebServerEnabled                        b 2 1 0 0
FreeCharging                            b 0 0 0 0
LocalIdTag                              s 0 - 0 20
LocalCurrentLimit                       i 0 0 0 80
CertificateCommonName                   s 0 - 0 64
"""


def spec(key):
    """(kind, flags, default, low, high) of KEY, or None when there is no such key."""
    i = _KEYS.find("\n" + key + " ")
    if i < 0:
        return None
    name, kind, flags, d, lo, hi = _KEYS[i + 1 : _KEYS.find("\n", i + 1)].split()
    d = "" if d == "-" else d
    return kind, int(flags), d == "1" if kind == BOOL else int(d) if kind == INT else d, int(lo), int(hi)


def canonical(key):
    """The name of configuration key KEY as the table spells it (keys are case-insensitive
    CiStrings), or None when there is no such key."""
    if spec(key) is not None:
        return key
    low = key.lower()
    for n in names():
        if n.lower() == low:
            return n
    return None


def names():
    """Every key name, in table order."""
    for line in _KEYS.split("\n"):
        if line:
            yield line[: line.find(" ")]


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


_SAMPLED = ("MeterValuesAlignedData", "MeterValuesSampledData", "StopTxnAlignedData", "StopTxnSampledData")
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


def change(config, key, value):
    """ChangeConfiguration of KEY (as the table spells it) to text VALUE in CONFIG (a Config):
    'Accepted' | 'Rejected' | 'RebootRequired' | 'NotSupported'."""
    s = spec(key)
    if s is None:
        return "NotSupported"
    if s[1] & RO or key in config.fixed:
        return "Rejected"
    v = _parse(s, value)
    if v is None or (s[1] & RAISE and v < config[key]) or not _valid(key, v):
        return "Rejected"
    config.set(key, v)
    return "RebootRequired" if s[1] & REBOOT else "Accepted"


def _valid(key, v):
    """The checks beyond type and range: the measurands the meter gives, phase rotations, a
    SecurityProfile the certificates allow (flash/certs.py)."""
    if key == "ConnectorPhaseRotation":
        return _rotations(v)
    if key in _SAMPLED:
        return _measurands(v)
    if key == "SecurityProfile":
        from ..flash.certs import profile_ok
        return profile_ok(v)
    return True
