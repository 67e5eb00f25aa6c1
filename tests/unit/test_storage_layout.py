"""The catalog's layout in an in-process Tiled: raw (CatalogOfBlueskyRuns) and derived.

What a bluesky user types first is checked with the client's own calls: ``c[-1]``,
``c[scan_id]``, ``c[uid]``, ``c[uid_prefix]``, ``c.search(...)`` and ``c.v1``. The migration
of an older layout (runs and Tc tables at the root) runs on a SQLite catalog, as the local
server does it at its start.
"""

from __future__ import annotations

import sqlite3

import bluesky.plans as bp
import pandas
import pytest
from bluesky import RunEngine
from bluesky_tiled_plugins import TiledWriter
from bluesky_tiled_plugins.clients.bluesky_run import BlueskyRunV3
from bluesky_tiled_plugins.clients.catalog_of_bluesky_runs import CatalogOfBlueskyRuns
from ophyd.sim import det
from tiled.catalog import from_uri as catalog_from_uri
from tiled.client import Context, from_context
from tiled.queries import Key
from tiled.server.app import build_app

from tcstation.storage.config import StorageConfig
from tcstation.storage.layout import (
    DERIVED_KEY,
    RUNS_KEY,
    LayoutError,
    derived_container,
    ensure_layout,
    migrate_root_runs,
    runs_container,
    transitions_key,
)
from tcstation.storage.server import reroot_assets


def _sqlite_catalog(directory, *, init: bool):
    """A client of a SQLite catalog in ``directory``, served in-process.

    Not tiled's in-memory catalog: every in-memory catalog of one process is the same
    database, so another module's containers would show up here.
    """
    (directory / "data").mkdir(exist_ok=True)
    tree = catalog_from_uri(f"sqlite:///{directory}/catalog.db",
                            writable_storage=[directory / "data",
                                              f"sqlite:///{directory}/tables.sqlite"],
                            init_if_not_exists=init)
    return from_context(Context.from_app(build_app(tree)))


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory):
    client = _sqlite_catalog(tmp_path_factory.mktemp("layout"), init=True)
    with pytest.raises(LayoutError, match="has no 'raw' container; a tcstation session"):
        runs_container(client)
    with pytest.raises(LayoutError, match="'derived'"):
        derived_container(client)
    ensure_layout(client)
    runs = runs_container(client)
    run_engine = RunEngine({})
    run_engine.subscribe(TiledWriter(runs))
    uids = [run_engine(bp.count([det], 3), scan_id=scan_id)[0] for scan_id in (41, 42, 43)]
    yield client, uids
    client.context.close()


def test_the_runs_container_is_a_catalog_of_bluesky_runs(laid_out):
    """(The fixture checked that a catalog without the layout says how it gets one.)"""
    client, _ = laid_out
    runs = runs_container(client)
    assert isinstance(runs, CatalogOfBlueskyRuns) and runs.is_sql
    assert [(spec.name, spec.version) for spec in runs.specs] == [("CatalogOfBlueskyRuns",
                                                                    "3.0")]
    assert set(client) == {RUNS_KEY, DERIVED_KEY}
    assert ensure_layout(client) is client  # a second session finds it laid out
    assert set(client) == {RUNS_KEY, DERIVED_KEY}


def test_the_idioms_a_bluesky_user_types_first(laid_out):
    client, uids = laid_out
    runs = runs_container(client)
    assert runs[-1].start["uid"] == uids[-1]
    assert runs[-3].start["uid"] == uids[0]
    assert runs[42].start["uid"] == uids[1]
    assert runs[uids[0]].start["uid"] == uids[0]
    assert runs[uids[2][:8]].start["uid"] == uids[2]
    found = runs.search(Key("scan_id") == 43)
    assert [run.start["uid"] for run in found.values()] == [uids[2]]
    assert all(isinstance(run, BlueskyRunV3) for run in runs.values())
    # (det's value depends on where another module left ophyd.sim's motor.)
    assert len(runs[-1].primary.read()["det"]) == 3


