"""RE.md in the data directory and scan ids that go on counting: restarts, two processes at once.

Real RunEngines counting ophyd.sim's ``det`` (no IOC); the second process is a real one
(multiprocessing, spawned), as a session and the queueserver's worker are.
"""

from __future__ import annotations

import multiprocessing

import bluesky.plans as bp
import pytest
from bluesky import RunEngine
from bluesky.utils import PersistentDict
from ophyd.sim import det

from tcstation.storage.run_metadata import (
    ScanIdCounter,
    SessionMetadata,
    persistent_run_metadata,
)

RUNS_PER_PROCESS = 8


def _session(data_dir) -> RunEngine:
    md, counter = persistent_run_metadata(data_dir)
    return RunEngine(md, scan_id_source=counter)


def _scan_ids_of_runs(data_dir, runs: int, ready, go) -> list[int]:
    """In a process of its own: a session's RunEngine on ``data_dir`` runs ``runs`` counts."""
    run_engine = _session(data_dir)
    scan_ids: list[int] = []
    run_engine.subscribe(lambda name, doc: scan_ids.append(doc["scan_id"])
                         if name == "start" else None)
    ready.set()
    go.wait(60)
    for _ in range(runs):
        run_engine(bp.count([det]))
    return scan_ids


def test_a_restarted_session_counts_on_and_keeps_its_metadata(tmp_path):
    first = _session(tmp_path)
    assert isinstance(first.md, SessionMetadata) and isinstance(first.md, PersistentDict)
    first.md["operator"] = "kim"
    ids = [first(bp.count([det]))[0] for _ in range(2)]
    assert first.md["scan_id"] == 2 and len(ids) == 2
    first.md.close()  # what Session.close does; the end of the process does it too

    restarted = _session(tmp_path)
    assert restarted.md["operator"] == "kim"
    starts = []
    restarted.subscribe(lambda name, doc: starts.append(doc) if name == "start" else None)
    restarted(bp.count([det]))
    assert starts[0]["scan_id"] == 3 > 2
    assert starts[0]["operator"] == "kim"


def test_a_second_session_gets_a_copy_of_the_metadata_and_its_own_scan_ids(tmp_path):
    owner = _session(tmp_path)
    owner.md["sample"] = {"name": "mg_mgo"}
    owner(bp.count([det]))
    second = _session(tmp_path)
    assert type(second.md) is dict
    assert second.md["sample"] == {"name": "mg_mgo"} and second.md["scan_id"] == 1
    second.md["sample"] = {"name": "pure_mg"}
    scan_ids = []
    for run_engine in (second, owner):
        run_engine.subscribe(lambda name, doc: scan_ids.append(doc["scan_id"])
                             if name == "start" else None)
    second(bp.count([det]))
    owner(bp.count([det]))
    second(bp.count([det]))
    assert scan_ids == [2, 3, 4]
    owner.md.close()
    assert _session(tmp_path).md["sample"] == {"name": "mg_mgo"}


def test_a_scan_id_set_by_hand_raises_the_count(tmp_path):
    run_engine = _session(tmp_path)
    run_engine.md["scan_id"] = 100
    starts = []
    run_engine.subscribe(lambda name, doc: starts.append(doc) if name == "start" else None)
    run_engine(bp.count([det]))
    assert starts[0]["scan_id"] == 101
    assert ScanIdCounter(tmp_path / "scan_id").last() == 101


def test_a_stale_copy_of_the_metadata_does_not_hand_out_an_id_twice(tmp_path):
    counter = ScanIdCounter(tmp_path / "scan_id")
    assert counter({}) == 1 and counter({}) == 2
    # Another process's RE.md still says 1 (its copy is in memory): the file wins.
    assert counter({"scan_id": 1}) == 3
    assert counter.last() == 3


def test_two_processes_on_one_data_directory_never_share_a_scan_id(tmp_path):
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    ready = [manager.Event() for _ in range(2)]
    go = manager.Event()
    with context.Pool(2) as pool:
        results = [pool.apply_async(_scan_ids_of_runs, (tmp_path, RUNS_PER_PROCESS, event, go))
                   for event in ready]
        for event in ready:
            assert event.wait(120), "a process did not start its RunEngine"
        go.set()
        scan_ids = [result.get(120) for result in results]
    manager.shutdown()
    assert all(len(ids) == RUNS_PER_PROCESS for ids in scan_ids)
    assert all(ids == sorted(ids) for ids in scan_ids)
    every = scan_ids[0] + scan_ids[1]
    assert sorted(every) == list(range(1, 2 * RUNS_PER_PROCESS + 1))
    later = _session(tmp_path)
    starts = []
    later.subscribe(lambda name, doc: starts.append(doc) if name == "start" else None)
    later(bp.count([det]))
    assert starts[0]["scan_id"] == 2 * RUNS_PER_PROCESS + 1


def test_a_counter_file_that_holds_no_number_is_named(tmp_path):
    path = tmp_path / "scan_id"
    path.write_text("seven\n")
    with pytest.raises(ValueError, match=r"scan_id holds 'seven', not a scan id"):
        ScanIdCounter(path)({})
