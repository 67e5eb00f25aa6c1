"""Runs written to a real local Tiled server (a subprocess) and read back; an outage and replay."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import pandas
import pytest
import tiled.client.utils
from bluesky import RunEngine
from bluesky_tiled_plugins import TiledWriter
from bluesky_tiled_plugins.clients.bluesky_run import BlueskyRunV3
from bluesky_tiled_plugins.clients.catalog_of_bluesky_runs import CatalogOfBlueskyRuns
from ophyd.sim import det, motor, noisy_det
from polling import wait_for
from tiled.client import from_uri
from tiled.queries import Key

from tcstation.cli import replay_main
from tcstation.storage import (
    LiveTiledWriter,
    LocalTiledServer,
    RunOutcome,
    StorageConfig,
    connect_runs,
    find_runs,
    latest_run,
    open_storage,
    read_stream,
    run_by_uid,
)
from tcstation.storage.layout import DERIVED_KEY, RUNS_KEY, transitions_key
from tcstation.storage.spool import DocumentSpool
from tcstation.storage.tiled import stored_seq_nums

pytestmark = pytest.mark.integration


class EventCollector:
    """Keeps each event's seq_num and data as the RunEngine emitted them."""

    def __init__(self):
        self.events: list[dict] = []

    def __call__(self, name: str, doc: dict) -> None:
        if name == "event":
            self.events.append({"seq_num": doc["seq_num"], **doc["data"]})


def table_of(client, uid: str, stream: str = "primary"):
    return client[uid][stream].base["internal"].read()


def rows_in_tiled(client, uid: str) -> int:
    """Number of event rows Tiled serves for a run's primary stream (0 if none yet)."""
    if uid not in client:
        return 0
    seq_nums = stored_seq_nums(client, uid, "primary")
    return 0 if seq_nums is None else len(seq_nums)


def wait_for_rows(client, uid: str, count: int, timeout: float = 10.0) -> None:
    wait_for(lambda: rows_in_tiled(client, uid) >= count, timeout,
             f"{count} events of run {uid[:8]} in Tiled")


def assert_events_match(client, uid: str, collected: list[dict]) -> None:
    table = table_of(client, uid).sort_values("seq_num")
    assert list(table["seq_num"]) == [event["seq_num"] for event in collected]
    for key in collected[0]:
        assert list(table[key]) == [event[key] for event in collected], key


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    config = StorageConfig(data_dir=tmp_path_factory.mktemp("tiled-data"))
    server = LocalTiledServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def writer_and_client(local_server, tmp_path):
    spool = DocumentSpool(tmp_path / "spool")
    writer = LiveTiledWriter(spool, lambda: connect_runs(local_server.uri, local_server.api_key),
                             local_server.uri)
    yield writer, connect_runs(local_server.uri, local_server.api_key)
    writer.close(timeout=30)


def test_every_event_value_reads_back_from_tiled(writer_and_client):
    writer, client = writer_and_client
    run_engine = RunEngine({})
    collector = EventCollector()
    run_engine.subscribe(writer)
    run_engine.subscribe(collector)

    (uid,) = run_engine(bp.scan([noisy_det, det], motor, -1.0, 1.0, 41))

    assert writer.wait_until_idle(30)
    assert writer.outcome(uid) is RunOutcome.WRITTEN
    assert not writer.spool.is_pending(uid) and writer.spool.is_done(uid)
    assert len(collector.events) == 41
    assert_events_match(client, uid, collected=collector.events)
    run = run_by_uid(client, uid)
    assert run.metadata["stop"]["exit_status"] == "success"
    dataset = read_stream(run)
    assert list(dataset["noisy_det"].values) == [event["noisy_det"] for event in collector.events]
    frame = read_stream(run, as_dataframe=True)
    assert len(frame) == 41 and "motor" in frame.columns


