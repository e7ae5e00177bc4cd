"""The configuration key table, resident (a default is read from it; station/config.py keeps
what it has read), and `spec(key)`. The rules of a change are station/keyrules.py."""

BOOL, INT, STR = "b", "i", "s"  # kinds of TABLE's second column; "c" (a list) is the others'

# Every key, one a line (a string costs far less RAM than a dict of tuples): name, kind (b bool,
# i integer, c comma-separated list, s string), flags (keyrules.py: 1 read-only, 2 reboot required,
# 4 write-only, 8 may only be raised), default ("-" = empty), low, high (bounds of an integer, of a
# string's length, of a list's items). Core keys first, then Local Auth List, Reservation, Smart
# Charging, Security, Plug & Charge, vendor keys. Single spaces: every byte of it is in RAM.
# SendLocalListMaxLength 30: <= 4 KB of JSON a message (ocpp.rpc._RX); applying one needs ~2 KB of heap.
TABLE = """
AllowOfflineTxForUnknownId b 0 0 0 0
AuthorizationCacheEnabled b 0 1 0 0
AuthorizeRemoteTxRequests b 0 1 0 0
BlinkRepeat i 0 3 0 100
ClockAlignedDataInterval i 0 0 0 86400
ConnectionTimeOut i 0 60 1 3600
ConnectorPhaseRotation c 0 0.RST 0 8
ConnectorPhaseRotationMaxLength i 1 8 0 0
GetConfigurationMaxKeys i 1 100 0 0
HeartbeatInterval i 0 300 0 86400
LightIntensity i 0 100 0 100
LocalAuthorizeOffline b 0 1 0 0
LocalPreAuthorize b 0 0 0 0
MaxEnergyOnInvalidId i 0 0 0 1000000
MeterValuesAlignedData c 0 Energy.Active.Import.Register 0 8
MeterValuesAlignedDataMaxLength i 1 8 0 0
MeterValuesSampledData c 0 Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered,Voltage 0 8
MeterValuesSampledDataMaxLength i 1 8 0 0
MeterValueSampleInterval i 0 60 0 86400
MinimumStatusDuration i 0 0 0 3600
NumberOfConnectors i 1 1 0 0
ResetRetries i 0 3 0 10
StopTransactionOnEVSideDisconnect b 0 1 0 0
StopTransactionOnInvalidId b 0 1 0 0
StopTxnAlignedData c 0 - 0 8
StopTxnAlignedDataMaxLength i 1 8 0 0
StopTxnSampledData c 0 - 0 8
StopTxnSampledDataMaxLength i 1 8 0 0
SupportedFeatureProfiles c 1 Core 0 0
SupportedFeatureProfilesMaxLength i 1 6 0 0
TransactionMessageAttempts i 0 3 1 100
TransactionMessageRetryInterval i 0 60 0 86400
UnlockConnectorOnEVSideDisconnect b 0 1 0 0
WebSocketPingInterval i 0 60 0 86400
LocalAuthListEnabled b 0 1 0 0
LocalAuthListMaxLength i 1 10000 0 0
SendLocalListMaxLength i 1 30 0 0
ReserveConnectorZeroSupported b 1 1 0 0
ChargeProfileMaxStackLevel i 1 10 0 0
ChargingScheduleAllowedChargingRateUnit c 1 Current,Power 0 0
ChargingScheduleMaxPeriods i 1 24 0 0
ConnectorSwitch3to1PhaseSupported b 1 0 0 0
MaxChargingProfilesInstalled i 1 20 0 0
SecurityProfile i 10 0 0 3
AuthorizationKey s 6 - 16 40
CpoName s 0 - 0 50
CertificateStoreMaxLength i 1 10 0 0
CertificateSignedMaxChainSize i 1 10000 0 0
AdditionalRootCertificateCheck b 1 0 0 0
ISO15118PnCEnabled b 0 0 0 0
CentralContractValidationAllowed b 0 0 0 0
CertSigningWaitMinimum i 0 60 1 86400
CertSigningRepeatTimes i 0 3 0 10
ContractValidationOffline b 0 0 0 0
CentralSystemUrl s 2 - 0 200
ChargePointId s 1 CP001 0 48
MaxCurrent i 0 32 6 80
NominalVoltage i 0 230 100 400
Phases i 1 3 1 3
WebServerEnabled b 2 1 0 0
FreeCharging b 0 0 0 0
LocalIdTag s 0 - 0 20
LocalCurrentLimit i 0 0 0 80
CertificateCommonName s 0 - 0 64
"""


def spec(key):
    """(kind, flags, default, low, high) of KEY, or None when there is no such key."""
    i = TABLE.find("\n" + key + " ")
    if i < 0:
        return None
    name, kind, flags, d, lo, hi = TABLE[i + 1 : TABLE.find("\n", i + 1)].split()
    d = "" if d == "-" else d
    return kind, int(flags), d == "1" if kind == BOOL else int(d) if kind == INT else d, int(lo), int(hi)
