"""Firmware Management profile: lib/http.py and lib/ftp.py under MicroPython against CPython
servers (tests/mpy/http_driven.py), the OTA updater on the esp32 mock (tests/mpy/ota_cases.py), then
UpdateFirmware / GetDiagnostics end to end: the firmware in the simulator against the test CSMS,
downloading from and uploading to servers of this module."""
import base64
import email
import json
import os
import queue
import socket
import socketserver
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import ROOT, connector, registered, start_session
from mpyrun import case_names, run_case
from pki import server_context

pytestmark = pytest.mark.timeout(120)


def pattern(n):
    """The bodies the MicroPython cases expect: byte i is i % 251."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def esp32_image(n):
    """A fake ESP32 app image: magic byte 0xE9, segment count, then random bytes."""
    return b"\xe9\x03\x02\x20" + os.urandom(n - 4)


# -- servers ---------------------------------------------------------------------------------------

class Web(ThreadingHTTPServer):
    """HTTP server in a thread. Test routes (see Handler) plus `files` (path -> bytes) for GET and
    `uploads` (PUT and POST requests received). `gate`: a GET of a path containing 'gated' sends
    half the file, then waits for it."""
    daemon_threads = True

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), Handler)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.server_address[1])
        self.files, self.gets, self.uploads, self.headers = {}, [], [], queue.Queue()
        self.gate, self.closing = threading.Event(), threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.closing.set()
        self.gate.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, code, body=b"", **headers):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv, path = self.server, self.path
        srv.gets.append(path)
        kind, _, arg = path[1:].partition("/")
        if path in srv.files:
            body = srv.files[path]
            if "gated" not in path:
                return self._answer(200, body)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            srv.gate.wait(30)
            self.close_connection = True
        elif kind == "data":
            self._answer(200, pattern(int(arg)))
        elif kind == "chunked":
            self._chunked(pattern(int(arg)))
        elif kind == "eof":  # no length: the body ends when the connection does
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(pattern(int(arg)))
            self.close_connection = True
        elif kind == "redirect":
            hops, n = map(int, arg.split("/"))
            if not hops:
                return self._answer(200, pattern(n))
            where = "/redirect/%d/%d" % (hops - 1, n)
            self._answer(302 if hops % 2 else 307, b"moved", Location=srv.url + where if hops % 2 else where)
        elif kind == "short":
            n = int(arg)
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(pattern(n // 2))
            self.close_connection = True
        elif kind == "echo":
            srv.headers.put(dict(self.headers))
            self._answer(200, b"ok")
        elif kind == "stall":
            srv.closing.wait(10)
            self.close_connection = True
        else:
            self._answer(404, b"not here")

    def _chunked(self, body):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sizes, i, k = (1, 7, 1000, 4096, 333), 0, 0
        while i < len(body):
            piece = body[i : i + sizes[k % len(sizes)]]
            ext = ";name=value" if k == 1 else ""
            self.wfile.write(b"%x%s\r\n%s\r\n" % (len(piece), ext.encode(), piece))
            i, k = i + len(piece), k + 1
        self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")

    def _body(self):
        return self.rfile.read(int(self.headers["Content-Length"]))

    def do_PUT(self):
        self.server.uploads.append({"method": "PUT", "path": self.path, "body": self._body()})
        self._answer(201)

    def do_POST(self):
        body = self._body()
        form = email.message_from_bytes(b"Content-Type: %s\r\n\r\n" % self.headers["Content-Type"].encode() + body)
        assert form.is_multipart()
        fields = [{"name": p.get_param("name", header="content-disposition"), "filename": p.get_filename(),
                   "body": p.get_payload(decode=True)} for p in form.get_payload()]
        self.server.uploads.append({"method": "POST", "path": self.path, "fields": fields})
        self._answer(200 if self.path != "/refuse" else 403)


class FtpHandler(socketserver.StreamRequestHandler):
    """A minimal FTP server: USER/PASS (server.users; anonymous allowed), TYPE, PASV (naming a
    wrong host, as behind NAT), RETR and STOR on server.files, QUIT."""

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        srv, user, authed, pasv = self.server, None, False, None
        self.reply("220-uwallbox test FTP server\r\n220-a multi-line greeting\r\n220 ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd, _, arg = line.decode().strip().partition(" ")
            srv.log.append((cmd, arg))
            if cmd == "USER":
                user = arg
                self.reply("331 password please")
            elif cmd == "PASS":
                authed = user == "anonymous" or srv.users.get(user) == arg
                self.reply("230 logged in" if authed else "530 login incorrect")
            elif not authed:
                self.reply("530 log in first")
            elif cmd == "TYPE":
                self.reply("200 type set")
            elif cmd == "PASV":
                pasv = socket.create_server(("127.0.0.1", 0))
                port = pasv.getsockname()[1]
                self.reply("227 Entering Passive Mode (10,0,0,9,%d,%d)." % (port >> 8, port & 255))
            elif cmd == "RETR" and arg in srv.files:
                self.reply("150 sending")
                data, _ = pasv.accept()
                data.sendall(srv.files[arg])
                data.close()
                self.reply("226 done")
            elif cmd == "STOR":
                self.reply("150 receiving")
                data, _ = pasv.accept()
                got = b"".join(iter(lambda: data.recv(65536), b""))
                data.close()
                srv.files[arg] = got
                self.reply("226 stored")
            elif cmd == "QUIT":
                self.reply("221 bye")
                srv.quit.set()
                return
            else:
                self.reply("550 no such file" if cmd == "RETR" else "502 not implemented")


class Ftpd(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FtpHandler)
        self.url = "ftp://127.0.0.1:%d" % self.server_address[1]
        self.users, self.files, self.log = {"user": "se@cret"}, {}, []
        self.quit = threading.Event()  # a client said QUIT (the server thread may log it late)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def logins(self):
        return [arg for cmd, arg in self.log if cmd == "USER"]

    def close(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def web():
    s = Web()
    yield s
    s.close()


@pytest.fixture
def ftpd():
    s = Ftpd()
    yield s
    s.close()


# -- lib/http.py and lib/ftp.py under MicroPython ------------------------------------------------

def mpy(name, tmp_path, heapsize=None, **env):
    return run_case("http_driven", name, tmp_path, heapsize=heapsize, timeout=30,
                    env={k.upper(): str(v) for k, v in env.items()})


@pytest.mark.parametrize("name", [n for n in case_names("http_driven")
                                  if not n.startswith(("test_ftp", "test_https", "test_large"))])
def test_http_client(name, web, tmp_path):
    mpy(name, tmp_path, http_url=web.url)
    if name == "test_credentials_and_headers":
        headers = web.headers.get(timeout=1)
        assert headers["Authorization"] == "Basic " + base64.b64encode(b"fw@user:p:ss").decode()
        assert headers["X-Test"] == "42" and headers["Connection"] == "close"
        assert headers["Host"] == web.url.split("://")[1]
    elif name == "test_redirects":
        assert web.gets[:4] == ["/redirect/3/777", "/redirect/2/777", "/redirect/1/777", "/redirect/0/777"]
    elif name == "test_put":
        assert web.uploads == [{"method": "PUT", "path": "/put/up.bin", "body": pattern(10000)}]
    elif name == "test_post_file":
        assert web.uploads == [{"method": "POST", "path": "/form", "fields": [
            {"name": "file", "filename": "report.txt", "body": pattern(7000)}]}]


def test_http_large_body_small_heap(web, tmp_path):
    """4 MB through a 64 KiB heap (-X heapsize=64K): streamed, nothing retained."""
    mpy("test_large_body_small_heap", tmp_path, heapsize="64K", http_url=web.url, size=4_000_000)


def test_https(pki, tmp_path):
    s = Web(tls=server_context(pki))
    try:
        mpy("test_https", tmp_path, http_url=s.url, ca=pki / "ca.der")
    finally:
        s.close()


@pytest.mark.parametrize("name", [n for n in case_names("http_driven") if n.startswith("test_ftp")])
def test_ftp_client(name, ftpd, tmp_path):
    ftpd.files["pub/fw.bin"] = pattern(50000)
    mpy(name, tmp_path, ftp_url=ftpd.url)
    if name == "test_ftp_retr":
        assert ftpd.logins() == ["user", "anonymous"]
    elif name == "test_ftp_stor":
        assert ftpd.files["up/diag.txt"] == pattern(9000)
        assert ftpd.quit.wait(5) and ("QUIT", "") in ftpd.log


# -- end to end ----------------------------------------------------------------------------------

def in_s(seconds):
    """ISO 8601 UTC date-time SECONDS from now (the firmware's clock follows the CSMS's)."""
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def events(csms, cp, since, *actions):
    """What CP sent since the mark among ACTIONS: 'Action' or 'Action:status' strings in order."""
    return [m.action + (":" + m.payload["status"] if "status" in m.payload and m.action != "BootNotification" else "")
            for m in csms.messages(cp.id, direction="in", kind="call", since=since) if m.action in actions]


def firmware_events(csms, cp, since, last, timeout=30):
    """Wait for FirmwareStatusNotification LAST; the firmware statuses and boots since the mark."""
    csms.wait_for("FirmwareStatusNotification", lambda p: p["status"] == last, timeout, cp.id, since)
    return events(csms, cp, since, "FirmwareStatusNotification", "BootNotification")


def update(csms, cp, location, **extra):
    answer = csms.call(cp.id, ("UpdateFirmware", {"location": location, "retrieveDate": in_s(0), **extra}))
    assert answer == {}


def triggered(csms, cp, message):
    """TriggerMessage MESSAGE: the status the charge point reports."""
    mark = csms.mark()
    assert csms.call(cp.id, ("TriggerMessage", {"requestedMessage": message})) == {"status": "Accepted"}
    return csms.wait_for(message, cp_id=cp.id, since=mark, timeout=10)["status"]


def otadata(cp):
    path = cp.state_dir / "otadata.json"
    return json.loads(path.read_text()) if path.exists() else None


INSTALLED = ["FirmwareStatusNotification:Downloading", "FirmwareStatusNotification:Downloaded",
             "FirmwareStatusNotification:Installing", "BootNotification",
             "FirmwareStatusNotification:Installed"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The .mpy image of tools/build.py (what a device runs: no compiling on import)."""
    out = tmp_path_factory.mktemp("image") / "build"
    subprocess.run([sys.executable, str(ROOT / "tools" / "build.py"), "--dev", "--out", str(out)],
                   check=True, capture_output=True, timeout=120)
    return out