def test_events_are_readable_while_the_run_goes_on(writer_and_client):
    writer, client = writer_and_client
    run_engine = RunEngine({})
    run_engine.subscribe(writer)
    seen_mid_run: dict[str, float] = {}

    def ramp_like_plan():
        """One point every 0.1 s; after 10, the plan itself waits for Tiled to show them."""
        @bpp.run_decorator(md={"purpose": "live visibility"})
        def inner():
            for point in range(20):
                yield from bps.trigger_and_read([noisy_det])
                if point == 9:
                    uid = writer.spool.pending_uids()[-1]
                    emitted = time.monotonic()
                    wait_for_rows(client, uid, 10)
                    seen_mid_run["latency"] = time.monotonic() - emitted
                    seen_mid_run["stop_present"] = "stop" in client[uid].metadata
                yield from bps.sleep(0.1)
        return (yield from inner())

    (uid,) = run_engine(ramp_like_plan())

    assert seen_mid_run["stop_present"] is False
    assert seen_mid_run["latency"] < 5.0
    assert writer.wait_until_idle(30)
    assert rows_in_tiled(client, uid) == 20
    assert writer.outcome(uid) is RunOutcome.WRITTEN


def test_a_batch_that_does_not_fill_is_written_while_the_run_goes_on(writer_and_client):
    """Three points, fewer than a batch: the time-based flush puts them in Tiled before the stop."""
    writer, client = writer_and_client
    assert writer.batch_size > 3
    run_engine = RunEngine({})
    run_engine.subscribe(writer)
    seen: dict[str, object] = {}

    @bpp.run_decorator(md={"purpose": "time-based flush"})
    def three_points_then_wait_for_tiled():
        for _ in range(3):
            yield from bps.trigger_and_read([noisy_det])
        uid = writer.spool.pending_uids()[-1]
        # The plan itself waits: without the flush, the rows would come only at the stop.
        wait_for_rows(client, uid, 3, timeout=30.0)
        seen["stop_present"] = "stop" in client[uid].metadata

    (uid,) = run_engine(three_points_then_wait_for_tiled())

    assert seen["stop_present"] is False
    assert writer.wait_until_idle(30)
    assert rows_in_tiled(client, uid) == 3
    assert writer.outcome(uid) is RunOutcome.WRITTEN


def test_a_fast_scan_is_appended_in_batches_not_event_by_event(writer_and_client, monkeypatch):
    from tiled.client.dataframe import DataFrameClient

    writer, client = writer_and_client
    appends: list[int] = []
    original = DataFrameClient.append_partition

    def counting(self, partition, data):
        appends.append(len(data))
        return original(self, partition, data)

    monkeypatch.setattr(DataFrameClient, "append_partition", counting)
    run_engine = RunEngine({})
    run_engine.subscribe(writer)
    (uid,) = run_engine(bp.count([det], num=41))
    assert writer.wait_until_idle(60)
    assert writer.outcome(uid) is RunOutcome.WRITTEN
    assert sum(appends) == 41 and rows_in_tiled(client, uid) == 41
    assert len(appends) <= 41 // 2, f"appends of {appends} events"
    assert max(appends) <= writer.batch_size


def test_runs_are_found_by_plan_name_and_the_latest_first(writer_and_client):
    writer, client = writer_and_client
    run_engine = RunEngine({})
    run_engine.subscribe(writer)
    (count_uid,) = run_engine(bp.count([det], num=3), sample="mg_mgo")
    (scan_uid,) = run_engine(bp.scan([det], motor, 0, 1, 3), sample="mg_mgo")
    assert writer.wait_until_idle(30)

    assert count_uid in list(find_runs(client, plan_name="count"))
    assert scan_uid not in list(find_runs(client, plan_name="count"))
    assert latest_run(client, sample="mg_mgo").metadata["start"]["uid"] == scan_uid
    assert latest_run(client, plan_name="count").metadata["start"]["uid"] == count_uid
    assert latest_run(client, plan_name="no such plan") is None
    with pytest.raises(KeyError, match="tcstation replay"):
        run_by_uid(client, "0" * 36)


