"""resolve_run against an in-process Tiled catalog: latest, scan id, uid prefix, the errors.

The runs are written by bluesky_tiled_plugins' TiledWriter, three from a RunEngine counting
ophyd.sim's ``det`` and two composed with chosen uids (a shared prefix) and one scan id, both
into the catalog root (beside a table that is not a run, as older versions kept them) and
into a container with the CatalogOfBlueskyRuns spec, as the station keeps them.
"""

from __future__ import annotations

import time

import bluesky.plans as bp
import pandas
import pytest
from bluesky import RunEngine
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run
from ophyd.sim import det

from tcstation.storage.lookup import RunLookupError, resolve_run
from tests.unit.in_process_tiled import in_process_tiled

TWINS = ("abcd1234-0000-4000-8000-000000000001", "abcd5678-0000-4000-8000-000000000002")
"""Two older runs whose uids share the prefix ``abcd`` and whose scan id is 7."""


def _composed_run(writers, uid: str, when: float, scan_id: int) -> None:
    bundle = compose_run(uid=uid, time=when, metadata={"scan_id": scan_id, "plan_name": "tw"})
    descriptor = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "sim"}})
    event = descriptor.compose_event(data={"x": 1.0}, timestamps={"x": when}, seq_num=1)
    stop = bundle.compose_stop(time=when + 1)
    for writer in writers:
        for name, document in (("start", bundle.start_doc), ("descriptor",
                                                             descriptor.descriptor_doc),
                               ("event", event), ("stop", stop)):
            writer(name, document)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiled")
    client = in_process_tiled(directory)
    client.create_container("raw", specs=["CatalogOfBlueskyRuns"])
    raw = client["raw"]
    writers = [TiledWriter(client), TiledWriter(raw)]
    now = time.time()
    _composed_run(writers, TWINS[0], now - 2000.0, scan_id=7)
    _composed_run(writers, TWINS[1], now - 1000.0, scan_id=7)
    run_engine = RunEngine({})
    for writer in writers:
        run_engine.subscribe(writer)
    counted = [run_engine(bp.count([det], 2), scan_id=scan_id)[0] for scan_id in (8, 9, 10)]
    client.write_dataframe(pandas.DataFrame({"onset": [53.9]}), key="transitions-x",
                           metadata={"raw_run": counted[-1]})
    yield {"root": client, "raw": raw}, counted
    client.context.close()


@pytest.fixture(params=["root", "raw"])
def runs(request, catalog):
    containers, counted = catalog
    return containers[request.param], counted


def uid_of(run) -> str:
    return run.metadata["start"]["uid"]


def test_the_container_is_what_the_station_will_use(catalog):
    containers, _ = catalog
    assert "CatalogOfBlueskyRuns" in [spec.name for spec in containers["raw"].specs]
    assert "transitions-x" in containers["root"]


def test_latest_and_negative_indices_count_from_the_newest(runs):
    container, counted = runs
    assert uid_of(resolve_run(container, "latest")) == counted[-1]
    assert uid_of(resolve_run(container, "-1")) == counted[-1]
    assert uid_of(resolve_run(container, -3)) == counted[0]
    assert uid_of(resolve_run(container, "-5")) == TWINS[0]
    with pytest.raises(RunLookupError, match="no run -6: there are 5 run"):
        resolve_run(container, "-6")


def test_a_scan_id_names_the_newest_run_with_it(runs):
    container, counted = runs
    assert uid_of(resolve_run(container, "9")) == counted[1]
    assert uid_of(resolve_run(container, 10)) == counted[2]
    assert uid_of(resolve_run(container, "7")) == TWINS[1]
    with pytest.raises(RunLookupError, match=r"no run has scan id 99; the newest are "
                                             rf"{counted[-1][:8]} \(scan 10, count, "):
        resolve_run(container, "99")


def test_a_full_uid_or_a_unique_prefix_names_one_run(runs):
    container, counted = runs
    assert uid_of(resolve_run(container, counted[0])) == counted[0]
    assert uid_of(resolve_run(container, counted[1][:8])) == counted[1]
    assert uid_of(resolve_run(container, counted[1][:8].upper())) == counted[1]
    assert uid_of(resolve_run(container, "abcd5")) == TWINS[1]
    assert uid_of(resolve_run(container, TWINS[0][:13])) == TWINS[0]


def test_an_ambiguous_prefix_names_the_candidates(runs):
    container, _ = runs
    with pytest.raises(RunLookupError) as error:
        resolve_run(container, "abcd")
    message = str(error.value)
    assert message.startswith("uid prefix 'abcd' is ambiguous: it matches abcd5678 (scan 7, "
                              "tw, ")
    assert "abcd1234 (scan 7, tw, " in message and message.endswith("give more characters")
    assert "\n" not in message


@pytest.mark.parametrize(("reference", "expected"), [
    ("ffff0000", "no run uid starts with 'ffff0000'; the newest are "),
    ("abc", "uid prefix 'abc' is too short: give at least 4 characters; the newest are "),
    ("last", "'last' is not 'latest', a scan id or a run uid (prefix)"),
])
def test_an_unknown_reference_names_the_newest_runs(runs, reference, expected):
    container, counted = runs
    with pytest.raises(RunLookupError) as error:
        resolve_run(container, reference)
    message = str(error.value)
    assert message.startswith(expected)
    newest = message.split("the newest are ")[1].split(", ")
    assert [entry[:8] for entry in newest[::3]] == [uid[:8] for uid in counted[::-1]] + [
        TWINS[1][:8], TWINS[0][:8]]


def test_an_empty_container_says_there_are_no_runs(catalog):
    containers, _ = catalog
    empty = containers["root"].create_container("empty", specs=["CatalogOfBlueskyRuns"])
    with pytest.raises(RunLookupError, match="no run -1: there are 0 run.*there are no runs"):
        resolve_run(empty, "latest")
