"""The firmware frozen into the 32-bit binary (make mp32): no file of the package in flash."""
import pytest

from harness import registered

pytestmark = pytest.mark.timeout(120)


def test_frozen_firmware_is_whole_and_not_shadowed(csms, charge_point, tmp_path, monkeypatch):
    monkeypatch.setenv("UWB_SIM_FROZEN", "1")
    state = tmp_path / "flash"
    stale = state / "uwallbox"  # an earlier `make deploy` left the package in flash
    stale.mkdir(parents=True)
    (stale / "__init__.py").write_text("raise ImportError('the stale copy in flash was imported')\n")
    cp = charge_point(state_dir=state)
    registered(cp, csms)
    assert "stale copy" not in cp.log()
    got = csms.call(cp.id, ("GetConfiguration", {"key": ["SupportedFeatureProfiles"]}))
    assert got["configurationKey"][0]["value"] == \
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
    # the schemas come from the frozen module (there are no schema files): a bad request is refused
    # with the right code, a good one handled
    reply = csms.send_raw(cp.id, '[2, "bad1", "Reset", {"type": "Sideways"}]', timeout=10)
    assert reply[:3] == [4, "bad1", "PropertyConstraintViolation"], reply
    p = {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]}}}
    assert csms.call(cp.id, ("SetChargingProfile", p)) == {"status": "Accepted"}
    assert not (state / "uwallbox" / "ocpp").exists()
