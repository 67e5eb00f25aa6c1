"""The sample ledger's logic: entries from documents, samples, histories, flags, the file."""

from __future__ import annotations

import json
import multiprocessing
import uuid

import pytest

from tcstation.ledger import (
    LedgerCallback,
    LedgerError,
    SampleLedger,
    check_preparation,
    check_sample_id,
    format_history,
    format_samples,
    ledger_path,
    make_sample_id,
    samples_main,
    warm_flag,
)
from tcstation.report import warm_time_flag

MINUTE = 60.0


class FakeEnvironment:
    """What ``read_environment`` returns; the test sets the warm time as the IOC would."""

    def __init__(self, kind="mg_mgo"):
        self.kind, self.warm_seconds = kind, 0.0

    def __call__(self):
        return {"kind": self.kind, "insert": "transport", "contacts": "surface",
                "warm_seconds": self.warm_seconds, "max_safe_temperature": 77.0}


def _run(callback, plan_name, sample=None, now=1.0e9, exit_status="success", **start):
    uid = str(uuid.uuid4())
    doc = {"uid": uid, "time": now, "plan_name": plan_name, "scan_id": 1, **start}
    if sample is not None:
        doc["sample"] = sample
    callback("start", doc)
    callback("stop", {"uid": str(uuid.uuid4()), "run_start": uid, "time": now + 1,
                      "exit_status": exit_status})
    return uid


def _mount(callback, kind, sample_id, now, preparation=""):
    return _run(callback, "mount_sample", now=now, sample={
        "sample_id": sample_id, "name": kind, "preparation": preparation, "mounted": now,
        "insert": "transport", "contacts": "surface", "max_safe_temperature": 77.0,
        "warm_seconds_before": 0.0})


def _ramp_sample(kind, warm):
    return {"name": kind, "insert": "transport", "contacts": "surface",
            "max_safe_temperature": 77.0, "warm_seconds_before": warm}


@pytest.fixture
def ledger(tmp_path):
    return SampleLedger(ledger_path(tmp_path))


def _protocol(ledger):
    """Two mounts, an exposure and three runs, the third after too long warm."""
    environment = FakeEnvironment()
    callback = LedgerCallback(ledger, environment)
    _mount(callback, "pure_mg", "ball-1", now=1000.0)
    first = _run(callback, "susceptibility_ramp", _ramp_sample("pure_mg", 0.0), now=1100.0)
    _mount(callback, "mg_mgo", "ball-2", now=2000.0, preparation="oxidised 2 h in air")
    environment.warm_seconds = 0.0
    second = _run(callback, "transport_ramp", _ramp_sample("mg_mgo", 0.0), now=2100.0)
    environment.warm_seconds = 20 * MINUTE
    exposure = _run(callback, "expose_to_room_temperature", _ramp_sample("mg_mgo", 0.0),
                    now=2200.0, plan_args={"minutes": 20.0})
    third = _run(callback, "transport_ramp", _ramp_sample("mg_mgo", 20 * MINUTE), now=3600.0)
    callback.record_tc_table(third, [{"bias": 0.0, "onset": float("nan")}])
    callback.record_tc_table(second, [{"bias": 0.0, "onset": 53.4}])
    return first, second, exposure, third


def test_mounts_exposure_and_runs_give_each_sample_its_history_in_order(ledger):
    first, second, exposure, third = _protocol(ledger)
    history = ledger.history("ball-2")
    assert [item["entry"] for item in history] == ["mount", "run", "exposure", "run"]
    assert [item.get("run_uid") for item in history[1:]] == [second, exposure, third]
    assert history[0]["preparation"] == "oxidised 2 h in air"
    assert history[0]["mounted_iso"] == "1970-01-01T00:33:20+00:00"
    assert history[2]["warm_seconds_before"] == 0.0
    assert history[2]["warm_seconds_after"] == 20 * MINUTE
    assert history[2]["minutes"] == 20.0
    assert history[1]["tc_table"] == [{"bias": 0.0, "onset": 53.4}]
    assert history[3]["tc_table"] == [{"bias": 0.0, "onset": None}]
    assert [item["run_uid"] for item in ledger.history("ball-1")[1:]] == [first]


def test_the_run_after_too_long_warm_is_flagged_and_no_other(ledger):
    _protocol(ledger)
    flags = [item["flag"] for item in ledger.history("ball-2")[1:]]
    assert flags[0] is None and flags[1] is None
    assert "warm 20.0 min" in flags[2] and "12 min it tolerates" in flags[2]
    assert ledger.history("ball-1")[1]["flag"] is None


