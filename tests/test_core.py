"""Core profile end to end: every CSMS request, authorization rules, availability, reset."""
import pytest

from harness import Csms, configure, connector, offline, registered, start_session, status

pytestmark = pytest.mark.timeout(180)


def call(csms, cp, action, payload):
    return csms.call(cp.id, (action, payload))


def test_get_configuration(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    every = call(csms, cp, "GetConfiguration", {})["configurationKey"]
    keys = {k["key"]: k for k in every}
    for required in ("HeartbeatInterval", "MeterValueSampleInterval", "NumberOfConnectors",
                     "SupportedFeatureProfiles", "TransactionMessageAttempts", "LocalAuthListEnabled"):
        assert required in keys, required
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "1"}
    assert keys["HeartbeatInterval"]["readonly"] is False
    assert "AuthorizationKey" not in keys
    some = call(csms, cp, "GetConfiguration", {"key": ["HeartbeatInterval", "Bogus", "AuthorizationKey"]})
    assert [k["key"] for k in some["configurationKey"]] == ["HeartbeatInterval"]
    assert some["unknownKey"] == ["Bogus", "AuthorizationKey"]


def test_change_configuration_answers_and_persistence(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    answers = [call(csms, cp, "ChangeConfiguration", {"key": k, "value": v})["status"] for k, v in (
        ("MeterValueSampleInterval", "30"), ("MeterValueSampleInterval", "-5"),
        ("NumberOfConnectors", "4"), ("NoSuchKey", "1"), ("AllowOfflineTxForUnknownId", "maybe"),
        ("SecurityProfile", "1"))]
    assert answers == ["Accepted", "Rejected", "Rejected", "NotSupported", "Rejected", "RebootRequired"]
    cp.restart()
    registered(cp, csms)
    got = call(csms, cp, "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
    assert got["configurationKey"][0]["value"] == "30"


def test_authorization_key_is_write_only(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    secret = "s3cr3t-Key-0123456789"
    assert call(csms, cp, "ChangeConfiguration", {"key": "AuthorizationKey", "value": secret}) == {
        "status": "RebootRequired"}
    assert secret not in cp.log()


@pytest.mark.parametrize("frame, code", [
    ('[2, "r1", "Teleport", {}]', "NotImplemented"),
    ('[2, "r2", "Reset", {"type": "Sideways"}]', "PropertyConstraintViolation"),
    ('[2, "r3", "Reset", {}]', "OccurenceConstraintViolation"),
    ('[2, "r4", "ChangeAvailability", {"connectorId": "1", "type": "Operative"}]', "TypeConstraintViolation"),
    ('[2, "r5", "Reset"]', "FormationViolation"),
])
def test_bad_requests_get_the_right_callerror(csms, charge_point, frame, code):
    cp = charge_point()
    registered(cp, csms)
    reply = csms.send_raw(cp.id, frame, timeout=10)
    assert reply[0] == 4 and reply[2] == code, reply
    assert cp.api.state()["ocpp"]["connected"]


def test_data_transfer(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    assert call(csms, cp, "DataTransfer", {"vendorId": "com.example"})["status"] == "UnknownVendorId"


def test_remote_start_and_stop(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    cp.api.ev(plug=True, charge=True, max_a=16)
    assert call(csms, cp, "RemoteStartTransaction", {"idTag": "REMOTE1", "connectorId": 1}) == {"status": "Accepted"}
    csms.wait_for("Authorize", lambda p: p["idTag"] == "REMOTE1", cp_id=cp.id)  # AuthorizeRemoteTxRequests
    start = csms.wait_for("StartTransaction", lambda p: p["idTag"] == "REMOTE1", cp_id=cp.id)
    assert start["connectorId"] == 1
    tid = cp.api.wait(lambda s: connector(s)["status"] == "Charging")["connectors"][0]["transaction_id"]
    assert call(csms, cp, "RemoteStopTransaction", {"transactionId": tid + 100}) == {"status": "Rejected"}
    assert call(csms, cp, "RemoteStopTransaction", {"transactionId": tid}) == {"status": "Accepted"}
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id)
    assert stop["reason"] == "Remote"
    csms.wait_for("StatusNotification", status(1, "Finishing"), cp_id=cp.id)
    assert call(csms, cp, "RemoteStartTransaction", {"idTag": "REMOTE1", "connectorId": 7}) == {"status": "Rejected"}


def test_remote_start_waits_for_plug_until_connection_timeout(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "ConnectionTimeOut", "2")
    configure(csms, cp, "AuthorizeRemoteTxRequests", "false")
    mark = csms.mark()
    assert call(csms, cp, "RemoteStartTransaction", {"idTag": "LATE"}) == {"status": "Accepted"}
    csms.wait_for("StatusNotification", status(1, "Preparing"), cp_id=cp.id, since=mark)
    csms.wait_for("StatusNotification", status(1, "Available"), cp_id=cp.id, since=mark, timeout=10)
    assert not csms.messages(cp.id, "Authorize", since=mark)
    assert not csms.messages(cp.id, "StartTransaction", since=mark)


def test_card_stops_its_own_transaction_and_parent_may_stop(csms, charge_point):
    csms.handlers["Authorize"] = lambda cp_id, p: {"idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}}
    cp = charge_point()
    registered(cp, csms)
    tid = start_session(cp, csms, "DRIVER1")
    cp.api.rfid("DRIVER2")  # another card of the same fleet
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id)
    assert stop["reason"] == "Local" and stop["idTag"] == "DRIVER2"


def test_invalid_id_in_start_transaction_answer_deauthorizes(csms, charge_point):
    csms.handlers["StartTransaction"] = lambda cp_id, p: {
        "transactionId": 77, "idTagInfo": {"status": "Invalid"}}
    cp = charge_point()
    registered(cp, csms)
    cp.api.ev(plug=True, charge=True, max_a=16)
    cp.api.rfid("GHOST")
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == 77, cp_id=cp.id)
    assert stop["reason"] == "DeAuthorized"
    c = connector(cp.api.state())
    assert not c["relay"] and c["transaction_id"] is None


def test_invalid_id_may_draw_max_energy_on_invalid_id(csms, charge_point):
    csms.handlers["StartTransaction"] = lambda cp_id, p: {
        "transactionId": 78, "idTagInfo": {"status": "Blocked"}}
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "StopTransactionOnInvalidId", "false")
    configure(csms, cp, "MaxEnergyOnInvalidId", "5")
    cp.api.ev(plug=True, charge=True, max_a=16)
    cp.api.rfid("GHOST")
    start = connector(cp.api.wait(lambda s: connector(s)["status"] == "Charging"))["meter_wh"]
    s = cp.api.wait(lambda s: connector(s)["status"] == "SuspendedEVSE", timeout=30)
    c = connector(s)
    assert not c["relay"] and c["transaction_id"] == 78
    assert 5 <= c["meter_wh"] - start <= 9  # one meter tick (about 3 Wh at 11 kW) of overshoot
    assert not csms.messages(cp.id, "StopTransaction")


def test_blocked_card_charges_nothing(csms, charge_point):
    csms.blocked.add("BAD")
    cp = charge_point()
    registered(cp, csms)
    cp.api.ev(plug=True, charge=True)
    cp.api.rfid("BAD")
    csms.wait_for("Authorize", lambda p: p["idTag"] == "BAD", cp_id=cp.id)
    c = connector(cp.api.state())
    assert c["status"] == "Preparing" and not c["relay"] and c["pwm_duty"] == 100.0
    assert not csms.messages(cp.id, "StartTransaction")


def test_change_availability(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    assert call(csms, cp, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == {"status": "Accepted"}
    csms.wait_for("StatusNotification", status(1, "Unavailable"), cp_id=cp.id)
    assert connector(cp.api.state())["cp"] == "F"  # pilot at -12 V: EVSE not available
    cp.restart()  # persisted
    registered(cp, csms)
    assert cp.api.wait(lambda s: connector(s)["status"] == "Unavailable")
    assert call(csms, cp, "ChangeAvailability", {"connectorId": 1, "type": "Operative"}) == {"status": "Accepted"}
    csms.wait_for("StatusNotification", status(1, "Available"), cp_id=cp.id, since=csms.mark() - 1)
    tid = start_session(cp, csms)
    assert call(csms, cp, "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}) == {"status": "Scheduled"}
    assert connector(cp.api.state())["relay"]  # the running transaction goes on
    cp.api.rfid("TAG0001")
    csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id)
    csms.wait_for("StatusNotification", status(1, "Unavailable"), cp_id=cp.id)
    assert call(csms, cp, "ChangeAvailability", {"connectorId": 3, "type": "Inoperative"}) == {"status": "Rejected"}


def test_soft_reset_stops_transaction_and_reboots(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    tid = start_session(cp, csms)
    mark = csms.mark()
    assert call(csms, cp, "Reset", {"type": "Soft"}) == {"status": "Accepted"}
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id)
    assert stop["reason"] == "SoftReset"
    csms.wait_for("BootNotification", cp_id=cp.id, since=mark)
    assert len(csms.messages(cp.id, "StopTransaction", "in", "call")) == 1
    assert csms.wait_closes(cp.id, 1) == [1001]  # the link ended on purpose, with a Close frame
    cp.api.wait(lambda s: s["ocpp"]["connected"], 15)
    cp.stop()
    assert csms.wait_closes(cp.id, 2) == [1001, 1001]  # so does a shutdown (Ctrl-C / the simulator stopping)


def test_clear_cache_and_offline_cached_card(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    tid = start_session(cp, csms, "CACHED")
    cp.api.rfid("CACHED")
    csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id)
    cp.api.ev(plug=False)
    port = csms.port
    csms.stop()
    offline(cp)
    cp.api.ev(plug=True, charge=True)
    cp.api.rfid("CACHED")  # offline: the cache knows the card (LocalAuthorizeOffline)
    cp.api.wait(lambda s: connector(s)["status"] == "Charging", 15)
    cp.api.rfid("CACHED")
    cp.api.wait(lambda s: connector(s)["transaction_id"] is None and connector(s)["status"] == "Finishing", 15)
    back = Csms(port=port).start()
    try:
        registered_again = cp.api.wait(lambda s: s["ocpp"]["connected"], 30)
        assert registered_again["ocpp"]["registration"] == "Accepted"
        back.wait_for("StopTransaction", cp_id=cp.id, timeout=30)  # the offline session delivered
        # ... and its answer taken in (a StopTransaction.conf's idTagInfo updates the cache too)
        cp.api.wait(lambda s: s["ocpp"]["queued"] == 0, 10)
        assert back.call(cp.id, ("ClearCache", {})) == {"status": "Accepted"}
        cp.api.ev(plug=False)
    finally:
        back.stop()
    offline(cp)
    cp.api.ev(plug=True, charge=True)
    cp.api.rfid("CACHED")  # offline again, and the cache is empty: refused
    cp.api.wait(lambda s: "CACHED refused" in cp.log(), 10)
    assert connector(cp.api.state())["transaction_id"] is None


def test_unlock_connector(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    tid = start_session(cp, csms)
    assert connector(cp.api.state())["locked"]
    assert call(csms, cp, "UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id)
    assert stop["reason"] == "UnlockCommand"
    assert not connector(cp.api.state())["locked"]
    # a connector that does not exist: NotSupported, not a CALLERROR
    assert call(csms, cp, "UnlockConnector", {"connectorId": 5}) == {"status": "NotSupported"}


def test_stop_transaction_carries_transaction_data(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "StopTxnSampledData", "Energy.Active.Import.Register,Power.Active.Import")
    configure(csms, cp, "MeterValueSampleInterval", "1")
    tid = start_session(cp, csms)
    csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid, cp_id=cp.id)
    cp.api.ev(plug=False)
    stop = csms.wait_for("StopTransaction", lambda p: p["transactionId"] == tid, cp_id=cp.id)
    contexts = [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End", contexts
    assert "Sample.Periodic" in contexts
    measurands = {sv["measurand"] for sv in stop["transactionData"][-1]["sampledValue"]}
    assert measurands == {"Energy.Active.Import.Register", "Power.Active.Import"}


def test_meter_values_measurands(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "MeterValuesSampledData",
              "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,Current.Offered")
    configure(csms, cp, "MeterValueSampleInterval", "1")
    tid = start_session(cp, csms, max_a=16)
    mv = csms.wait_for("MeterValues", lambda p: p.get("transactionId") == tid
                       and float(p["meterValue"][0]["sampledValue"][1]["value"]) > 0, cp_id=cp.id)
    sv = mv["meterValue"][0]["sampledValue"]
    by = {(s["measurand"], s.get("phase")): s for s in sv}
    assert by[("Current.Import", "L1")]["unit"] == "A" and float(by[("Current.Import", "L1")]["value"]) == 16
    assert by[("Voltage", "L2-N")]["unit"] == "V"
    assert float(by[("Current.Offered", None)]["value"]) == 32
    assert all(s["context"] == "Sample.Periodic" for s in sv)


def test_clock_aligned_meter_values(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    configure(csms, cp, "ClockAlignedDataInterval", "2")
    mark = csms.mark()
    a = csms.wait_for("MeterValues", cp_id=cp.id, since=mark, timeout=10)
    assert a["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    assert "transactionId" not in a
    second = int(a["meterValue"][0]["timestamp"][17:19])
    assert second % 2 == 0, a
