"""The local Tiled server with its catalog and tables in PostgreSQL (the at-scale layout).

Needs a PostgreSQL that accepts ``TCSTATION_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and lets that user create
databases. Two fresh databases (catalog, tables) are created for the test and
dropped after it, so repeated runs and other users never collide. Skipped, with
the reason, when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from urllib.parse import urlparse, urlunparse

import bluesky.plans as bp
import pytest
from bluesky import RunEngine
from ophyd.sim import motor, noisy_det

from tcstation.storage import (
    LiveTiledWriter,
    LocalTiledServer,
    StorageConfig,
    connect_runs,
    read_stream,
)
from tcstation.storage.layout import RUNS_KEY
from tcstation.storage.spool import DocumentSpool
from tcstation.storage.tiled import stored_seq_nums

pytestmark = pytest.mark.integration

ADMIN_URI = os.environ.get("TCSTATION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def with_database(uri: str, database: str) -> str:
    return urlunparse(urlparse(uri)._replace(path=f"/{database}"))


async def _execute(uri: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(uri, timeout=3)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _fetch(uri: str, query: str, *arguments: object) -> object:
    import asyncpg

    connection = await asyncpg.connect(uri, timeout=3)
    try:
        return await connection.fetchval(query, *arguments)
    finally:
        await connection.close()


@pytest.fixture
def postgres_databases():
    """Two fresh databases, ``(catalog_uri, tabular_uri)``, dropped afterwards."""
    try:
        asyncio.run(_execute(ADMIN_URI, "SELECT 1"))
    except Exception as error:  # any failure to connect means: no PostgreSQL for this test
        pytest.skip(f"no PostgreSQL at {ADMIN_URI} ({type(error).__name__}: {error}); "
                    "set TCSTATION_TEST_POSTGRES to a server where this user may create databases")
    stem = f"tcstation_test_{uuid.uuid4().hex[:12]}"
    names = (f"{stem}_catalog", f"{stem}_tables")
    try:
        for name in names:
            asyncio.run(_execute(ADMIN_URI, f'CREATE DATABASE "{name}"'))
    except Exception as error:  # a reachable server that refuses: still no PostgreSQL for us
        for name in names:
            with contextlib.suppress(Exception):
                asyncio.run(_execute(ADMIN_URI, f'DROP DATABASE IF EXISTS "{name}"'))
        pytest.skip(f"PostgreSQL at {ADMIN_URI} does not let this user create databases "
                    f"({type(error).__name__}: {error})")
    yield tuple(with_database(ADMIN_URI, name) for name in names)
    for name in names:
        asyncio.run(_execute(ADMIN_URI, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_run_reads_back_from_a_server_whose_catalog_is_postgresql(postgres_databases,
                                                                    tmp_path):
    catalog_uri, tabular_uri = postgres_databases
    config = StorageConfig(data_dir=tmp_path / "pg-data", catalog_uri=catalog_uri,
                           tabular_uri=tabular_uri)
    events: list[dict] = []
    with LocalTiledServer(config) as server:
        spool = DocumentSpool(config.spool_dir)
        writer = LiveTiledWriter(spool, lambda: connect_runs(server.uri, server.api_key),
                                 server.uri)
        run_engine = RunEngine({})
        run_engine.subscribe(writer)
        run_engine.subscribe(lambda name, doc: events.append(doc) if name == "event" else None)

        (uid,) = run_engine(bp.scan([noisy_det], motor, 0.0, 2.0, 25))
        assert writer.close(timeout=30)

        client = connect_runs(server.uri, server.api_key)
        assert spool.is_done(uid)
        assert stored_seq_nums(client, uid, "primary") == tuple(range(1, 26))
        dataset = read_stream(client[uid])
        assert list(dataset["noisy_det"].values) == [doc["data"]["noisy_det"] for doc in events]
        assert list(dataset["motor"].values) == [doc["data"]["motor"] for doc in events]
    assert not (tmp_path / "pg-data" / "tiled" / "catalog.db").exists()
    assert asyncio.run(_fetch(catalog_uri, "SELECT count(*) FROM nodes WHERE key = $1", uid)) == 1
    assert asyncio.run(_fetch(
        catalog_uri, "SELECT parent.key FROM nodes AS run JOIN nodes AS parent "
        "ON run.parent = parent.id WHERE run.key = $1", uid)) == RUNS_KEY