def test_samples_summarise_kind_mount_warm_time_and_runs(ledger):
    _protocol(ledger)
    pure, oxidised = ledger.samples()
    assert (pure["sample_id"], pure["kind"], pure["runs"], pure["current"]) == (
        "ball-1", "pure_mg", 1, False)
    assert pure["warm_tolerance"] is None
    assert (oxidised["runs"], oxidised["exposures"], oxidised["flagged"]) == (2, 1, 1)
    assert oxidised["warm_seconds"] == 20 * MINUTE and oxidised["current"]
    assert oxidised["warm_tolerance"] == 12 * MINUTE
    json.dumps(ledger.samples(), allow_nan=False)
    json.dumps(ledger.history("ball-2"), allow_nan=False)
    assert "ball-2 *" in format_samples(ledger.samples())
    assert "FLAG:" in format_history(ledger.history("ball-2"))


def test_the_ledger_is_read_back_the_same_by_a_new_reader(ledger):
    _protocol(ledger)
    again = SampleLedger(ledger.path)
    assert again.history("ball-2") == ledger.history("ball-2")
    assert again.current_mount()["sample_id"] == "ball-2"


def test_an_unknown_sample_id_is_refused_naming_the_known(ledger):
    with pytest.raises(LedgerError, match="no sample 'nope' .* no samples yet"):
        ledger.history("nope")
    _protocol(ledger)
    with pytest.raises(LedgerError, match="no sample 'nope' .*known: ball-1, ball-2"):
        ledger.history("nope")


def test_a_sample_mounted_without_mount_sample_gets_a_made_up_mount(ledger):
    environment = FakeEnvironment()
    callback = LedgerCallback(ledger, environment)
    _mount(callback, "pure_mg", "ball-1", now=1000.0)
    uid = _run(callback, "count", now=1.7e9)
    (mount,) = [item for item in ledger.samples() if item["current"]]
    assert mount["kind"] == "mg_mgo" and mount["source"] == "seen"
    assert mount["sample_id"] == make_sample_id("mg_mgo", 1.7e9) == "mg_mgo-20231114T221320Z"
    assert ledger.history(mount["sample_id"])[1]["run_uid"] == uid


def test_a_warm_time_that_drops_means_a_fresh_sample_of_the_same_kind(ledger):
    environment = FakeEnvironment()
    callback = LedgerCallback(ledger, environment)
    _mount(callback, "mg_mgo", "ball-2", now=1000.0)
    environment.warm_seconds = 30 * MINUTE
    _run(callback, "transport_ramp", _ramp_sample("mg_mgo", 30 * MINUTE), now=1100.0)
    environment.warm_seconds = 0.0
    _run(callback, "transport_ramp", _ramp_sample("mg_mgo", 0.0), now=1200.0)
    assert [sample["runs"] for sample in ledger.samples()] == [1, 1]


def test_a_torn_last_line_is_skipped(ledger):
    _protocol(ledger)
    with open(ledger.path, "a") as handle:
        handle.write('{"entry": "run", "sample_')
    assert len(ledger.history("ball-2")) == 4


def _append_many(path, writer, count):
    ledger = SampleLedger(path)
    for index in range(count):
        ledger.append({"entry": "note", "writer": writer, "index": index, "pad": "x" * 5000})


def test_two_processes_appending_at_once_lose_and_tear_nothing(ledger):
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(ledger.path, writer, 100))
               for writer in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
    entries = ledger.entries()
    assert sorted((entry["writer"], entry["index"]) for entry in entries) == [
        (writer, index) for writer in range(2) for index in range(100)]


@pytest.mark.parametrize("bad", ["", " ", "-x", "a b", "x" * 65, 7, None, "a/b"])
def test_bad_sample_ids_are_refused_saying_what_an_id_holds(bad):
    with pytest.raises(LedgerError, match="1 to 64 letters, digits"):
        check_sample_id(bad)


def test_good_sample_ids_and_preparations_pass():
    assert check_sample_id(" MgO-ball_07.a ") == "MgO-ball_07.a"
    assert check_preparation(" oxidised ") == "oxidised"
    with pytest.raises(LedgerError, match="at most 500 characters"):
        check_preparation("x" * 501)


def test_only_a_degrading_kind_warm_beyond_its_tolerance_is_flagged():
    assert warm_flag("mg_mgo", 12 * MINUTE) is None
    assert warm_flag("mg_mgo", 12 * MINUTE + 1) is not None
    assert warm_flag("pb", 10 * 3600.0) is None
    assert warm_flag("mg_mgo", None) is None
    assert warm_time_flag({"sample": _ramp_sample("mg_mgo", 30 * MINUTE)}) is not None
    assert warm_time_flag({"sample": "a name"}) is None


