"""Where things live in the Tiled catalog: runs under ``raw``, Tc tables under ``derived``.

The layout a bluesky user expects (as at the facilities that serve databroker 2 over Tiled)::

    /                      the catalog root: the two containers below, nothing else of ours
    /raw                   spec CatalogOfBlueskyRuns 3.0: nothing but runs (BlueskyRun 3.0)
    /derived               results computed from runs, each naming its run in
                           metadata["raw_run"], e.g. derived["transitions-<uid>"]

so that a plain Tiled client does ``c = from_uri(uri)["raw"]`` and then ``c[-1]``,
``c[scan_id]``, ``c[uid]``, ``c[uid_prefix]``, ``c.search(...)`` and ``c.v1``. This module is
the only place that knows the two keys; the writer, replay, the readers and the tests go
through :func:`runs_container` and :func:`derived_container`.

:func:`migrate_root_runs` moves the runs and Tc tables that older station versions wrote at
the root into these containers, in the catalog database itself (the local server runs it at
each start; nothing is copied, the tables and files stay where they are).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from tiled.client.container import Container
from tiled.structures.core import Spec

logger = logging.getLogger(__name__)

RUNS_KEY = "raw"
"""Key of the container of runs (``CatalogOfBlueskyRuns``)."""
DERIVED_KEY = "derived"
"""Key of the container of derived results (Tc tables), each linked to its run."""
RUNS_SPEC = Spec("CatalogOfBlueskyRuns", version="3.0")
"""The spec bluesky-tiled-plugins' client turns into ``CatalogOfBlueskyRuns`` (3.x: SQL-backed)."""
RUN_SPEC_NAME = "BlueskyRun"
TRANSITIONS_KEY_PREFIX = "transitions-"
"""Key of a run's Tc table in :data:`DERIVED_KEY`: ``transitions-<raw run uid>``."""

RUNS_METADATA = {"description": "bluesky runs of the Tc station, one per start document"}
DERIVED_METADATA = {"description": "results derived from the runs in 'raw'; metadata['raw_run'] "
                                   "names the run's start uid"}


class LayoutError(LookupError):
    """The catalog lacks the station's containers (and this client may not create them)."""


def transitions_key(uid: str) -> str:
    """The key of run ``uid``'s Tc table in the derived container."""
    return TRANSITIONS_KEY_PREFIX + uid


def _ensure(client: Container, key: str, specs: list[Spec], metadata: dict[str, Any]) -> None:
    if key in client:
        return
    try:
        client.create_container(key, specs=specs, metadata=metadata)
    except Exception:
        # Two sessions starting at once: the other one created it first (HTTP 409).
        if key not in client:
            raise
    logger.info("created the %r container in the Tiled catalog at %s", key, client.uri)


def ensure_layout(client: Container) -> Container:
    """Create the runs and derived containers at ``client`` (the catalog root) if missing.

    Parameters
    ----------
    client : tiled.client.container.Container
        A writable client of the catalog root.

    Returns
    -------
    tiled.client.container.Container
        ``client``.
    """
    _ensure(client, RUNS_KEY, [RUNS_SPEC], RUNS_METADATA)
    _ensure(client, DERIVED_KEY, [], DERIVED_METADATA)
    return client


def _child(client: Container, key: str) -> Container:
    try:
        return client[key]
    except KeyError:
        raise LayoutError(f"the Tiled catalog at {client.uri} has no {key!r} container; a "
                          "tcstation session creates it (ensure_layout) on first use") from None


def runs_container(client: Container) -> Container:
    """The container of runs (a ``CatalogOfBlueskyRuns`` client) under the root ``client``."""
    return _child(client, RUNS_KEY)


def derived_container(client: Container) -> Container:
    """The container of derived tables under the catalog root ``client``."""
    return _child(client, DERIVED_KEY)


