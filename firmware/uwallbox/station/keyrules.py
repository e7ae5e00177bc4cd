"""The rules of the configuration keys: access flags, parsing and checking a new value
(ChangeConfiguration), the names as the table spells them (GetConfiguration). Loaded for those
and unloaded after; the table itself is station/keytable.py."""
from micropython import const

from .keytable import BOOL, INT, STR, TABLE, spec  # noqa: F401 (spec: for the users of this module)

RO = const(1)  # read-only
REBOOT = const(2)  # a change takes effect after a reboot
SECRET = const(4)  # write-only: never returned or logged
RAISE = const(8)  # may only be raised (SecurityProfile)

# The measurands the meter gives (meter.py): a list with any other is Rejected, so no MeterValues
# goes out with an empty sampledValue.
MEASURANDS = (
    "Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Current.Offered",
    "Voltage", "Power.Offered",
)


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
    """Every key name, in table order (one at a time: the table is never split into lines, which
    held ~5 KB while GetConfiguration listed every key)."""
    i = 0
    while True:
        i = TABLE.find("\n", i) + 1
        j = TABLE.find(" ", i)
        if not i or j < 0:
            return
        if j > i:
            yield TABLE[i:j]


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
    items = [i.strip() for i in text.split(",") if i.strip()]  # "c": comma-separated
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