@pytest.mark.parametrize("scheme", ["http", "ftp"])
def test_update_installs_and_reports_after_the_restart(scheme, csms, charge_point, web, ftpd, build, monkeypatch):
    """A 1 MB image through the build, straight into the update slot. NOT in the ESP32's heap: on
    the 32-bit build it needs 168 KiB (160 KiB fails now and then: MemoryError on a 1 KB buffer
    mid-download), of which the simulated hardware holds ~36 KiB: ~130 KiB for the firmware, more
    than the ~112 KiB of a plain ESP32 (the restructuring added ~4 KiB; issue 13 brings it down).
    192K leaves a margin (NK = N KiB on 32-bit)."""
    monkeypatch.setenv("UWB_SIM_BUILD", str(build))
    cp = charge_point(heapsize="192K")
    registered(cp, csms)
    assert "FirmwareManagement" in csms.call(cp.id, ("GetConfiguration", {"key": ["SupportedFeatureProfiles"]}))[
        "configurationKey"][0]["value"]
    image = esp32_image(1_000_001)
    web.files["/fw/uwb.bin"] = ftpd.files["fw/uwb.bin"] = image
    mark = csms.mark()
    update(csms, cp, web.url + "/fw/uwb.bin" if scheme == "http" else ftpd.url.replace("://", "://user:se%40cret@")
           + "/fw/uwb.bin")
    assert firmware_events(csms, cp, mark, "Installed") == INSTALLED
    assert (cp.state_dir / "ota_1.bin").read_bytes()[: len(image)] == image
    assert otadata(cp) == {"boot": "ota_1", "state": "valid"}  # the new slot confirmed itself
    assert not (cp.state_dir / "fwupdate.json").exists()
    assert triggered(csms, cp, "FirmwareStatusNotification") == "Idle"


