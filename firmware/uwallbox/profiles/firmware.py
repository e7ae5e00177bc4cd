"""Firmware Management profile: UpdateFirmware and GetDiagnostics, with their status notifications.

An update is kept in files.FW_UPDATE from the request to its last notification. It waits for
retrieveDate, downloads (http, https or ftp) straight into the other app slot (ota.py), then waits
until no connector has a transaction, installs and reboots. Across reboots: a scheduled update
still waits; one whose download a reboot ended reports DownloadFailed; after the reboot that
installs, the new firmware confirms itself once registered and reports Installed (InstallationFailed
when the old slot still runs: the bootloader rolled back).
SignedUpdateFirmware (security.py checked its signing certificate) goes the same way with the
request's requestId, the signing certificate (files.FW_SIGNER) and signature in the job: the
image is hashed (SHA-256) as it streams into the slot, and its signature verified with the
certificate's key (ECDSA, or RSA PKCS#1 v1.5 or PSS) before the slot is made bootable: every
step is a SignedFirmwareStatusNotification with the requestId, SignatureVerified or
InvalidSignature (the security event InvalidFirmwareSignature; the running firmware untouched)
after Downloaded.
GetDiagnostics writes a report to a flash file (versions, configuration without secrets, the
connectors, crash.log) and uploads it: POST multipart/form-data to an http(s) location, STOR into
an ftp folder. `app.firmware_status` / `app.diagnostics_status` hold what TriggerMessage reports.
"""
import asyncio
import gc
import sys
from micropython import const

from .. import VERSION, clock, files, transient
from ..flash import store
from ..log import log
from ..system import ota
from ..system.transfer import attempts, fetch, retried, upload
from .trigger import send

_COPY = const(256)  # bytes of crash.log copied at a time
_FINAL = ("DownloadFailed", "Installed", "InstallationFailed", "InstallVerificationFailed", "InvalidSignature",
          "Uploaded", "UploadFailed")

async def _status(app, kind, status, rid=None):
    """Report STATUS of KIND ("firmware" or "diagnostics") once online; after a final one the
    status is Idle again. With RID (a SignedUpdateFirmware's requestId) a
    SignedFirmwareStatusNotification. A lost notification is only logged (TriggerMessage may ask
    again)."""
    log("fw" if kind == "firmware" else "diag", status)
    setattr(app, kind + "_status", status)
    await app.session.online.wait()
    if rid is not None:
        await send(app, "SignedFirmwareStatusNotification", {"status": status, "requestId": rid})
    else:
        await send(app, ("Firmware" if kind == "firmware" else "Diagnostics") + "StatusNotification",
                   {"status": status})
    if status in _FINAL:
        setattr(app, kind + "_status", "Idle")


async def _ended(app, status, rid=None):
    """The update ends with STATUS."""
    store.remove(files.FW_UPDATE)  # first: a new UpdateFirmware may come while the notification is sent
    store.remove(files.FW_SIGNER)
    await _status(app, "firmware", status, rid)


# -- UpdateFirmware (and SignedUpdateFirmware: RID, SIGNER in DER, SIGNATURE in base64)
def update_firmware(app, p, rid=None, signer=None, signature=None):
    if store.load(files.FW_UPDATE, {}).get("step") == "install":  # the reboot into the new firmware is near
        log("fw", "an installation is under way: UpdateFirmware ignored")
        return {}
    tries, every = attempts(p)
    job = {"url": p["location"], "at": clock.parse(p["retrieveDate"]), "tries": tries, "every": every,
           "step": "wait"}
    if rid is not None:
        store.write(files.FW_SIGNER, signer)
        job["rid"], job["sig"] = rid, signature
    store.save(files.FW_UPDATE, job)
    app.rpc.after("firmware-update", _update(app))  # replaces an update under way
    return {}


async def _download(job):
    """Download the image into the update slot, attempt after attempt: (the image, its SHA-256
    digest or None), or None."""
    signed = "sig" in job

    async def attempt():
        image = ota.begin()
        if not signed:
            return (image, None) if await fetch(job["url"], image.write) else None
        import hashlib
        h = hashlib.sha256()

        def sink(chunk):
            image.write(chunk)
            h.update(chunk)
        return (image, h.digest()) if await fetch(job["url"], sink) else None
    return await retried(job["tries"], job["every"], attempt, "fw", "download")


