"""The sample ledger of a real session on the simulated station, across a session restart.

Two mounts, three runs and an exposure, the third run after more warm time than Mg/MgO
tolerates; the session is closed and opened again on the same data directory halfway.
The runs are counts of the sample environment: what the ledger records does not depend on
the plan, and a count costs a fraction of a second.
"""

from __future__ import annotations

import pytest
from bluesky import plans as bp

from tcstation.instruments.environment import WARM_TIME_TOLERANCE_SECONDS
from tcstation.ledger import LedgerError, SampleLedger, ledger_path
from tcstation.plans.maintenance import expose_to_room_temperature, mount_sample
from tcstation.session import open_session
from tcstation.storage import run_by_uid

pytestmark = pytest.mark.integration

EXPOSURE_MINUTES = WARM_TIME_TOLERANCE_SECONDS["mg_mgo"] / 60.0 + 1.0
"""One minute beyond what Mg/MgO tolerates: the run after it must be flagged."""


def _open(ioc):
    return open_session(ioc.prefix, watchdog=False, stream=False, plots=False,
                        progress=False, show_tables=False)


@pytest.fixture(scope="module")
def ledger_runs(station_factory, tmp_path_factory):
    """Run the sequence, restarting the session after the second run."""
    # 60x: the exposure must end within (13 min + 120 s) / 60 = 15 wall s
    # (SampleEnvironment.expose); it runs at the simulator's full speed, a few wall seconds.
    ioc = station_factory(speedup=60.0, sample="pb", noise=False)
    data_dir = tmp_path_factory.mktemp("ledger-data")
    uids = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TCSTATION_DATA_DIR", str(data_dir))
        patch.delenv("TCSTATION_TILED_URI", raising=False)
        session = _open(ioc)
        try:
            RE, station = session.RE, session.station
            (uids["mount_pure"],) = RE(mount_sample(station, "pure_mg", sample_id="ball-1",
                                                    preparation="as bought"))
            (uids["first"],) = RE(bp.count([station.environment]))
            (uids["mount_oxidised"],) = RE(mount_sample(station, "mg_mgo",
                                                        preparation="oxidised in air, 2 h"))
            (uids["second"],) = RE(bp.count([station.environment]))
            session.storage.writer.wait_until_idle(60.0)
            client = session.storage.runs
            starts = {name: run_by_uid(client, uids[name]).metadata["start"]
                      for name in ("mount_oxidised", "second")}
        finally:
            session.close()
        session = _open(ioc)
        try:
            RE, station = session.RE, session.station
            (uids["exposure"],) = RE(expose_to_room_temperature(station, EXPOSURE_MINUTES))
            (uids["third"],) = RE(bp.count([station.environment]))
        finally:
            session.close()
    return SampleLedger(ledger_path(data_dir)), uids, starts


def test_the_runs_in_tiled_name_the_sample(ledger_runs):
    _, _, starts = ledger_runs
    start = starts["mount_oxidised"]
    sample = start["sample"]
    assert start["plan_name"] == "mount_sample"
    assert sample["name"] == "mg_mgo" and sample["preparation"] == "oxidised in air, 2 h"
    assert sample["sample_id"].startswith("mg_mgo-") and start["sample_id"] == sample["sample_id"]
    assert starts["second"]["sample_id"] == sample["sample_id"]


def test_two_mounts_an_exposure_and_three_runs_give_the_history_in_order(ledger_runs):
    ledger, uids, starts = ledger_runs
    start = starts["mount_oxidised"]
    pure, oxidised = ledger.samples()
    assert (pure["sample_id"], pure["kind"], pure["runs"]) == ("ball-1", "pure_mg", 1)
    assert (oxidised["sample_id"], oxidised["kind"]) == (start["sample"]["sample_id"], "mg_mgo")
    assert (oxidised["runs"], oxidised["exposures"], oxidised["current"]) == (2, 1, True)
    assert [(item["entry"], item.get("run_uid")) for item in ledger.history("ball-1")] == [
        ("mount", uids["mount_pure"]), ("run", uids["first"])]
    history = ledger.history(oxidised["sample_id"])
    assert [(item["entry"], item.get("run_uid")) for item in history] == [
        ("mount", uids["mount_oxidised"]), ("run", uids["second"]), ("exposure", uids["exposure"]),
        ("run", uids["third"])]
    assert history[0]["preparation"] == "oxidised in air, 2 h"
    assert [item["exit_status"] for item in history[1:]] == ["success"] * 3


def test_the_exposure_is_recorded_with_its_warm_time(ledger_runs):
    ledger, _, starts = ledger_runs
    start = starts["mount_oxidised"]
    _, _, exposure, third = ledger.history(start["sample"]["sample_id"])
    assert exposure["warm_seconds_before"] == pytest.approx(0.0, abs=1.0)
    # Less the seconds the sample takes to warm past 77 K, plus its cool-back.
    assert (EXPOSURE_MINUTES * 60 - 15 <= exposure["warm_seconds_after"]
            <= EXPOSURE_MINUTES * 60 + 120)
    assert third["warm_seconds_before"] >= exposure["warm_seconds_after"]


def test_only_the_run_after_too_long_warm_is_flagged(ledger_runs):
    ledger, _, starts = ledger_runs
    start = starts["mount_oxidised"]
    history = ledger.history(start["sample"]["sample_id"])
    assert history[1]["flag"] is None
    assert "longer than the 12 min it tolerates" in history[3]["flag"]
    assert ledger.history("ball-1")[1]["flag"] is None
    assert [sample["flagged"] for sample in ledger.samples()] == [0, 1]


def test_an_unknown_sample_is_refused(ledger_runs):
    ledger, _, _ = ledger_runs
    with pytest.raises(LedgerError, match="no sample 'ball-9'.*known: ball-1, mg_mgo-"):
        ledger.history("ball-9")
