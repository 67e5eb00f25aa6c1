"""A writable Tiled catalog served in-process, for unit tests of what reads and writes runs."""

from __future__ import annotations

import uuid
from pathlib import Path

from tiled.catalog import in_memory
from tiled.client import Context, from_context
from tiled.client.container import Container
from tiled.server.app import build_app


def in_process_tiled(directory: Path) -> Container:
    """A client of an in-memory catalog whose arrays and tables are written under ``directory``.

    Each call gets a catalog of its own: tiled's unnamed in-memory catalogs are one shared
    database per process, so modules (or pytest-xdist neighbours) would see each other's nodes.
    """
    tree = in_memory(named_memory=f"tcstation-test-{uuid.uuid4().hex}", writable_storage=[f"file://{directory}/data",
                                       f"sqlite:///{directory}/tables.db"])
    return from_context(Context.from_app(build_app(tree)))