def test_download_failed_after_the_retries(csms, charge_point, web):
    cp = charge_point()
    registered(cp, csms)
    mark = csms.mark()
    update(csms, cp, web.url + "/fw/missing.bin", retries=2, retryInterval=1)
    assert firmware_events(csms, cp, mark, "DownloadFailed") == [
        "FirmwareStatusNotification:Downloading", "FirmwareStatusNotification:DownloadFailed"]
    assert web.gets == ["/fw/missing.bin"] * 2
    assert otadata(cp) is None
    assert triggered(csms, cp, "FirmwareStatusNotification") == "Idle"


def test_no_installation_while_a_transaction_runs(csms, charge_point, web):
    cp = charge_point()
    registered(cp, csms)
    tx = start_session(cp, csms, "TAG0001")
    web.files["/fw/uwb.bin"] = esp32_image(100_000)
    mark = csms.mark()
    update(csms, cp, web.url + "/fw/uwb.bin")
    csms.wait_for("FirmwareStatusNotification", lambda p: p["status"] == "Downloaded", 20, cp.id, mark)
    assert triggered(csms, cp, "FirmwareStatusNotification") == "Downloaded"  # the live status
    with pytest.raises(TimeoutError):
        csms.wait_for("FirmwareStatusNotification", lambda p: p["status"] == "Installing", 3, cp.id, mark)
    assert connector(cp.api.state())["status"] == "Charging"
    assert csms.call(cp.id, ("RemoteStopTransaction", {"transactionId": tx})) == {"status": "Accepted"}
    firmware_events(csms, cp, mark, "Installed")
    sent = events(csms, cp, mark, "StopTransaction", "FirmwareStatusNotification", "BootNotification")
    assert [e for e in sent if e != "FirmwareStatusNotification:Downloaded"] == [
        "FirmwareStatusNotification:Downloading", "StopTransaction", "FirmwareStatusNotification:Installing",
        "BootNotification", "FirmwareStatusNotification:Installed"]