def _verified(job, digest):
    """Does the signature of JOB verify DIGEST with the key of the signing certificate? Whatever
    is malformed (signature, certificate) is a no; None when the heap has no room to check (after
    a second try)."""
    from .. import forget_crypto
    for _ in range(2):
        forget_crypto()
        try:
            import binascii
            import sig
            import x509
            with open(files.FW_SIGNER, "rb") as f:
                spki = x509.Certificate(f.read()).spki
            signature = binascii.a2b_base64(job["sig"])
            kind = sig.public_key(spki)[0]
            algs = ("ecdsa-sha256",) if kind == "ec" else ("rsa-pss-sha256",) if kind == "rsa-pss" else (
                "rsa-pkcs1-sha256", "rsa-pss-sha256")
            for alg in algs:
                if sig.verify(spki, alg, signature, digest):
                    return True
            return False
        except (OSError, ValueError, TypeError) as e:
            log("fw", "signature not verified: %r" % e)
            return False
        except MemoryError:
            log("fw", "no heap to verify the signature now")
        finally:
            spki = signature = None
            forget_crypto()
    return None


async def _idle(app):
    """Until no connector has a transaction (or an authorized start waiting for a plug)."""
    while any(c.tx or c.pending for c in app.connectors):
        await asyncio.sleep(1)


async def _update(app):
    """Carry out the update in files.FW_UPDATE, from its retrieveDate to the reboot."""
    job = store.load(files.FW_UPDATE)
    while app.clock.now() < job["at"]:
        await asyncio.sleep(1)
    job["step"] = "download"
    store.save(files.FW_UPDATE, job)
    rid = job.get("rid")
    await _status(app, "firmware", "Downloading", rid)
    got = await _download(job)
    if got is None:
        return await _ended(app, "DownloadFailed", rid)
    image, digest = got
    await _status(app, "firmware", "Downloaded", rid)
    if rid is not None:
        ok = _verified(job, digest)
        if ok is None:  # never installed unverified
            return await _ended(app, "InstallVerificationFailed", rid)
        if not ok:
            app.security_event("InvalidFirmwareSignature", job["url"][:100])
            return await _ended(app, "InvalidSignature", rid)  # the slot is never made bootable
        await _status(app, "firmware", "SignatureVerified", rid)
    await _idle(app)
    await _status(app, "firmware", "Installing", rid)
    await _idle(app)  # a transaction may have started while that was sent
    job["step"], job["from"] = "install", ota.running()
    store.save(files.FW_UPDATE, job)
    if not image.finish():
        return await _ended(app, "InstallationFailed", rid)
    await app.reboot("Reboot")


async def resume(app):
    """At boot, with files.FW_UPDATE in flash (app.py runs it as task "firmware-update"): carry on,
    or report how the update ended."""
    job = store.load(files.FW_UPDATE, {})
    step, rid = job.get("step"), job.get("rid")
    if step == "wait":
        return await _update(app)
    if step != "install":
        return await _ended(app, "DownloadFailed", rid)  # a reboot ended the download
    if ota.running() == job["from"]:  # the new slot did not boot, or the bootloader rolled back
        return await _ended(app, "InstallationFailed", rid)
    await app.session.online.wait()
    ota.confirm()  # registered: the new firmware works
    await _ended(app, "Installed", rid)


# -- GetDiagnostics
def get_diagnostics(app, p):
    name = "diagnostics-%s.txt" % app.clock.iso().replace("-", "").replace(":", "")
    app.rpc.after("diagnostics", _diagnostics(app, p, name))  # replaces an upload under way
    return {"fileName": name}


def _report(app):
    """Write the diagnostics report to files.DIAGNOSTICS."""
    cfg = app.config
    with open(files.DIAGNOSTICS, "w") as f:
        f.write("uwallbox %s, board %s, MicroPython %s\nat %s, heap free %d B\n\n[configuration]\n" % (
            VERSION, app.board.NAME, sys.version, app.clock.iso(), gc.mem_free()))
        with transient():
            from ..station.keyrules import SECRET, names, spec, text  # for this report only
            for k in names():
                s = spec(k)
                if not s[1] & SECRET:  # never the AuthorizationKey
                    f.write("%s = %s\n" % (k, text(cfg.get(k, s[2]))))
        f.write("\n[connectors]\n")
        for c in app.connectors:
            e = c.evse
            f.write("%d: %s %s, transaction %s, %d Wh, %d W, pilot %s, offered %s A, relay %s\n" % (
                c.id, c.status, c.error, c.transaction_id, c.meter_wh, c.power_w, e.cp,
                e.offered_a, "closed" if e.relay else "open"))
        f.write("\n[%s]\n" % files.CRASH_LOG)
        try:
            with open(files.CRASH_LOG) as src:
                while True:
                    piece = src.read(_COPY)
                    if not piece:
                        break
                    f.write(piece)
        except OSError:
            f.write("(none)\n")


async def _diagnostics(app, p, name):
    _report(app)
    await _status(app, "diagnostics", "Uploading")
    ok = await retried(*attempts(p), lambda: upload(p["location"], files.DIAGNOSTICS, name), "diag", "upload")
    store.remove(files.DIAGNOSTICS)
    await _status(app, "diagnostics", "Uploaded" if ok else "UploadFailed")
