"""A run Tiled holds incompletely after its stop is written again from the spool at once."""

from __future__ import annotations

import bluesky.plans as bp
from bluesky import RunEngine
from ophyd.sim import det

from tcstation.storage import writer as writer_module
from tcstation.storage.spool import DocumentSpool
from tcstation.storage.tiled import RunContents, TiledRunState, tiled_run_state
from tcstation.storage.writer import LiveTiledWriter, RunOutcome
from tests.unit.in_process_tiled import in_process_tiled


def test_a_run_left_partial_in_tiled_is_rewritten_from_the_spool(tmp_path, monkeypatch):
    (tmp_path / "tiled").mkdir()
    client = in_process_tiled(tmp_path / "tiled")
    spool = DocumentSpool(tmp_path / "spool")
    monkeypatch.setattr(writer_module, "tiled_answers", lambda uri, timeout=None: True)
    live = LiveTiledWriter(spool, lambda: client, uri="http://in-process", batch_size=1)
    write = live._write
    events = []

    def lose_the_second_event(run, item):
        if item.name == "event":
            events.append(item)
            if len(events) == 2:
                return  # as a request lost (or applied twice) on a loaded server
        write(run, item)

    monkeypatch.setattr(live, "_write", lose_the_second_event)
    run_engine = RunEngine({})
    run_engine.subscribe(live)
    (uid,) = run_engine(bp.count([det], 5))
    assert live.close(timeout=30)
    assert len(events) == 5, "the writer saw every event"
    assert live.outcome(uid) is RunOutcome.WRITTEN
    assert spool.is_done(uid)
    contents = RunContents.from_documents(spool.iter_documents(uid))
    assert tiled_run_state(client, contents) is TiledRunState.COMPLETE
    client.context.close()


def test_a_run_read_through_v1_first_still_counts_as_complete(tmp_path):
    """databroker's v1 Header switches the process's run class to BlueskyRunV2."""
    import bluesky.plans as bp
    from bluesky_tiled_plugins import TiledWriter

    from tcstation.storage.layout import ensure_layout, runs_container

    (tmp_path / "tiled").mkdir()
    client = in_process_tiled(tmp_path / "tiled")
    ensure_layout(client)
    runs = runs_container(client)
    run_engine = RunEngine({})
    documents = []
    run_engine.subscribe(TiledWriter(runs))
    run_engine.subscribe(lambda name, doc: documents.append((name, doc)))
    (uid,) = run_engine(bp.count([det], 3))
    assert runs.v1[-1].start["uid"] == uid
    contents = RunContents.from_documents(documents)
    assert tiled_run_state(runs, contents) is TiledRunState.COMPLETE
    # The process's runs back to BlueskyRunV3 for the tests after this one.
    assert type(runs.v3[-1]).__name__ == "BlueskyRunV3"
    client.context.close()