def test_not_an_image_fails_the_installation_without_a_restart(csms, charge_point, web):
    cp = charge_point()
    registered(cp, csms)
    web.files["/fw/junk.bin"] = b"PK\x03\x04" + os.urandom(50_000)
    mark = csms.mark()
    update(csms, cp, web.url + "/fw/junk.bin")
    assert firmware_events(csms, cp, mark, "InstallationFailed") == [
        "FirmwareStatusNotification:Downloading", "FirmwareStatusNotification:Downloaded",
        "FirmwareStatusNotification:Installing", "FirmwareStatusNotification:InstallationFailed"]
    assert otadata(cp) is None  # the boot slot was not touched
    assert triggered(csms, cp, "FirmwareStatusNotification") == "Idle"


def test_unconfirmed_new_firmware_rolls_back(csms, charge_point, web):
    """Power cut on the first boot of the new firmware, before it registered (and so confirmed
    itself): the bootloader goes back to the old slot, which reports InstallationFailed."""
    cp = charge_point()
    registered(cp, csms)
    web.files["/fw/uwb.bin"] = esp32_image(50_000)
    csms.boot_status = "Pending"
    mark = csms.mark()
    update(csms, cp, web.url + "/fw/uwb.bin")
    csms.wait_for("BootNotification", cp_id=cp.id, since=mark)
    assert otadata(cp) == {"boot": "ota_1", "state": "verify"}
    cp.kill()
    csms.boot_status = "Accepted"
    cp.restart()
    assert firmware_events(csms, cp, mark, "InstallationFailed") == [
        "FirmwareStatusNotification:Downloading", "FirmwareStatusNotification:Downloaded",
        "FirmwareStatusNotification:Installing", "BootNotification", "BootNotification",
        "FirmwareStatusNotification:InstallationFailed"]
    assert otadata(cp) == {"boot": "ota_0", "state": "valid"}


