"""Unit tests of the spool's bookkeeping and of the writer with no Tiled at all (no server)."""

from __future__ import annotations

import json
import os
import time

import bluesky.plans as bp
import numpy as np
import pytest
from bluesky import RunEngine
from event_model import NumpyEncoder
from ophyd.sim import det, motor

from tcstation.storage.replay import ReplayOutcome, replay_pending, replay_run, synthesised_stop
from tcstation.storage.spool import DocumentSpool, SpoolError, decode_document, encode_document
from tcstation.storage.tiled import RunContents
from tcstation.storage.writer import LiveTiledWriter, RunOutcome


def documents_of_a_run(uid: str, points: int, descriptor: str = "") -> list[tuple[str, dict]]:
    descriptor = descriptor or f"desc-{uid}"
    documents = [("start", {"uid": uid, "time": 1.0, "plan_name": "count"}),
                 ("descriptor", {"uid": descriptor, "run_start": uid, "name": "primary",
                                 "data_keys": {}, "time": 1.0})]
    documents += [("event", {"uid": f"{uid}-e{n}", "descriptor": descriptor, "seq_num": n,
                             "time": 1.0 + n, "data": {"x": float(n)}, "timestamps": {"x": 1.0}})
                  for n in range(1, points + 1)]
    documents.append(("stop", {"uid": f"{uid}-stop", "run_start": uid, "time": 9.0,
                               "exit_status": "success"}))
    return documents


@pytest.fixture
def spool(tmp_path):
    spool = DocumentSpool(tmp_path / "spool")
    yield spool
    spool.close()


def test_documents_of_interleaved_runs_go_to_their_own_files(spool):
    first, second = documents_of_a_run("run-a", 3), documents_of_a_run("run-b", 2)
    for document in (first[:3] + second[:3] + first[3:] + second[3:]):
        spool.append(*document)
    assert sorted(spool.pending_uids()) == ["run-a", "run-b"]
    assert list(spool.iter_documents("run-a")) == first
    assert list(spool.iter_documents("run-b")) == second
    summary = spool.summary("run-a")
    assert (summary.plan_name, summary.event_count, summary.has_stop, summary.done) == (
        "count", 3, True, False)


def test_numpy_values_are_stored_as_plain_json(spool):
    start, descriptor, event, stop = documents_of_a_run("run-n", 1)
    event[1]["data"] = {"x": np.float32(0.5), "trace": np.arange(3)}
    for document in (start, descriptor, event, stop):
        spool.append(*document)
    _, stored_event = list(spool.iter_documents("run-n"))[2]
    assert stored_event["data"] == {"x": 0.5, "trace": [0, 1, 2]}
    assert decode_document(encode_document("event", stored_event)) == ("event", stored_event)


