"""Unit tests of tcstation.storage.config: resolution from the environment, the API key, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcstation.storage.config import (
    StorageConfig,
    StorageConfigError,
    default_data_dir,
    load_or_create_api_key,
    mask_secret,
    prepare_data_dir,
)

KEY = "0123456789abcdef0123456789abcdef"


def test_defaults_follow_xdg_data_home_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir({}) == tmp_path / "home" / ".local" / "share" / "tcstation"
    assert default_data_dir({"XDG_DATA_HOME": "/srv/xdg"}) == Path("/srv/xdg/tcstation")
    config = StorageConfig.from_environment({"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert config.data_dir == tmp_path / "xdg" / "tcstation"
    assert config.uses_local_server
    assert config.local_catalog_uri == f"sqlite:///{config.data_dir}/tiled/catalog.db"
    assert config.local_tabular_uri == f"sqlite:///{config.data_dir}/tiled/tables.sqlite"
    assert config.spool_dir == config.data_dir / "spool"


def test_data_dir_is_expanded_and_made_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = StorageConfig.from_environment({"TCSTATION_DATA_DIR": "~/station"})
    assert config.data_dir == tmp_path / "station"
    monkeypatch.chdir(tmp_path)
    relative = StorageConfig.from_environment({"TCSTATION_DATA_DIR": "rel"})
    assert relative.data_dir == tmp_path / "rel"


def test_an_external_server_needs_its_key_and_no_local_settings(tmp_path):
    environment = {"TCSTATION_DATA_DIR": str(tmp_path), "TCSTATION_TILED_URI": "https://tiled.lab:8000",
                   "TCSTATION_TILED_API_KEY": KEY}
    config = StorageConfig.from_environment(environment)
    assert not config.uses_local_server and config.api_key == KEY
    with pytest.raises(StorageConfigError, match="TCSTATION_TILED_API_KEY is not"):
        StorageConfig.from_environment({**environment, "TCSTATION_TILED_API_KEY": ""})
    with pytest.raises(StorageConfigError, match="configure the local server"):
        StorageConfig.from_environment({**environment, "TCSTATION_TILED_PORT": "8000"})
    with pytest.raises(StorageConfigError, match="without TCSTATION_TILED_URI"):
        StorageConfig.from_environment({"TCSTATION_DATA_DIR": str(tmp_path),
                                        "TCSTATION_TILED_API_KEY": KEY})


@pytest.mark.parametrize("variable, value, message", [
    ("TCSTATION_TILED_URI", "tiled.lab:8000", "expected http"),
    ("TCSTATION_TILED_URI", "ftp://tiled.lab", "expected http"),
    ("TCSTATION_TILED_PORT", "eighty", "expected an integer"),
    ("TCSTATION_TILED_PORT", "70000", "expected 1..65535"),
    ("TCSTATION_TILED_CATALOG", "mysql://db/catalog", "sqlite, postgresql"),
    ("TCSTATION_TILED_TABULAR", "parquet:///x", "duckdb, sqlite"),
])
def test_bad_values_are_refused_with_the_variable_and_the_value(tmp_path, variable, value,
                                                                message):
    environment = {"TCSTATION_DATA_DIR": str(tmp_path), variable: value}
    if variable == "TCSTATION_TILED_URI":
        environment["TCSTATION_TILED_API_KEY"] = KEY
    with pytest.raises(StorageConfigError, match=message) as error:
        StorageConfig.from_environment(environment)
    assert variable in str(error.value)


def test_a_postgresql_catalog_is_accepted(tmp_path):
    config = StorageConfig.from_environment({
        "TCSTATION_DATA_DIR": str(tmp_path),
        "TCSTATION_TILED_CATALOG": "postgresql://tiled@db.lab:5432/catalog",
        "TCSTATION_TILED_TABULAR": "postgresql+asyncpg://tiled@db.lab:5432/tables",
    })
    assert config.local_catalog_uri.startswith("postgresql://")


def test_a_file_as_data_dir_and_a_non_alphanumeric_key_are_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(StorageConfigError, match="not a directory"):
        StorageConfig(data_dir=a_file)
    with pytest.raises(StorageConfigError, match="letters and digits") as error:
        StorageConfig(data_dir=tmp_path, tiled_uri="http://h", api_key="secret-with-dash")
    assert "secret-with-dash" not in str(error.value)


def test_keys_are_only_ever_shown_masked():
    assert mask_secret(KEY) == "0123…"
    assert mask_secret("short") == "…"
    assert mask_secret(None) == "<none>"
    config = StorageConfig(data_dir=Path("/data"), tiled_uri="http://tiled", api_key=KEY)
    assert KEY not in repr(config) and "0123…" in repr(config)
    assert KEY not in str(config)


def test_the_api_key_is_made_once_private_and_kept(tmp_path):
    config = StorageConfig(data_dir=tmp_path / "data")
    key = load_or_create_api_key(config)
    assert len(key) == 64 and key.isalnum()
    assert config.api_key_file.stat().st_mode & 0o777 == 0o600
    assert load_or_create_api_key(config) == key
    assert (config.data_dir / ".gitignore").read_text().splitlines()[-1] == "*"
    assert config.data_dir.stat().st_mode & 0o777 == 0o700
    assert not list(config.data_dir.glob(".tiled_api_key.*.tmp"))


def test_a_loose_key_file_is_tightened_and_a_bad_one_refused(tmp_path):
    config = StorageConfig(data_dir=tmp_path)
    prepare_data_dir(config)
    config.api_key_file.write_text(KEY + "\n")
    config.api_key_file.chmod(0o644)
    assert load_or_create_api_key(config) == KEY
    assert config.api_key_file.stat().st_mode & 0o777 == 0o600
    config.api_key_file.write_text("not a key!\n")
    with pytest.raises(StorageConfigError, match="delete it"):
        load_or_create_api_key(config)


def test_an_empty_sqlite_file_is_no_catalog(tmp_path):
    from tcstation.storage.server import sqlite_catalog_exists

    catalog = tmp_path / "catalog.db"
    uri = f"sqlite:///{catalog}"
    assert not sqlite_catalog_exists(uri)
    catalog.touch()  # left by a server stopped during its first initialisation
    assert not sqlite_catalog_exists(uri)
    catalog.write_bytes(b"SQLite format 3\x00")
    assert sqlite_catalog_exists(uri)
    assert not sqlite_catalog_exists("postgresql://localhost/tcstation")
