"""The data directory (spool, catalog, tables, key) is 0700 from its first creation, by anyone."""

from __future__ import annotations

import os
import stat

import pytest

from tcstation.cli import replay_main
from tcstation.storage import StorageConfig, open_storage
from tcstation.storage.config import private_directory


@pytest.fixture
def loose_umask():
    """A umask that lets group and others read new directories (the usual 022 does too)."""
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_session_storage_creates_the_data_directory_private(tmp_path, loose_umask):
    data_dir = tmp_path / "new" / "data"
    config = StorageConfig(data_dir=data_dir, tiled_uri="http://127.0.0.1:9",
                           api_key="abc123def456")
    storage = open_storage(config)
    try:
        assert (data_dir / "spool").is_dir()
        assert mode_of(data_dir) == 0o700
    finally:
        storage.close(timeout=1.0)


def test_replay_creates_the_data_directory_private(tmp_path, loose_umask, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("TCSTATION_DATA_DIR", str(data_dir))
    for variable in ("TCSTATION_TILED_URI", "TCSTATION_TILED_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    assert replay_main(["--dry-run"]) == 0
    assert mode_of(data_dir) == 0o700


def test_the_demo_directory_helper_makes_parents_and_a_private_leaf(tmp_path, loose_umask):
    data_dir = private_directory(tmp_path / "var" / "demo")
    assert mode_of(data_dir) == 0o700
    assert data_dir.parent.is_dir()


def test_an_existing_loose_data_directory_is_tightened(tmp_path, caplog):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    private_directory(data_dir)
    assert mode_of(data_dir) == 0o700
    assert "tightening it to 700" in caplog.text