def test_fsync_at_start_and_stop_and_at_most_the_interval_apart(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    spool = DocumentSpool(tmp_path, fsync_interval=3600.0)
    for document in documents_of_a_run("run-f", 50):
        spool.append(*document)
    # start: file and directory; stop: file. None for the 50 events within the hour.
    assert len(synced) == 3
    synced.clear()
    spool = DocumentSpool(tmp_path / "eager", fsync_interval=0.0)
    for document in documents_of_a_run("run-g", 5):
        spool.append(*document)
    assert len(synced) >= 1 + 1 + 5 + 1


def test_a_document_of_no_open_run_is_refused(spool):
    with pytest.raises(SpoolError, match="not open"):
        spool.append("stop", {"uid": "s", "run_start": "nobody", "time": 0.0})
    spool.append(*documents_of_a_run("run-x", 0)[0])
    with pytest.raises(SpoolError, match="already in the spool"):
        spool.append(*documents_of_a_run("run-x", 0)[0])


def test_a_cut_last_line_is_skipped_and_cut_before_appending(spool):
    for document in documents_of_a_run("run-c", 2)[:-1]:
        spool.append(*document)
    spool.close()
    with open(spool.pending_path("run-c"), "a") as file:
        file.write('{"name":"event","doc":{"uid":"half')
    assert [name for name, _ in spool.iter_documents("run-c")] == [
        "start", "descriptor", "event", "event"]
    spool.append_to_pending("run-c", "stop", {"uid": "s", "run_start": "run-c", "time": 3.0})
    assert [name for name, _ in spool.iter_documents("run-c")][-1] == "stop"


def test_a_bad_line_in_the_middle_is_corruption(spool):
    for document in documents_of_a_run("run-d", 2):
        spool.append(*document)
    lines = spool.pending_path("run-d").read_text().splitlines()
    lines[2] = "garbage"
    spool.pending_path("run-d").write_text("\n".join(lines) + "\n")
    with pytest.raises(SpoolError, match="line 3"):
        list(spool.iter_documents("run-d"))


def test_the_run_lock_is_exclusive_until_released(spool):
    lock = spool.try_lock("run-l")
    assert lock is not None and lock.held
    assert spool.try_lock("run-l") is None
    lock.release()
    lock.release()
    with spool.try_lock("run-l") as again:
        assert again.held


def test_mark_done_moves_the_file_and_removes_the_lock(spool):
    for document in documents_of_a_run("run-m", 1):
        spool.append(*document)
    with spool.try_lock("run-m"):
        spool.mark_done("run-m")
    assert spool.pending_uids() == [] and spool.is_done("run-m")
    assert not spool.lock_path("run-m").exists()
    assert spool.summary("run-m").done


def test_only_done_runs_older_than_asked_are_pruned(spool):
    for uid in ("run-old", "run-new", "run-pending"):
        for document in documents_of_a_run(uid, 1):
            spool.append(*document)
    spool.mark_done("run-old")
    spool.mark_done("run-new")
    an_hour_ago = time.time() - 3600
    os.utime(spool.done_path("run-old"), (an_hour_ago, an_hour_ago))
    assert spool.prune_done(older_than=600) == ["run-old"]
    assert not spool.is_done("run-old") and spool.is_done("run-new")
    assert spool.pending_uids() == ["run-pending"]
    with pytest.raises(ValueError, match=">= 0"):
        spool.prune_done(-1)


def test_run_contents_and_a_synthesised_stop():
    documents = documents_of_a_run("run-r", 4)[:-1]
    documents.append(("event_page", {"descriptor": "desc-run-r", "seq_num": [6, 5],
                                     "time": [7.0, 6.0], "uid": ["p6", "p5"]}))
    contents = RunContents.from_documents(documents)
    assert contents.seq_nums_by_stream == {"primary": (1, 2, 3, 4, 5, 6)}
    assert not contents.has_stop and contents.event_count == 6
    stop = synthesised_stop(contents, last_time=7.0)
    assert (stop["run_start"], stop["exit_status"], stop["num_events"]) == (
        "run-r", "fail", {"primary": 6})
    assert "session ended" in stop["reason"]


def test_replay_skips_a_run_whose_lock_is_held_and_touches_nothing(spool):
    for document in documents_of_a_run("run-busy", 2):
        spool.append(*document)
    no_client = object()
    with spool.try_lock("run-busy"):
        result = replay_run(spool, no_client, "run-busy")
        assert result.outcome is ReplayOutcome.IN_USE and not result.outcome.failed
        assert [r.outcome for r in replay_pending(spool, no_client)] == [ReplayOutcome.IN_USE]
    assert spool.pending_uids() == ["run-busy"]


def test_without_tiled_the_plan_runs_and_every_document_is_kept_pending(tmp_path):
    spool = DocumentSpool(tmp_path / "spool")

    def no_connection():
        raise AssertionError("the writer must not try to connect without a server")

    writer = LiveTiledWriter(spool, no_connection, uri=None)
    run_engine = RunEngine({})
    run_engine.subscribe(writer)
    emitted: list[tuple[str, dict]] = []
    run_engine.subscribe(lambda name, doc: emitted.append((name, doc)))
    started = time.monotonic()
    (uid,) = run_engine(bp.scan([det], motor, -1, 1, 11))
    assert time.monotonic() - started < 5.0
    assert writer.close(timeout=10)
    assert writer.outcome(uid) is RunOutcome.PENDING
    assert spool.pending_uids() == [uid]
    stored = list(spool.iter_documents(uid))
    assert stored == [(name, json.loads(json.dumps(doc, cls=NumpyEncoder)))
                      for name, doc in emitted]
    with pytest.raises(RuntimeError, match="closed"):
        writer("start", {"uid": "late", "time": 0.0})
