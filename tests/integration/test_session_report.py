"""End to end: session (station, RunEngine, Tiled), a ramp, live Tc tables, report, export."""

from __future__ import annotations

import math
import re

import h5py
import pytest
from ramp_sampling import ONSET_SPACING, assert_curve_sampling, assert_detection_margin

from tcstation.analysis.export import read_csv
from tcstation.ioc_sim.sample import SampleModel
from tcstation.plans.ramps import transport_ramp
from tcstation.report import export_main, read_run, report
from tcstation.session import open_session
from tcstation.storage import run_by_uid
from tcstation.storage.layout import transitions_key
from tcstation.storage.run_metadata import ScanIdCounter

pytestmark = pytest.mark.integration
ONSET_LINE = re.compile(r"\s*(?P<bias>[\d.]+) mA: onset (?P<onset>[\d.]+) \+- (?P<error>[\d.]+) K")

BIASES = (0.0, 0.2, 0.3, 0.4)
START, STOP, RATE = 44.0, 62.0, 0.5
"""K, K, K/min: at 120x each bias curve got a point every 0.084 K at 0.4 K/min with one
core kept busy (load 6 on 2 cores, 2026-12-04), a third of what the transition finder
needs (ONSET_SPACING); 0.5 K/min leaves it under half. The
span holds the 1.5 K the finder fits the transformed level over below 45 K and its 6 K
normal-state window above the 54.5 K top of the zero-bias transition."""


@pytest.fixture(scope="module")
def session(station_factory, tmp_path_factory):
    ioc = station_factory(speedup=120.0, noise=True)
    data_dir = tmp_path_factory.mktemp("tcstation-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TCSTATION_DATA_DIR", str(data_dir))
        patch.delenv("TCSTATION_TILED_URI", raising=False)
        session = open_session(ioc.prefix, progress=False, show_tables=False)
        yield session
        session.close()


@pytest.fixture(scope="module")
def ramp_uid(session):
    (uid,) = session.RE(transport_ramp(session.station, start=START, stop=STOP, rate=RATE,
                                       biases=BIASES))
    session.storage.writer.wait_until_idle(60.0)
    for thread in session.pending_stores:
        thread.join(30.0)
    return uid


def test_live_tc_table_is_stored_in_tiled_beside_the_raw_run(session, ramp_uid):
    start, live_rows = session.tc_tables[ramp_uid]
    assert [row["bias"] for row in live_rows] == pytest.approx(BIASES, abs=1e-3)
    stored = session.storage.derived[transitions_key(ramp_uid)]
    assert stored.metadata["raw_run"] == ramp_uid
    table = stored.read()
    assert list(table["bias"]) == pytest.approx(BIASES, abs=1e-3)
    assert list(table["onset"]) == pytest.approx([row["onset"] for row in live_rows],
                                                 nan_ok=True)
    for name in ("onset_error", "midpoint_error", "width_error"):
        assert list(table[name]) == pytest.approx([row[name] for row in live_rows],
                                                  nan_ok=True)
        assert stored.metadata["units"][name] == "K"
    assert stored.metadata["units"]["bias"] == "A"


def test_onsets_from_tiled_agree_with_the_simulator_truth(session, ramp_uid, tmp_path):
    text, figures = report(session.storage.runs, ramp_uid, tmp_path)
    run = read_run(run_by_uid(session.storage.runs, ramp_uid))
    truth = SampleModel("mg_mgo")
    expected = {bias: truth.true_onsets(bias_current=bias)["dudi_onset"] for bias in BIASES}
    assert_curve_sampling(run.columns["temperature"], run.columns["bias"], BIASES,
                          spacing_needed=ONSET_SPACING, onsets=expected)
    assert_detection_margin(run.columns["temperature"], run.columns["bias"],
                            run.columns["signal"], BIASES)
    found, errors = {}, {}
    for line in text.splitlines()[1:]:
        match = ONSET_LINE.match(line)
        assert match, line
        bias = float(match["bias"]) / 1e3
        found[bias], errors[bias] = float(match["onset"]), float(match["error"])
    assert all(0 < error < 0.2 for error in errors.values()), errors
    for bias in BIASES:
        assert found[bias] == pytest.approx(expected[bias], abs=0.2), f"{bias} A"
    onsets = [found[bias] for bias in BIASES]
    assert onsets == sorted(onsets, reverse=True), "onsets fall as the bias rises"
    assert [path.name for path in figures] == ["fig2_dudi.png"]
    assert figures[0].stat().st_size > 20_000


def test_export_csv_and_nexus_round_trip(session, ramp_uid, tmp_path, monkeypatch):
    monkeypatch.setenv("TCSTATION_DATA_DIR", str(session.storage.config.data_dir))
    monkeypatch.setenv("TCSTATION_TILED_URI", session.storage.uri)
    monkeypatch.setenv("TCSTATION_TILED_API_KEY", session.storage._api_key)
    run = read_run(run_by_uid(session.storage.runs, ramp_uid))
    assert export_main([ramp_uid[:8], "--format", "csv", "--output",
                        str(tmp_path / "r.csv")]) == 0
    table = read_csv(tmp_path / "r.csv")
    assert table.units["dudi"] == "ohm"
    assert table.columns["dudi"] == pytest.approx(run.columns["signal"])
    assert export_main(["latest", "--format", "hdf5", "--output", str(tmp_path / "r.h5")]) == 0
    with h5py.File(tmp_path / "r.h5") as nexus:
        entry = nexus["entry"]
        assert entry["entry_identifier"].asstr()[()] == ramp_uid
        for bias in BIASES:
            data = entry[f"dudi_{1e3 * bias:.0f}mA"]
            assert data.attrs["NX_class"] == "NXdata"
            assert data.attrs["signal"] == "dudi"
            assert data["dudi"].attrs["units"] == "ohm"
            rows = data["event_index"][()]
            assert data["sample_temperature"][()] == pytest.approx(
                run.columns["temperature"][rows])
            assert math.isclose(data["bias"][0], bias, abs_tol=1e-3)


def test_the_sample_ledger_holds_the_ramp_with_its_tc_table(session, ramp_uid):
    ledger = session.ledger
    mount = ledger.current_mount()
    start, live_rows = session.tc_tables[ramp_uid]
    assert mount["kind"] == "mg_mgo" and mount["source"] == "seen", "no mount_sample here"
    assert start["sample_id"] == mount["sample_id"]
    (run,) = [item for item in ledger.history(mount["sample_id"])
              if item.get("run_uid") == ramp_uid]
    assert run["plan_name"] == "transport_ramp" and run["exit_status"] == "success"
    assert run["flag"] is None
    assert [row["bias"] for row in run["tc_table"]] == pytest.approx(BIASES, abs=1e-3)
    assert [row["onset"] for row in run["tc_table"]] == pytest.approx(
        [row["onset"] for row in live_rows])


def test_the_session_counts_scan_ids_in_its_data_directory(session, ramp_uid):
    scan_id = session.storage.runs[ramp_uid].metadata["start"]["scan_id"]
    counter = session.RE.scan_id_source
    assert isinstance(counter, ScanIdCounter)
    assert counter.path.parent == session.storage.config.data_dir
    assert counter.last() == scan_id == session.RE.md["scan_id"]