def test_open_storage_starts_a_server_a_second_session_reuses_it(tmp_path):
    config = StorageConfig(data_dir=tmp_path / "station-data")
    with open_storage(config, strict=True) as first:
        assert first.server is not None and first.server.running
        assert (config.api_key_file.stat().st_mode & 0o777) == 0o600
        assert first.config.api_key_file.read_text().strip() not in repr(first)
        with open_storage(config, strict=True) as second:
            assert second.server is None and second.uri == first.uri
            run_engine = RunEngine({})
            second.subscribe(run_engine)
            (uid,) = run_engine(bp.count([det], num=5))
            assert second.writer.wait_until_idle(30)
            assert len(read_stream(first.runs[uid])["det"]) == 5
        assert first.server.running
    assert not first.server.running
    assert not config.server_state_file.exists()


def use_data_dir(monkeypatch, data_dir: Path) -> None:
    """Point `tcstation replay` (which reads the environment) at ``data_dir``'s local store."""
    monkeypatch.setenv("TCSTATION_DATA_DIR", str(data_dir))
    for variable in ("TCSTATION_TILED_URI", "TCSTATION_TILED_API_KEY", "TCSTATION_TILED_PORT",
                     "TCSTATION_TILED_CATALOG", "TCSTATION_TILED_TABULAR"):
        monkeypatch.delenv(variable, raising=False)


def test_outage_mid_run_then_replay_puts_every_event_in_tiled_once(local_server, monkeypatch,
                                                                   capsys):
    """The module's server is stopped mid-run and restarted: keep this test after its users."""
    # The Tiled client retries a refused connection for 45 s by default; a
    # shorter window lets the writer give up within the test's time.
    monkeypatch.setattr(tiled.client.utils, "TILED_RETRY_TIMEOUT", 1.5)
    monkeypatch.setattr(tiled.client.utils, "TILED_RETRY_ATTEMPTS", 3)
    server = local_server
    use_data_dir(monkeypatch, server.config.data_dir)
    spool = DocumentSpool(server.config.spool_dir)
    writer = LiveTiledWriter(spool, lambda: connect_runs(server.uri, server.api_key), server.uri)
    client = connect_runs(server.uri, server.api_key)
    run_engine = RunEngine({})
    run_engine.subscribe(writer)
    collector = EventCollector()
    run_engine.subscribe(collector)
    outage_started: list[float] = []

    def count_with_outage():
        @bpp.run_decorator(md={"purpose": "outage"})
        def inner():
            for point in range(30):
                yield from bps.trigger_and_read([noisy_det])
                if point == 9:
                    uid = spool.pending_uids()[-1]
                    wait_for_rows(client, uid, 10)
                    server.stop()
                    outage_started.append(time.monotonic())
                yield from bps.sleep(0.02)
        return (yield from inner())

    (outage_uid,) = run_engine(count_with_outage())
    plan_durations = [time.monotonic() - outage_started[0]]
    outage_events = list(collector.events)
    collector.events.clear()
    started = time.monotonic()
    (offline_uid,) = run_engine(bp.count([noisy_det], num=15))
    plan_durations.append(time.monotonic() - started)
    offline_events = list(collector.events)

    # The plans did not wait for the dead server (the client's retries run on the worker).
    assert max(plan_durations) < 3.0, plan_durations
    assert writer.wait_until_idle(30)
    assert writer.outcome(outage_uid) is RunOutcome.PENDING
    assert writer.outcome(offline_uid) is RunOutcome.PENDING
    assert set(spool.pending_uids()) == {outage_uid, offline_uid}

    server.start()
    assert rows_in_tiled(client, outage_uid) == 10
    assert "stop" not in client[outage_uid].metadata
    assert offline_uid not in client

    assert replay_main(["--dry-run"]) == 0
    dry_output = capsys.readouterr().out
    assert "would delete the partial run" in dry_output and "would write" in dry_output
    assert set(spool.pending_uids()) == {outage_uid, offline_uid}

    assert replay_main([]) == 0
    output = capsys.readouterr().out
    assert "rewritten (was partial)" in output and "written" in output
    assert spool.pending_uids() == []
    for uid, events in ((outage_uid, outage_events), (offline_uid, offline_events)):
        assert_events_match(client, uid, collected=events)
        assert client[uid].metadata["stop"]["exit_status"] == "success"

    assert replay_main([]) == 0
    assert "nothing to replay" in capsys.readouterr().out
    assert stored_seq_nums(client, outage_uid, "primary") == tuple(range(1, 31))
    assert writer.close(timeout=10)


