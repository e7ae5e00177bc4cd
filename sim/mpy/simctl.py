"""Simulator control API: HTTP/1.1 + JSON on 127.0.0.1:UWB_SIM_CONTROL, one request per connection.

GET  /state   -> {"ocpp": {"connected", "registration", "queued"}, "connectors": [{"id", "cp", "pwm_duty",
                  "offered_a", "relay", "locked", "status", "transaction_id", "meter_wh",
                  "power_w", "fault", "ev": {...plant state...}, "relay_open_latency_ms",
                  "pilot_mv": [high, low] (the firmware's last reading), "amps": [L1, L2, L3]}],
                  "violations": [...], "relay_open_latency_ms": [...], "heap": {"free", "alloc"}}
                  (heap: bytes after gc.collect()); taken between two Evse
                  steps (in a scheduled callback, like them), so its fields agree with each other
POST /ev      {"connector": 1, "plug", "charge", "max_a", "phases", "diode_fault", "ventilation",
               "cable_a"}                           (every field optional; connector default 1)
POST /fault   {"connector": 1, "rcd", "weld", "lock_jam", "pilot_short", "rcd_broken"}
POST /rfid    {"id_tag": "..."}   -> starts app.on_card(id_tag) (a coroutine function) as a task
              and answers at once, like a card reader; its errors go to the firmware log
POST /clock   {"advance_s": N}    -> app.clock.advance(N)
POST /meter   {"connector": 1, "energy_wh": N, "fail": bool}  (each optional) -> set the simulated
              meter's lifetime register (backwards too: a swapped meter), make it stop answering
              or answer again (simmeter.py; 400 for a meter that cannot)
ISO 15118 Plug & Charge (uwallbox/profiles/pnc.py; 400 while ISO15118PnCEnabled is false): what the EV's
15118 session would ask of the firmware (the simulated EV has no 15118 stack):
POST /pnc     {"connector": 1, "emaid": "...", "certificate_hash": {OCSPRequestData} or [...],
               "certificate": "PEM"}    (the last two optional) -> the contract's authorization;
              on Accepted a transaction starts on that connector with the eMAID as idTag.
              Answers {"ok": true, "idTagInfo": {...}, "started": bool}
POST /pnc/ev-certificate {"schema_version", "action", "exi_request"} -> Get15118EVCertificate
POST /pnc/certificate-status {"ocsp_request_data": {...}}         -> GetCertificateStatus
              both answer {"ok": true, "response": {the CSMS's 2.0.1 response}}
POSTs answer {"ok": true}; errors answer 400 {"error": "..."} (bad JSON, unknown field or
connector, wrong type), 404 for an unknown path, 405 for a wrong method, 500 if the app raised.
"""
import asyncio
import gc
import json
import sys

import micropython

_MAX_BODY = 8192
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 500: "Internal Server Error"}


class HttpError(Exception):
    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text