def test_v1_is_offered_and_reads_a_run(laid_out):
    client, uids = laid_out
    v1 = runs_container(client).v1
    header = v1[-1]
    assert header.start["uid"] == uids[-1] and header.start["scan_id"] == 43
    assert list(header.table()["det"]) == list(runs_container(client)[-1].primary.read()[
        "det"].values)
    assert len(header.table()) == 3
    assert v1[42].start["uid"] == uids[1]
    # A v1 header switched the process's runs to BlueskyRunV2 (see the README); back to v3
    # for the tests after this one.
    assert isinstance(runs_container(client).v3[-1], BlueskyRunV3)


def test_runs_and_tc_tables_at_the_root_are_moved_into_raw_and_derived(tmp_path):
    old = _sqlite_catalog(tmp_path, init=True)
    run_engine = RunEngine({})
    run_engine.subscribe(TiledWriter(old))
    uids = [run_engine(bp.count([det], 2), scan_id=scan_id)[0] for scan_id in (1, 2)]
    old.write_table(pandas.DataFrame({"onset": [53.9]}), key=transitions_key(uids[1]),
                    metadata={"raw_run": uids[1]})
    old.context.close()

    assert migrate_root_runs(f"sqlite:///{tmp_path}/catalog.db") == (2, 1)
    assert migrate_root_runs(f"sqlite:///{tmp_path}/catalog.db") == (0, 0)

    client = _sqlite_catalog(tmp_path, init=False)
    assert set(client) == {RUNS_KEY, DERIVED_KEY}
    runs = runs_container(client)
    assert isinstance(runs, CatalogOfBlueskyRuns) and runs.is_sql
    assert runs[-1].start["uid"] == uids[1] and runs[1].start["uid"] == uids[0]
    assert len(runs[1].primary.read()["det"]) == 2
    table = derived_container(client)[transitions_key(uids[1])]
    assert table.metadata["raw_run"] == uids[1]
    assert list(table.read()["onset"]) == [53.9]
    # Deep search goes through the closure table the migration extended.
    assert len(runs.search(Key("scan_id") == 2)) == 1
    run_engine = RunEngine({})
    run_engine.subscribe(TiledWriter(runs))
    (third,) = run_engine(bp.count([det], 2), scan_id=3)
    assert runs[-1].start["uid"] == third
    client.context.close()


def test_asset_locations_of_a_moved_data_directory_are_rerooted(tmp_path):
    """A catalog from before ``served_from`` existed: the old place is read off its tables."""
    config = StorageConfig(data_dir=tmp_path / "copy")
    config.tiled_dir.mkdir(parents=True)
    catalog = config.tiled_dir / "catalog.db"
    with sqlite3.connect(catalog) as connection:
        connection.execute("CREATE TABLE assets (id INTEGER PRIMARY KEY, data_uri TEXT)")
        connection.executemany("INSERT INTO assets (data_uri) VALUES (?)", [
            ("sqlite://localhost//old/place/tiled/tables.sqlite",),
            ("file://localhost/old/place/tiled/data/tbl/partition-0.parquet",),
            ("file://localhost/elsewhere/array.zarr",)])
    connection.close()

    assert reroot_assets(config) == 2
    with sqlite3.connect(catalog) as connection:
        uris = [row[0] for row in connection.execute("SELECT data_uri FROM assets ORDER BY id")]
    connection.close()
    assert uris == [f"sqlite://localhost/{config.tiled_dir}/tables.sqlite",
                    f"file://localhost{config.tiled_dir}/data/tbl/partition-0.parquet",
                    "file://localhost/elsewhere/array.zarr"]
    assert (config.tiled_dir / "served_from").read_text().strip() == str(config.tiled_dir)
    assert reroot_assets(config) == 0