def test_samples_command_lists_shows_history_and_refuses_unknown_ids(ledger, tmp_path,
                                                                      monkeypatch, capsys):
    monkeypatch.setenv("TCSTATION_DATA_DIR", str(tmp_path))
    _protocol(ledger)
    assert samples_main([]) == 0
    assert "ball-1" in capsys.readouterr().out
    assert samples_main(["ball-2", "--json"]) == 0
    assert [item["entry"] for item in json.loads(capsys.readouterr().out)] == [
        "mount", "run", "exposure", "run"]
    assert samples_main(["--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert samples_main(["nope"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no sample 'nope'" in error


@pytest.mark.parametrize(("arguments", "message"), [
    ({"sample_id": "a b"}, r"sample id 'a b' is not valid"),
    ({"sample_id": "a", "md": {"sample_id": "b"}}, r"sample_id = 'a' but md\['sample_id'\] = 'b'"),
    ({"md": {"sample_id": ""}}, r"md\['sample_id'\]: sample id '' is not valid"),
    ({"preparation": "x" * 501}, r"at most 500 characters"),
    ({"kind": "tin"}, r"kind = 'tin' is not one of"),
    ({"md": {"sample": "x"}}, r"md\['sample'\] = 'x': mount_sample writes the sample's"),
])
def test_mount_sample_refuses_a_bad_id_before_anything_moves(arguments, message):
    from tcstation.plans.maintenance import mount_sample
    from tcstation.plans.validation import PlanArgumentError

    arguments = {"kind": "mg_mgo", **arguments}
    with pytest.raises(PlanArgumentError, match=message):
        next(mount_sample(None, **arguments))


def test_the_report_flags_the_table_of_a_run_on_a_sample_warm_too_long():
    import numpy as np

    from tcstation.analysis.live import run_transitions
    from tcstation.report import RunData, tc_table_text

    temperature = np.linspace(44.0, 62.0, 120)
    columns = {"temperature": temperature, "bias": np.zeros_like(temperature),
               "signal": 3e-3 + 2e-3 / (1 + np.exp(-(temperature - 54.0) / 0.5))}
    runs = [RunData(start={"uid": uid, "plan_name": "transport_ramp", "scan_id": index,
                           "measurement": "transport", "sample": _ramp_sample("mg_mgo", warm)},
                    columns=columns, units={})
            for index, (uid, warm) in enumerate((("fresh", 0.0), ("warm", 30 * MINUTE)))]
    text = tc_table_text(runs, [run_transitions("transport", columns)] * 2)
    lines = text.splitlines()
    assert [line.startswith("FLAG:") for line in lines] == [False] * 4 + [True]
    assert "transport_ramp warm" in lines[2] and "warm 30.0 min" in lines[4]


def test_every_start_document_names_the_sample_it_was_taken_on(ledger):
    from bluesky import RunEngine
    from bluesky import plan_stubs as bps
    from bluesky import preprocessors as bpp

    environment = FakeEnvironment()
    callback = LedgerCallback(ledger, environment)
    engine = RunEngine({}, call_returns_result=False)
    starts = []
    engine.subscribe(callback)
    engine.subscribe(lambda name, doc: starts.append(doc) if name == "start" else None)
    engine.preprocessors.append(callback.add_sample_id)
    _mount(callback, "mg_mgo", "ball-2", now=1000.0)
    engine(bpp.run_wrapper(bps.null(), md={"plan_name": "count"}))
    engine(bpp.run_wrapper(bps.null(), md={"plan_name": "count", "sample_id": "ball-7"}))
    engine(bpp.run_wrapper(bps.null(), md={"plan_name": "count"}))
    assert [doc["sample_id"] for doc in starts] == ["ball-2", "ball-7", "ball-7"]
    assert [(sample["sample_id"], sample["source"], sample["runs"])
            for sample in ledger.samples()] == [("ball-2", "mount_sample", 1),
                                                ("ball-7", "seen", 2)]


def test_every_plan_refuses_a_bad_sample_id_in_md_before_anything_moves():
    from tcstation.plans import validation

    with pytest.raises(validation.PlanArgumentError, match=r"md\['sample_id'\]: sample id"):
        validation.metadata({"sample_id": "ball 7"})
    assert validation.metadata({"sample_id": "ball-7"}) == {"sample_id": "ball-7"}