class Control:
    def __init__(self, app, plants, sim_heap=lambda: 0, meters=None):
        """SIM_HEAP() -> bytes the simulated hardware holds on the heap (reported by GET /state);
        METERS: the board's simmeter.Meters (POST /meter), or None."""
        self.app = app
        self.plants = plants
        self.meters = meters
        self.sim_heap = sim_heap
        self.server = None
        for p, c in zip(plants, app.connectors):   # the plant checks closings against OCPP
            p.authorized = lambda c=c: bool(c.tx and c.tx.allowed)

    async def serve(self, port, host="127.0.0.1"):
        """Run the server until cancelled (prints the "control API on" line once listening)."""
        self.server = await asyncio.start_server(self._client, host, port)
        print("control API on http://%s:%d" % (host, port))
        try:
            await self.server.wait_closed()
        finally:
            self.close()

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None

    # -- HTTP
    async def _client(self, reader, writer):
        code, body = 500, {"error": "internal"}
        try:
            try:
                method, path, data = await asyncio.wait_for_ms(self._request(reader), 5000)
                code, body = 200, await self._route(method, path, data)
            except HttpError as e:
                code, body = e.code, {"error": e.text}
            except asyncio.TimeoutError:
                code, body = 400, {"error": "request timeout"}
            except Exception as e:     # the app raised: report, keep serving
                sys.print_exception(e)
                code, body = 500, {"error": "%s: %s" % (type(e).__name__, e)}
            out = json.dumps(body).encode()
            writer.write(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n"
                          % (code, _REASONS.get(code, ""), len(out))).encode())
            writer.write(out)
            await writer.drain()
        except Exception:   # client went away
            pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except Exception:
                pass

    async def _request(self, reader):
        line = await reader.readline()
        parts = line.decode().split()
        if len(parts) < 2:
            raise HttpError(400, "bad request line")
        length = 0
        while True:
            h = await reader.readline()
            if not h or h in (b"\r\n", b"\n"):
                break
            k, _, v = h.decode().partition(":")
            if k.strip().lower() == "content-length":
                try:
                    length = int(v.strip())
                except ValueError:
                    raise HttpError(400, "bad Content-Length")
        if length < 0 or length > _MAX_BODY:
            raise HttpError(413, "body too large")
        data = await reader.readexactly(length) if length else b""
        return parts[0].upper(), parts[1].split("?")[0], data

    async def _route(self, method, path, data):
        if path == "/state":
            if method != "GET":
                raise HttpError(405, "GET only")
            return await self._snapshot()
        h = {"/ev": self._ev, "/fault": self._fault, "/rfid": self._rfid,
             "/clock": self._clock, "/meter": self._meter, "/pnc": self._pnc, "/pnc/ev-certificate": self._ev_certificate,
             "/pnc/certificate-status": self._certificate_status}.get(path)
        if h is None:
            raise HttpError(404, "unknown path " + path)
        if method != "POST":
            raise HttpError(405, "POST only")
        try:
            d = json.loads(data) if data else {}
        except ValueError:
            raise HttpError(400, "invalid JSON")
        if not isinstance(d, dict):
            raise HttpError(400, "JSON object expected")
        r = await h(d)
        return r if r is not None else {"ok": True}

    # -- endpoints
    def _plant(self, d):
        c = d.pop("connector", 1)
        if c is True or c is False or not isinstance(c, int) or not 1 <= c <= len(self.plants):
            raise HttpError(400, "unknown connector %r" % (c,))
        return self.plants[c - 1]

    async def _ev(self, d):
        p = self._plant(d)
        try:
            p.update(d)
        except ValueError as e:
            raise HttpError(400, str(e))

    async def _fault(self, d):
        import ev
        p = self._plant(d)
        try:
            p.update(d, ev.FAULT_FIELDS)
        except ValueError as e:
            raise HttpError(400, str(e))

    async def _rfid(self, d):
        tag = d.get("id_tag")
        if set(d) != {"id_tag"} or not isinstance(tag, str) or not 0 < len(tag) <= 20:
            raise HttpError(400, "id_tag: string of 1-20 characters expected")
        asyncio.create_task(self._card(tag))

    async def _card(self, tag):
        try:
            await self.app.on_card(tag)
        except Exception as e:
            print("simctl: card %s failed" % tag)
            sys.print_exception(e)

    async def _clock(self, d):
        s = d.get("advance_s")
        if set(d) != {"advance_s"} or s is True or s is False or not isinstance(s, (int, float)):
            raise HttpError(400, "advance_s: number expected")
        self.app.clock.advance(s)

    async def _meter(self, d):
        ms = self.meters
        if ms is None:
            raise HttpError(400, "no simulated meter")
        i = self.plants.index(self._plant(d))
        wh, fail = d.pop("energy_wh", None), d.pop("fail", None)
        if d:
            raise HttpError(400, "unknown field: %s" % ", ".join(d))
        if wh is not None and (wh is True or wh is False or not isinstance(wh, int) or wh < 0):
            raise HttpError(400, "energy_wh: integer >= 0 expected")
        if fail is not None and fail is not True and fail is not False:
            raise HttpError(400, "fail: boolean expected")
        try:
            if wh is not None:
                ms.set_energy(i, wh)
            if fail is not None:
                ms.fail(i, fail)
        except ValueError as e:
            raise HttpError(400, str(e))

    def _pnc_module(self):
        """uwallbox.profiles.pnc, imported only now and only while Plug & Charge is on."""
        if not self.app.config["ISO15118PnCEnabled"]:
            raise HttpError(400, "Plug & Charge is off (ISO15118PnCEnabled false)")
        from uwallbox.profiles import pnc
        return pnc

    async def _pnc(self, d):
        pnc = self._pnc_module()
        cid = self.plants.index(self._plant(d)) + 1
        emaid, cert = d.pop("emaid", None), d.pop("certificate", None)
        hashes = d.pop("certificate_hash", None)
        if isinstance(hashes, dict):
            hashes = [hashes]
        if d or not isinstance(emaid, str) or not 0 < len(emaid) <= 20 \
                or not isinstance(hashes or [], list) or not isinstance(cert or "", str):
            raise HttpError(400, "emaid: string of 1-20 characters expected; certificate_hash: "
                            "object or list; certificate: string")
        info = await pnc.authorize(self.app, emaid, hashes, cert)
        started = info["status"] == "Accepted" and self.app.begin(emaid, info, cid)
        return {"ok": True, "idTagInfo": info, "started": started}

    async def _ev_certificate(self, d):
        pnc = self._pnc_module()
        if set(d) != {"schema_version", "action", "exi_request"}:
            raise HttpError(400, "schema_version, action, exi_request expected")
        return {"ok": True, "response": await pnc.ev_certificate(
            self.app, d["schema_version"], d["action"], d["exi_request"])}

    async def _certificate_status(self, d):
        pnc = self._pnc_module()
        if set(d) != {"ocsp_request_data"}:
            raise HttpError(400, "ocsp_request_data expected")
        return {"ok": True, "response": await pnc.certificate_status(self.app, d["ocsp_request_data"])}

    async def _snapshot(self):
        """state(), taken in a scheduled callback: no Evse step runs halfway through it."""
        done = asyncio.ThreadSafeFlag()
        box = []

        def take(_):
            try:
                box.append(self.state())
            except Exception as e:
                box.append(e)
            done.set()
        while True:
            try:
                micropython.schedule(take, None)
                break
            except RuntimeError:     # the queue is full: the timer's turn first
                await asyncio.sleep_ms(1)
        await done.wait()
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def state(self):
        heap = _heap(self.sim_heap())  # before this answer takes any
        app = self.app
        import ev
        conns = []
        cs = getattr(app, "connectors", None) or []
        es = getattr(app, "evses", None) or []
        for i, p in enumerate(self.plants):
            p.check()
            c = cs[i] if i < len(cs) else None
            e = es[i] if i < len(es) else None
            pilot = getattr(e, "pilot", None)
            conns.append({
                "id": i + 1,
                "cp": getattr(e, "cp", None),
                "pwm_duty": round(pilot.duty if pilot is not None else p.pwm_duty(), 2),
                "offered_a": float(getattr(e, "offered_a", 0.0)),
                "relay": bool(getattr(e, "relay", p.relay_out())),
                "locked": bool(getattr(e, "locked", False)),
                "status": getattr(c, "status", None),
                "transaction_id": getattr(c, "transaction_id", None),
                "meter_wh": getattr(c, "meter_wh", 0),
                "power_w": float(getattr(c, "power_w", 0.0)),
                "fault": getattr(e, "fault", None),
                "meter": _meter_state(self.meters, c, i),
                "ev": p.snapshot(),
                "relay_open_latency_ms": p.latency_ms,
                "pilot_mv": [getattr(pilot, "high_mv", 0), getattr(pilot, "low_mv", 0)],
                "amps": [round(a, 2) for a in p.meter.amps],
            })
        session = getattr(app, "session", None)
        return {"ocpp": {"connected": bool(getattr(session, "connected", False)),
                         "registration": getattr(session, "registration", None),
                         "queued": len(app.journal) if getattr(app, "journal", None) else 0},
                "connectors": conns,
                "violations": ev.violations,
                "relay_open_latency_ms": ev.relay_open_latency_ms,
                "heap": heap}


def _heap(sim):
    """The heap after a full collection, bytes; SIM: what the simulated hardware (mocked
    machine, EV plants, this control API) holds of it, which a device does not spend."""
    gc.collect()
    return {"free": gc.mem_free(), "alloc": gc.mem_alloc(), "sim": sim}


def _meter_state(ms, c, i):
    """What the firmware's meter of connector index I reads (the currents it draws, per phase)."""
    m = getattr(c, "meter", None)
    if m is None or ms is None:
        return None
    wh, w, a, v = m.read()
    return {"kind": ms.kind, "ok": getattr(c, "meter_ok", True),
            "failing": ms.kind != "plant" and ms.failing(i), "register_wh": wh, "amps": list(a),
            "volts": list(v), "phases_in_use": getattr(c, "phases_in_use", None)}