def spec_names(specs_json: Any) -> set[str]:
    """The spec names of a node, from the catalog's JSON column (text or decoded)."""
    specs = json.loads(specs_json) if isinstance(specs_json, str) else specs_json or []
    return {spec.get("name") for spec in specs if isinstance(spec, dict)}


def migrate_root_runs(catalog_uri: str) -> tuple[int, int]:
    """Move runs and Tc tables kept at the catalog root (older layout) into raw and derived.

    Works in the catalog database (SQLite or PostgreSQL) before the server opens it: each
    moved node gets its new parent, and the closure table (every node's ancestors) is
    extended by the one level inserted above it. The containers are created if missing.

    Parameters
    ----------
    catalog_uri : str
        The catalog database, as given to ``tiled.catalog.from_uri``.

    Returns
    -------
    tuple of int
        How many runs and how many derived tables were moved.
    """
    return asyncio.run(_migrate(catalog_uri))


async def _migrate(catalog_uri: str) -> tuple[int, int]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from tiled.utils import ensure_specified_sql_driver

    engine = create_async_engine(ensure_specified_sql_driver(catalog_uri))
    try:
        async with engine.begin() as connection:
            rows = (await connection.execute(text(
                "SELECT id, key, specs FROM nodes WHERE parent = 0"))).all()
            by_key = {key: node_id for node_id, key, _ in rows}
            runs = [node_id for node_id, key, specs in rows
                    if RUN_SPEC_NAME in spec_names(specs)]
            derived = [node_id for node_id, key, specs in rows
                       if key.startswith(TRANSITIONS_KEY_PREFIX)]
            if not runs and not derived:
                return 0, 0
            for key, specs, metadata in ((RUNS_KEY, [RUNS_SPEC], RUNS_METADATA),
                                         (DERIVED_KEY, [], DERIVED_METADATA)):
                if key not in by_key:
                    by_key[key] = await _insert_container(connection, key, specs, metadata)
            for node_ids, key in ((runs, RUNS_KEY), (derived, DERIVED_KEY)):
                for node_id in node_ids:
                    await _move_from_root(connection, node_id, by_key[key])
    finally:
        await engine.dispose()
    logger.warning("moved %d run(s) from the catalog root into %r and %d Tc table(s) into %r "
                   "(the layout of older tcstation versions)", len(runs), RUNS_KEY,
                   len(derived), DERIVED_KEY)
    return len(runs), len(derived)


async def _insert_container(connection: Any, key: str, specs: list[Spec],
                            metadata: dict[str, Any]) -> int:
    from sqlalchemy import text

    specs_json = json.dumps([{"name": spec.name, "version": spec.version} for spec in specs])
    json_value = ("CAST({} AS JSONB)" if connection.dialect.name == "postgresql" else "{}").format
    # The closure table's insert trigger adds the new node's ancestors.
    await connection.execute(text(
        "INSERT INTO nodes (parent, key, structure_family, metadata, specs) "
        f"VALUES (0, :key, 'container', {json_value(':metadata')}, {json_value(':specs')})"),
        {"key": key, "metadata": json.dumps(metadata), "specs": specs_json})
    return (await connection.execute(text(
        "SELECT id FROM nodes WHERE parent = 0 AND key = :key"), {"key": key})).scalar_one()


async def _move_from_root(connection: Any, node_id: int, new_parent: int) -> None:
    from sqlalchemy import text

    subtree = "SELECT descendant FROM nodes_closure WHERE ancestor = :node"
    parameters = {"node": node_id, "parent": new_parent}
    await connection.execute(text("UPDATE nodes SET parent = :parent WHERE id = :node"),
                             parameters)
    await connection.execute(text(
        f"UPDATE nodes_closure SET depth = depth + 1 WHERE ancestor = 0 "
        f"AND descendant IN ({subtree})"), parameters)
    await connection.execute(text(
        "INSERT INTO nodes_closure (ancestor, descendant, depth) "
        "SELECT :parent, descendant, depth + 1 FROM nodes_closure WHERE ancestor = :node"),
        parameters)
