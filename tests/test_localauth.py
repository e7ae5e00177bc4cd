"""Local Auth List Management: power cuts during updates of the list in flash, and authorization
from the list end to end (SendLocalList rules and the store under MicroPython:
tests/mpy/localauth_cases.py)."""
import os
import random
import subprocess
import time

import pytest

from harness import Csms, connector, offline, registered
from mpyrun import MICROPYTHON, MPY_DIR, mpy_env, run_mpy


def _power_cut(rng, state):
    """Run powercut_writer in STATE, SIGKILL it at a random instant after its first committed
    update, then check the list in a fresh process. Returns how many files the cut left."""
    writer = subprocess.Popen([MICROPYTHON, str(MPY_DIR / "runner.py"), "localauth_cases", "powercut_writer"],
                              cwd=state, env=mpy_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        first = writer.stdout.readline()
        assert first.startswith("committed"), first + writer.stdout.read()
        time.sleep(rng.uniform(0, 0.05))  # the random instant of the power cut
    finally:
        writer.kill()
    out = first + writer.communicate()[0]
    assert "Traceback" not in out, out
    committed = max(int(line.split()[1]) for line in out.splitlines() if line.startswith("committed"))
    check = run_mpy([str(MPY_DIR / "runner.py"), "localauth_cases", "powercut_check"], cwd=state,
                    env={"UWB_COMMITTED": str(committed)})
    assert check.returncode == 0 and check.stdout.rstrip().endswith("PASS"), check.stdout + check.stderr
    return int(check.stdout.split("leftovers")[1].split()[0])


@pytest.mark.soak
def test_power_cut_during_update(tmp_path):
    """The old version or the new one, never a mix, and no file left behind once the list is
    opened again (powercut_check): 12 cuts by default, 300 with UWB_SOAK=1."""
    rng = random.Random(os.environ.get("UWB_SEED", 1234))
    trials = 300 if os.environ.get("UWB_SOAK") == "1" else 12
    left = []
    for trial in range(trials):
        state = tmp_path / str(trial)
        state.mkdir()
        left.append(_power_cut(rng, state))
    assert sum(1 for n in left if n) >= trials // 3, f"too few cuts fell inside an update: {left}"


def test_offline_card_from_local_list(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    entries = [{"idTag": "LISTED1", "idTagInfo": {"status": "Accepted"}},
               {"idTag": "BLOCKED1", "idTagInfo": {"status": "Blocked"}}]
    answer = csms.call(cp.id, ("SendLocalList", {"listVersion": 7, "updateType": "Full",
                                                 "localAuthorizationList": entries}))
    assert answer == {"status": "Accepted"}
    assert csms.call(cp.id, ("GetLocalListVersion", {})) == {"listVersion": 7}
    csms.stop()
    offline(cp)
    cp.api.ev(plug=True, charge=True, max_a=16)
    cp.api.wait(lambda s: connector(s)["status"] == "Preparing")
    cp.api.rfid("BLOCKED1")  # refused from the list
    cp.api.rfid("STRANGER")  # unknown, AllowOfflineTxForUnknownId is false
    cp.api.rfid("LISTED1")
    cp.api.wait(lambda s: connector(s)["status"] == "Charging")

    back = Csms(port=csms.port).start()  # the CSMS comes back: the offline transaction is delivered
    try:
        start = back.wait_for("StartTransaction", cp_id=cp.id, timeout=90)
        assert start["idTag"] == "LISTED1"
        starts = back.messages(cp.id, "StartTransaction", "in", "call")
        assert [m.payload["idTag"] for m in starts] == ["LISTED1"]  # the refused cards started nothing
        assert back.errors == []
    finally:
        back.stop()


def test_conflict_between_list_and_csms_reported(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    entries = [{"idTag": "CARD1", "idTagInfo": {"status": "Accepted"}}]
    assert csms.call(cp.id, ("SendLocalList", {"listVersion": 1, "updateType": "Full",
                                               "localAuthorizationList": entries})) == {"status": "Accepted"}
    csms.blocked.add("CARD1")
    mark = csms.mark()
    cp.api.rfid("CARD1")
    for error in ("LocalListConflict", "NoError"):  # reported on connector 0, then cleared
        csms.wait_for("StatusNotification", lambda p: p["connectorId"] == 0 and p["errorCode"] == error,
                      cp_id=cp.id, since=mark)


def test_list_survives_a_power_cut(csms, charge_point):
    cp = charge_point()
    registered(cp, csms)
    entries = [{"idTag": "KEEP%d" % i, "idTagInfo": {"status": "Accepted"}} for i in range(20)]
    assert csms.call(cp.id, ("SendLocalList", {"listVersion": 3, "updateType": "Full",
                                               "localAuthorizationList": entries})) == {"status": "Accepted"}
    cp.kill()
    cp.restart()
    registered(cp, csms)
    assert csms.call(cp.id, ("GetLocalListVersion", {})) == {"listVersion": 3}
    removal = {"listVersion": 4, "updateType": "Differential", "localAuthorizationList": [{"idTag": "KEEP1"}]}
    assert csms.call(cp.id, ("SendLocalList", removal)) == {"status": "Accepted"}
    assert csms.call(cp.id, ("SendLocalList", removal)) == {"status": "VersionMismatch"}
