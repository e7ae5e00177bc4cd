"""Every file the firmware keeps in flash, named once; docs/ARCHITECTURE.md ("Files in flash")
says what each holds and when it is written. Paths are relative: the working directory is the
flash filesystem (/ on the ESP32, the --state folder in the simulator). Every write is
flash/store.py's: a new file, then a rename over the old one."""
# provisioning and configuration
SETTINGS = "settings.json"  # by the host; merged at boot, then deleted (system/provision.py, netup.py)
WIFI = "wifi.json"  # Wi-Fi credentials (system/netup.py)
CONFIG = "config.json"  # configuration values that differ from the defaults (station/config.py)
AVAILABILITY = "avail.json"  # connectors set Inoperative (app.py)
# transactions
TX = "tx%d.json"  # % connector id: its running transaction (station/connector.py)
JOURNAL = "txq"  # folder: queued transaction messages, txq/NNNNNNNN (station/journal.py)
TX_IDS = "txids.json"  # local transaction reference -> the CSMS's transactionId (station/journal.py)
JOURNAL_COUNTERS = "journal.json"  # the last transaction reference and message number (station/journal.py)
METER = "meter%d.json"  # % connector id: the register of an estimated meter (hw/estimated.py)
# authorization
AUTH_CACHE = "authcache.json"  # authorization cache (station/auth.py)
LOCAL_LIST = "lal"  # folder: the local authorization list, lal/index and lal/B.G (flash/cardstore.py)
LOCAL_LIST_INDEX = "lal/index"  # there is a local list (station/auth.py)
RESERVATIONS = "resv.json"  # reservations (app.py, profiles/reservation.py)
PROFILES = "chp"  # folder: charging profiles, chp/<id>.json (profiles/smartcharging.py)
# security (flash/certs.py, ocpp/session.py, station/seclog.py)
CERTS = "certs"  # folder: installed root certificates, certs/N.der
CERTS_INDEX = "certs/index.json"  # their certificateHashData
CA = "ca.der"  # a provisioned CentralSystemRootCertificate, moved into CERTS on first use
CP_KEY = "cp.key"  # security profile 3: the private key in use (DER, made here or provisioned)
CP_NEW_KEY = "cp.key.new"  # the key of the last SignCertificate, until its certificate comes
CP_CSR = "cp.csr"  # a provisioned certificate signing request of cp.key (DER): host-made keys
CP_CERT = "cp.der"  # the ChargePointCertificate the CSMS signed (CertificateSigned)
V2G_KEY = "v2g.key"  # Plug & Charge: the V2G key made here (DER), for the 15118 stack
V2G_NEW_KEY = "v2g.key.new"  # the V2G key of the last SignCertificate, until its chain comes
V2G_CSR = "v2g.csr"  # a provisioned CSR of a host-made V2G key (DER)
V2G_CHAIN = "v2g.pem"  # the V2G certificate chain the CSMS signed (PEM, leaf first)
FALLBACK = "secfallback.json"  # the SecurityProfile that worked, while a raised one is unproven
SECURITY_LOGS = ("security.log.1", "security.log")  # the security log: older half, newer half
SECURITY_QUEUE = "secq.json"  # security events not yet sent
# the system
CRASH_COUNT = "crashes.json"  # crashes in a row (system/crashguard.py)
CRASH_LOG = "crash.log"  # what each crash was (system/crashguard.py)
MAINTENANCE = "maintenance"  # skip one start of the application (written by make deploy)
FW_UPDATE = "fwupdate.json"  # the firmware update under way, resumed at boot (profiles/firmware.py)
FW_SIGNER = "fwsigner.der"  # the signing certificate of the SignedUpdateFirmware under way
DIAGNOSTICS = "diag.txt"  # the diagnostics report while GetDiagnostics uploads it (profiles/firmware.py)
LOG_EXTRACT = "getlog.txt"  # the log GetLog uploads (profiles/security.py)
# the web page (web/)
WEB_PAGE = "web.html.gz"  # the page, gzip-compressed at build time (tools/webpage.py)
WEB_ADMIN = "webadmin.json"  # the admin password: {"salt", "hash", "rounds"} (web/auth.py)
