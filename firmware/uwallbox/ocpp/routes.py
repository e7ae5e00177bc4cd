"""The one routing table: CSMS action -> (profile module in profiles/, handler function).

It names the modules and never imports one: rpc.py does, on first use, so rarely used profiles
cost no RAM until needed, and the profiles may import this table (PNC_VENDOR, has) without a
cycle. tools/genschemas.py reads the table for the schemas it generates.
"""
from ..errors import NOT_IMPLEMENTED, NOT_SUPPORTED, CallError

# One action a line: action, profile module, handler (a string: far less RAM than a dict).
_ROUTES = """
ChangeAvailability         core change_availability
ChangeConfiguration        core change_configuration
ClearCache                 core clear_cache
DataTransfer               core data_transfer
GetConfiguration           core get_configuration
RemoteStartTransaction     core remote_start
RemoteStopTransaction      core remote_stop
Reset                      core reset
UnlockConnector            core unlock_connector
GetDiagnostics             firmware get_diagnostics
UpdateFirmware             firmware update_firmware
GetLocalListVersion        localauth get_local_list_version
SendLocalList              localauth send_local_list
CancelReservation          reservation cancel_reservation
ReserveNow                 reservation reserve_now
ClearChargingProfile       smartcharging clear_charging_profile
GetCompositeSchedule       smartcharging get_composite_schedule
SetChargingProfile         smartcharging set_charging_profile
TriggerMessage             trigger trigger_message
CertificateSigned          security certificate_signed
DeleteCertificate          security delete_certificate
ExtendedTriggerMessage     security extended_trigger_message
GetInstalledCertificateIds security get_installed_certificate_ids
GetLog                     security get_log
InstallCertificate         security install_certificate
SignedUpdateFirmware       security signed_update_firmware
"""

# DataTransfer vendorId of ISO 15118 Plug & Charge (pnc.py; core.data_transfer routes it there).
PNC_VENDOR = "org.openchargealliance.iso15118pnc"

# Feature profiles whose module is part of this build, in the spec's order.
PROFILES = (
    ("Core", "core"),
    ("FirmwareManagement", "firmware"),
    ("LocalAuthListManagement", "localauth"),
    ("Reservation", "reservation"),
    ("SmartCharging", "smartcharging"),
    ("RemoteTrigger", "trigger"),
)


_DIR = __file__.rsplit("/", 2)[0] + "/profiles/"
_frozen = None  # True when the package is frozen into the firmware (no files of its own)


def _exists(path):
    try:
        open(path).close()
        return True
    except OSError:
        return False


def has(name):
    """Is profile module NAME part of this build? A file (source or .mpy) next to this one; in a
    frozen image (where modules are not files) every profile of PROFILES: manifest.py freezes the
    whole package."""
    global _frozen
    if _frozen is None:
        _frozen = not (_exists(__file__) or _exists(__file__[:-3] + ".mpy"))
    if _frozen:
        return True
    return _exists(_DIR + name + ".py") or _exists(_DIR + name + ".mpy")


def supported():
    """SupportedFeatureProfiles: the profiles whose module is installed."""
    return ",".join(p for p, m in PROFILES if has(m))


def route(action):
    """(profile module, function) handling ACTION, or CallError NotImplemented / NotSupported."""
    i = _ROUTES.find("\n" + action + " ")
    if i < 0:
        raise CallError(NOT_IMPLEMENTED, "unknown action " + action)
    _, name, fn = _ROUTES[i + 1 : _ROUTES.find("\n", i + 1)].split()
    if not has(name):
        raise CallError(NOT_SUPPORTED, action + " is not supported by this charge point")
    return name, fn