def test_reboot_during_the_download_reports_download_failed(csms, charge_point, web):
    cp = charge_point()
    registered(cp, csms)
    web.files["/fw/gated.bin"] = esp32_image(200_000)
    mark = csms.mark()
    update(csms, cp, web.url + "/fw/gated.bin", retries=3)
    csms.wait_for("FirmwareStatusNotification", lambda p: p["status"] == "Downloading", 10, cp.id, mark)
    deadline = time.monotonic() + 10
    while not web.gets and time.monotonic() < deadline:
        time.sleep(0.05)
    assert web.gets == ["/fw/gated.bin"]
    cp.kill()  # power cut halfway through the download
    web.gate.set()
    cp.restart()
    assert firmware_events(csms, cp, mark, "DownloadFailed") == [
        "FirmwareStatusNotification:Downloading", "BootNotification",
        "FirmwareStatusNotification:DownloadFailed"]
    assert web.gets == ["/fw/gated.bin"]  # not resumed
    assert not (cp.state_dir / "fwupdate.json").exists()


def test_scheduled_update_survives_a_restart(csms, charge_point, web):
    cp = charge_point()
    registered(cp, csms)
    web.files["/fw/uwb.bin"] = esp32_image(20_000)
    mark = csms.mark()
    assert csms.call(cp.id, ("UpdateFirmware", {"location": web.url + "/fw/uwb.bin",
                                                "retrieveDate": in_s(3600)})) == {}
    cp.restart()
    registered(cp, csms)
    with pytest.raises(TimeoutError):
        csms.wait_for("FirmwareStatusNotification", None, 2, cp.id, mark)
    assert web.gets == []
    cp.api.clock(3600)  # the retrieveDate has come
    assert firmware_events(csms, cp, mark, "Installed") == ["BootNotification"] + INSTALLED


def test_get_diagnostics_over_http(csms, charge_point, web, tmp_path):
    state = tmp_path / "state-CP001"
    state.mkdir()
    (state / "crash.log").write_text("2030-01-01T00:00:00Z crash 1: MemoryError: out of memory\n")
    cp = charge_point(settings={"authorization_key": "NobodyMaySeeThisKey42"})
    registered(cp, csms)
    mark = csms.mark()
    answer = csms.call(cp.id, ("GetDiagnostics", {"location": web.url + "/diagnostics"}))
    name = answer["fileName"]
    assert name.startswith("diagnostics-") and name.endswith(".txt")
    csms.wait_for("DiagnosticsStatusNotification", lambda p: p["status"] == "Uploaded", 20, cp.id, mark)
    assert events(csms, cp, mark, "DiagnosticsStatusNotification") == [
        "DiagnosticsStatusNotification:Uploading", "DiagnosticsStatusNotification:Uploaded"]
    [upload] = web.uploads
    [field] = upload["fields"]
    assert upload["path"] == "/diagnostics" and field["name"] == "file" and field["filename"] == name
    report = field["body"].decode()
    for part in ("uwallbox 0.", "[configuration]", "ChargePointId = CP001", "HeartbeatInterval = ",
                 "[connectors]", "1: Available NoError", "crash 1: MemoryError: out of memory"):
        assert part in report, part
    assert "NobodyMaySeeThisKey42" not in report and "AuthorizationKey" not in report
    assert not (cp.state_dir / "diag.txt").exists()
    assert triggered(csms, cp, "DiagnosticsStatusNotification") == "Idle"


def test_get_diagnostics_over_ftp_with_retries(csms, charge_point, ftpd):
    cp = charge_point()
    registered(cp, csms)
    mark = csms.mark()
    bad = ftpd.url.replace("://", "://user:wrong@") + "/up/"
    csms.call(cp.id, ("GetDiagnostics", {"location": bad, "retries": 2, "retryInterval": 1}))
    csms.wait_for("DiagnosticsStatusNotification", lambda p: p["status"] == "UploadFailed", 20, cp.id, mark)
    assert ftpd.logins() == ["user", "user"]
    mark = csms.mark()
    good = ftpd.url.replace("://", "://user:se%40cret@") + "/up/"
    name = csms.call(cp.id, ("GetDiagnostics", {"location": good}))["fileName"]
    csms.wait_for("DiagnosticsStatusNotification", lambda p: p["status"] == "Uploaded", 20, cp.id, mark)
    assert b"[configuration]" in ftpd.files["up/" + name]


# -- SignedUpdateFirmware: the image verified before it is made bootable ---------------------------

