"""The page's sample ledger: its routes on a ledger file written as a session writes it, and
the warm-time limit the station panel shows against."""

from __future__ import annotations

import uuid

import pytest
from starlette.testclient import TestClient

from tcstation.ledger import LedgerCallback, SampleLedger, ledger_path
from tcstation.web.app import Sources, create_app
from tcstation.web.cli import web_main
from tcstation.web.sources import LedgerView, load_ledger, warm_limit_for, warm_severity

LOOPBACK = ("127.0.0.1", 50000)
MINUTE = 60.0


def _environment(warm):
    return lambda: {"kind": "mg_mgo", "insert": "transport", "contacts": "surface",
                    "warm_seconds": warm[0], "max_safe_temperature": 77.0}


def _run(callback, plan_name, now, sample=None, **start):
    uid = str(uuid.uuid4())
    doc = {"uid": uid, "time": now, "plan_name": plan_name, "scan_id": int(now) % 1000,
           **start}
    if sample is not None:
        doc["sample"] = sample
    callback("start", doc)
    callback("stop", {"uid": str(uuid.uuid4()), "run_start": uid, "time": now + 1,
                      "exit_status": "success"})
    return uid


def _sample(kind, warm, sample_id=None):
    sample = {"name": kind, "insert": "transport", "contacts": "surface",
              "max_safe_temperature": 77.0, "warm_seconds_before": warm, "mounted": 0.0}
    return sample | ({"sample_id": sample_id} if sample_id else {})


def write_ledger(data_dir):
    """A pure Mg ball with a run, then an Mg/MgO ball: a run, an exposure of 20 min (it
    tolerates 12) and a run after it, flagged; Tc tables for both of its runs."""
    warm = [0.0]
    callback = LedgerCallback(SampleLedger(ledger_path(data_dir)), _environment(warm))
    _run(callback, "mount_sample", 1000.0, _sample("pure_mg", 0.0, "ball-1"))
    _run(callback, "susceptibility_ramp", 1100.0, _sample("pure_mg", 0.0))
    _run(callback, "mount_sample", 2000.0, _sample("mg_mgo", 0.0, "ball-2"))
    second = _run(callback, "transport_ramp", 2100.0, _sample("mg_mgo", 0.0))
    warm[0] = 20 * MINUTE
    exposure = _run(callback, "expose_to_room_temperature", 2200.0, _sample("mg_mgo", 0.0),
                    plan_args={"minutes": 20.0})
    third = _run(callback, "transport_ramp", 3600.0, _sample("mg_mgo", 20 * MINUTE))
    callback.record_tc_table(second, [{"bias": 0.0, "onset": 53.4}])
    callback.record_tc_table(third, [{"bias": 0.0, "onset": float("nan")}])
    return second, exposure, third


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def _client(ledger):
    return TestClient(create_app(Sources(ledger=ledger), broadcast=False), client=LOOPBACK)


def test_the_samples_route_lists_the_ledger_with_flags_and_warm_state(data_dir):
    write_ledger(data_dir)
    with _client(load_ledger(data_dir)) as client:
        listed = client.get("/api/samples").json()
        assert client.get("/api/state").json()["ledger_available"] is True
    assert listed["available"] is True and listed["error"] == ""
    assert listed["path"] == str(ledger_path(data_dir))
    pure, oxidised = listed["samples"]
    assert (pure["sample_id"], pure["kind"], pure["runs"], pure["flagged"]) == (
        "ball-1", "pure_mg", 1, 0)
    assert pure["warm_tolerance"] is None and pure["warm_severity"] == "NO_ALARM"
    assert (oxidised["sample_id"], oxidised["current"]) == ("ball-2", True)
    assert (oxidised["runs"], oxidised["exposures"], oxidised["flagged"]) == (2, 1, 1)
    assert oxidised["warm_tolerance"] == 12 * MINUTE
    assert oxidised["warm_seconds"] == 20 * MINUTE and oxidised["warm_severity"] == "MAJOR"


def test_a_sample_history_names_the_flagged_run_and_its_reason(data_dir):
    second, exposure, third = write_ledger(data_dir)
    with _client(load_ledger(data_dir)) as client:
        answer = client.get("/api/samples/ball-2")
    assert answer.status_code == 200
    body = answer.json()
    assert body["sample_id"] == "ball-2"
    history = body["history"]
    assert [item["entry"] for item in history] == ["mount", "run", "exposure", "run"]
    assert [item.get("run_uid") for item in history[1:]] == [second, exposure, third]
    assert history[0]["preparation"] == "" and history[0]["warm_tolerance"] == 12 * MINUTE
    assert history[1]["flag"] is None and history[1]["tc_table"] == [
        {"bias": 0.0, "onset": 53.4}]
    assert history[2]["warm_seconds_after"] == 20 * MINUTE
    assert "warm 20.0 min" in history[3]["flag"] and "12 min it tolerates" in history[3]["flag"]
    assert history[3]["tc_table"] == [{"bias": 0.0, "onset": None}]