def test_replay_starts_a_server_and_completes_a_run_whose_session_died(tmp_path, monkeypatch,
                                                                       capsys):
    """A spool file without a stop (the session was killed), no server running.

    Replay starts the data directory's server, adds a stop with exit_status
    "fail", writes the run, checks it (every seq_num once, the stop), marks it
    done and stops the server.
    """
    config = StorageConfig(data_dir=tmp_path / "crash-data")
    use_data_dir(monkeypatch, config.data_dir)
    spool = DocumentSpool(config.spool_dir)
    run_engine = RunEngine({})

    def spool_until_stop(name: str, doc: dict) -> None:
        if name != "stop":
            spool.append(name, doc)

    run_engine.subscribe(spool_until_stop)
    (uid,) = run_engine(bp.count([noisy_det], num=7))
    spool.close()
    assert not spool.summary(uid).has_stop

    assert replay_main([]) == 0
    output = capsys.readouterr().out
    assert "starting the local Tiled server" in output
    assert "added one (exit_status 'fail')" in output and "written" in output
    assert not config.server_state_file.exists()
    summary = spool.summary(uid)
    assert summary.done and summary.has_stop and summary.event_count == 7
    assert list(spool.iter_documents(uid))[-1][1]["exit_status"] == "fail"


def test_a_copied_data_directory_of_the_old_layout_reads_with_a_plain_client(tmp_path):
    """Runs and a Tc table at the root (older tcstation), copied elsewhere, the original gone.

    At its start on the copy, the local server re-roots the asset locations and moves the
    old layout into raw and derived; an outside client then reads every run with tiled's
    own ``from_uri`` and bluesky-tiled-plugins' idioms. Two server starts.
    """
    original = StorageConfig(data_dir=tmp_path / "original")
    with LocalTiledServer(original) as server:
        root = from_uri(server.uri, api_key=server.api_key)
        old_writer = TiledWriter(root)  # what older versions did: runs at the root
        run_engine = RunEngine({})
        run_engine.subscribe(old_writer)
        (old_uid,) = run_engine(bp.count([det], num=4), scan_id=1)
        root.write_table(pandas.DataFrame({"bias": [0.0], "onset": [54.1]}),
                         key=transitions_key(old_uid), metadata={"raw_run": old_uid})
        new_engine = RunEngine({})
        new_engine.subscribe(TiledWriter(connect_runs(server.uri, server.api_key)))
        (new_uid,) = new_engine(bp.scan([det], motor, 0, 1, 3), scan_id=2)
        assert set(root) == {old_uid, transitions_key(old_uid), RUNS_KEY, DERIVED_KEY}
    copy = StorageConfig(data_dir=tmp_path / "archive" / "copy")
    shutil.copytree(original.data_dir, copy.data_dir)
    original.data_dir.rename(tmp_path / "original-gone")  # its absolute paths lead nowhere

    with LocalTiledServer(copy) as server:
        root = from_uri(server.uri, api_key=server.api_key)
        assert set(root) == {RUNS_KEY, DERIVED_KEY}
        runs = root[RUNS_KEY]
        assert isinstance(runs, CatalogOfBlueskyRuns)
        assert runs[-1].start["uid"] == new_uid and runs[-2].start["uid"] == old_uid
        assert runs[1].start["uid"] == old_uid and runs[2].start["uid"] == new_uid
        assert runs[old_uid[:8]].start["uid"] == old_uid
        assert [run.start["uid"] for run in runs.search(Key("plan_name") == "scan").values()
                ] == [new_uid]
        lengths = {}
        for uid, run in runs.items():
            assert isinstance(run, BlueskyRunV3), uid
            lengths[uid] = len(run.primary.read()["det"])
        assert lengths == {old_uid: 4, new_uid: 3}
        table = root[DERIVED_KEY][transitions_key(old_uid)]
        assert table.metadata["raw_run"] == old_uid
        assert list(table.read()["onset"]) == [54.1]
        assert runs.v1[-1].table()["motor"].tolist() == [0.0, 0.5, 1.0]