MFR_ROOT = "ManufacturerRootCertificate"


def rsa_signer(d):
    """(root PEM, signing certificate PEM, signing key) of an RSA-2048 manufacturer PKI made with
    `cryptography` in folder D, and an impostor root of the same name with another key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID
    now = datetime.now(timezone.utc)

    def cert(cn, key, issuer, issuer_key, ca):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=2)))
        if ca:
            b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        return b.sign(issuer_key, hashes.SHA256()).public_bytes(Encoding.PEM).decode()
    root_key, key, other = (rsa.generate_private_key(65537, 2048) for _ in range(3))
    return (cert("RSA mfr", root_key, "RSA mfr", root_key, True), cert("RSA signer", key, "RSA mfr", root_key, False),
            key, cert("RSA mfr", other, "RSA mfr", other, True))


def signature(key, data):
    """Base64 of KEY's signature of DATA: ECDSA or RSA PKCS#1 v1.5, SHA-256."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


@pytest.fixture(params=["ec", "rsa"])
def signer(request, pki, tmp_path):
    """(manufacturer root PEM, signing certificate PEM, its key, an impostor root PEM)."""
    if request.param == "rsa":
        return rsa_signer(tmp_path)
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    key = load_pem_private_key((pki / "fw_signer.key").read_bytes(), None)
    return ((pki / "mfr_ca.pem").read_text(), (pki / "fw_signer.pem").read_text(), key,
            None)


def signed_update(csms, cp, url, cert, sig, rid):
    return csms.call(cp.id, ("SignedUpdateFirmware", {"requestId": rid, "retries": 1, "firmware": {
        "location": url, "retrieveDateTime": in_s(0), "signingCertificate": cert, "signature": sig}}))["status"]


def signed_events(csms, cp, since, last, rid, timeout=30):
    """Wait for SignedFirmwareStatusNotification LAST; the firmware statuses and boots since the
    mark (each signed status with requestId RID, no unsigned FirmwareStatusNotification)."""
    csms.wait_for("SignedFirmwareStatusNotification", lambda p: p["status"] == last, timeout, cp.id, since)
    got = [m.payload for m in csms.messages(cp.id, "SignedFirmwareStatusNotification", kind="call", since=since)]
    assert all(p["requestId"] == rid for p in got), got
    return events(csms, cp, since, "FirmwareStatusNotification", "SignedFirmwareStatusNotification",
                  "BootNotification")


def test_signed_firmware_is_verified_then_installed(csms, charge_point, web, signer):
    root, cert, key, impostor = signer
    cp = charge_point()
    registered(cp, csms)
    image = esp32_image(200_000)
    web.files["/fw/signed.bin"] = image
    url = web.url + "/fw/signed.bin"
    if impostor:  # a root of the same name with another key is not that root
        assert csms.call(cp.id, ("InstallCertificate", {"certificateType": MFR_ROOT, "certificate": impostor})) == {
            "status": "Accepted"}
        mark = csms.mark()
        assert signed_update(csms, cp, url, cert, signature(key, image), 3) == "InvalidCertificate"
        csms.wait_for("SecurityEventNotification", lambda p: p["type"] == "InvalidFirmwareSigningCertificate",
                      10, cp.id, mark)
    assert csms.call(cp.id, ("InstallCertificate", {"certificateType": MFR_ROOT, "certificate": root})) == {
        "status": "Accepted"}
    mark = csms.mark()
    assert signed_update(csms, cp, url, cert, signature(key, image), 4) == "Accepted"
    assert signed_events(csms, cp, mark, "Installed", 4) == [
        "SignedFirmwareStatusNotification:" + s for s in ("Downloading", "Downloaded", "SignatureVerified",
                                                          "Installing")] + [
        "BootNotification", "SignedFirmwareStatusNotification:Installed"]
    assert (cp.state_dir / "ota_1.bin").read_bytes()[: len(image)] == image
    assert otadata(cp) == {"boot": "ota_1", "state": "valid"}
    assert not (cp.state_dir / "fwsigner.der").exists()