def test_an_unknown_sample_is_404_with_the_ledger_message(data_dir):
    write_ledger(data_dir)
    with _client(load_ledger(data_dir)) as client:
        answer = client.get("/api/samples/ball-9")
    assert answer.status_code == 404
    assert "no sample 'ball-9'" in answer.json()["error"]
    assert "known: ball-1, ball-2" in answer.json()["error"]


def test_reading_the_ledger_from_beyond_loopback_needs_the_key(data_dir):
    write_ledger(data_dir)
    app = create_app(Sources(ledger=load_ledger(data_dir)), api_key="k3y", broadcast=False)
    with TestClient(app, client=("192.168.1.7", 50000)) as client:
        assert client.get("/api/samples").status_code == 401
        assert client.get("/api/samples/ball-2").status_code == 401
        assert client.get("/api/samples", headers={"X-API-Key": "k3y"}).status_code == 200


def test_an_empty_ledger_and_no_ledger_say_so(data_dir):
    with _client(load_ledger(data_dir)) as client:
        assert client.get("/api/samples").json()["samples"] == []
        answer = client.get("/api/samples/ball-1")
        assert answer.status_code == 404 and "no samples yet" in answer.json()["error"]
    with _client(None) as client:
        listed = client.get("/api/samples").json()
        assert listed["available"] is False and "--no-ledger" in listed["error"]
        assert client.get("/api/samples/ball-1").status_code == 404
        assert client.get("/api/state").json()["ledger_available"] is False


def test_the_ledger_view_reads_again_when_the_file_changes(data_dir, monkeypatch):
    view = load_ledger(data_dir)
    assert view.mounted() is None
    write_ledger(data_dir)
    reads = []
    original = view.ledger.samples
    monkeypatch.setattr(view.ledger, "samples", lambda: reads.append(1) or original())
    assert view.mounted()["sample_id"] == "ball-2"
    assert [sample["sample_id"] for sample in view.samples()] == ["ball-1", "ball-2"]
    assert len(reads) == 1
    callback = LedgerCallback(view.ledger, _environment([0.0]))
    _run(callback, "mount_sample", 5000.0, _sample("pure_mg", 0.0, "ball-3"))
    assert view.mounted()["sample_id"] == "ball-3" and len(reads) == 2


def test_the_environment_names_the_ledger_as_the_session_finds_it(data_dir, monkeypatch):
    monkeypatch.setenv("TCSTATION_DATA_DIR", str(data_dir))
    view = load_ledger()
    assert isinstance(view, LedgerView) and view.path == ledger_path(data_dir)


def test_warm_limit_is_the_mounted_sample_tolerance_else_the_option():
    mounted = {"sample_id": "ball-2", "kind": "mg_mgo", "warm_tolerance": 12 * MINUTE}
    limit = warm_limit_for(mounted, "mg_mgo", 30 * MINUTE)
    assert (limit["seconds"], limit["source"], limit["sample_id"]) == (
        12 * MINUTE, "ledger", "ball-2")
    assert warm_limit_for(mounted, None, 30 * MINUTE)["source"] == "ledger"
    pure = {"sample_id": "ball-1", "kind": "pure_mg", "warm_tolerance": None}
    limit = warm_limit_for(pure, "pure_mg", 30 * MINUTE)
    assert (limit["seconds"], limit["source"]) == (30 * MINUTE, "option")
    assert "ball-1 (pure_mg) has no warm-time tolerance" in limit["note"]
    limit = warm_limit_for(None, "mg_mgo", None)
    assert (limit["seconds"], limit["source"]) == (None, "option")
    assert "no mount" in limit["note"]
    # Another sample on the station than the ledger's last mount: its own kind decides.
    limit = warm_limit_for(pure, "mg_mgo", 30 * MINUTE)
    assert (limit["seconds"], limit["source"], limit["kind"]) == (12 * MINUTE, "kind", "mg_mgo")
    assert "not in the ledger until its next run" in limit["note"]
    assert warm_limit_for(mounted, "pb", 30 * MINUTE)["seconds"] == 30 * MINUTE


def test_warm_severity_is_minor_past_80_percent_and_major_past_the_limit():
    assert warm_severity(100.0, None) == "NO_ALARM"
    assert warm_severity(None, 720.0) == "NO_ALARM"
    assert warm_severity(500.0, 720.0) == "NO_ALARM"
    assert warm_severity(600.0, 720.0) == "MINOR"
    assert warm_severity(721.0, 720.0) == "MAJOR"


def test_the_command_refuses_a_data_dir_it_cannot_read(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TCSTATION_WEB_API_KEY", raising=False)
    assert web_main(["--data-dir", str(tmp_path / "missing")]) == 2
    assert f"--data-dir {tmp_path / 'missing'} is not a directory" in capsys.readouterr().err
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("")
    monkeypatch.setenv("TCSTATION_DATA_DIR", str(not_a_directory))
    assert web_main([]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tcstation web: the sample ledger:")
    assert f"{not_a_directory} exists but is not a directory" in error