@pytest.mark.parametrize("tamper", ["signature", "image"])
def test_tampered_signed_firmware_is_never_installed(tamper, csms, charge_point, web, signer):
    root, cert, key, _ = signer
    cp = charge_point()
    registered(cp, csms)
    image = esp32_image(100_000)
    sig = signature(key, image)
    if tamper == "signature":
        raw = bytearray(base64.b64decode(sig))
        raw[len(raw) // 2] ^= 0x10
        sig = base64.b64encode(raw).decode()
    else:
        image = image[:5000] + bytes([image[5000] ^ 1]) + image[5001:]
    web.files["/fw/signed.bin"] = image
    assert csms.call(cp.id, ("InstallCertificate", {"certificateType": MFR_ROOT, "certificate": root})) == {
        "status": "Accepted"}
    mark = csms.mark()
    assert signed_update(csms, cp, web.url + "/fw/signed.bin", cert, sig, 11) == "Accepted"
    assert signed_events(csms, cp, mark, "InvalidSignature", 11) == [
        "SignedFirmwareStatusNotification:Downloading", "SignedFirmwareStatusNotification:Downloaded",
        "SignedFirmwareStatusNotification:InvalidSignature"]
    csms.wait_for("SecurityEventNotification", lambda p: p["type"] == "InvalidFirmwareSignature", 10, cp.id, mark)
    assert otadata(cp) is None  # the running firmware untouched: the slot was never made bootable
    assert not (cp.state_dir / "fwupdate.json").exists()
    mark = csms.mark()
    assert csms.call(cp.id, ("ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})) == {
        "status": "Accepted"}
    assert csms.wait_for("SignedFirmwareStatusNotification", None, 10, cp.id, mark) == {"status": "Idle"}


def test_keys_and_signatures_while_a_transaction_runs(csms, charge_point, web, pki, build, monkeypatch):
    """During a charging session, the .mpy image (simulated hardware included, ~37 KB): a key and
    CSR made, a certificate chain and a signed image verified, with 208K of heap (32-bit); the
    session goes on and the image waits for its end. The heap in use is printed (what CRYPTO.md
    quotes). With 192K the heap is too fragmented for the key modules (about 29 KB free, no 1280
    bytes in one piece): SignChargePointCertificate gives up with a MemoryExhaustion event, and
    InstallCertificate answers InternalError, without a crash; not tested (it varies run to run)."""
    heap = "208K"
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    monkeypatch.setenv("UWB_SIM_BUILD", str(build))
    cp = charge_point(heapsize=heap)
    registered(cp, csms)
    tx = start_session(cp, csms, "TAG0001")
    before = cp.api.state()["heap"]
    mark = csms.mark()
    assert csms.call(cp.id, ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})) == {
        "status": "Accepted"}
    csr = csms.wait_for("SignCertificate", cp_id=cp.id, since=mark, timeout=20)["csr"]
    assert csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    image = esp32_image(100_000)
    web.files["/fw/signed.bin"] = image
    key = load_pem_private_key((pki / "fw_signer.key").read_bytes(), None)
    assert csms.call(cp.id, ("InstallCertificate", {"certificateType": MFR_ROOT, "certificate": (
        pki / "mfr_ca.pem").read_text()})) == {"status": "Accepted"}
    mark = csms.mark()
    assert signed_update(csms, cp, web.url + "/fw/signed.bin", (pki / "fw_signer.pem").read_text(),
                         signature(key, image), 21) == "Accepted"
    csms.wait_for("SignedFirmwareStatusNotification", lambda p: p["status"] == "SignatureVerified", 30, cp.id, mark)
    s = cp.api.state()
    after = s["heap"]
    assert connector(s)["status"] == "Charging" and connector(s)["transaction_id"] == tx
    assert s["violations"] == []
    print("heap %s: in use during the session %d B before, %d B after (free %d B; simulated hardware %d B)" % (
        heap, before["alloc"], after["alloc"], after["free"], after["sim"]))
    assert csms.call(cp.id, ("RemoteStopTransaction", {"transactionId": tx})) == {"status": "Accepted"}
    csms.wait_for("SignedFirmwareStatusNotification", lambda p: p["status"] == "Installed", 30, cp.id, mark)
    assert len(csms.messages(cp.id, "BootNotification", kind="call")) == 2  # the installation's reboot only
