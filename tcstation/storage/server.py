"""The local Tiled server: a subprocess serving the data directory's catalog, and its launcher.

A writable Tiled needs a SQL catalog and SQL tabular storage. ``tiled serve
catalog`` would do, but it takes the key as ``--api-key KEY`` (world-readable in
``/proc/PID/cmdline``) or, from ``TILED_SINGLE_USER_API_KEY``, prints it in the
server's banner. So the subprocess runs this module's launcher instead, which
builds the same application from tiled's Python API (as
``tiled.server.SimpleTiledServer`` does in-process) with the key read from its
0600 file:

    TCSTATION_TILED_CATALOG=... TCSTATION_TILED_TABULAR=... \
        python -m tcstation.storage.server --data-dir DIR --port N

The catalog and tabular URIs travel in the environment, not the command line,
because a PostgreSQL URI may carry a password.

At most one local server runs per data directory: its address and pid are kept
in ``DATA_DIR/tiled_server.json`` and a second session reuses it.

Before it serves, the launcher puts the catalog in the station's layout
(:mod:`tcstation.storage.layout`: runs an older version kept at the root are moved
under ``raw``) and re-roots it when the data directory was moved or copied: the
catalog keeps absolute asset locations (``sqlite://localhost//DIR/tiled/tables.sqlite``,
``file://localhost/DIR/tiled/data/...``), and ``DATA_DIR/tiled/served_from`` records the
directory they were written under, so a copy's locations are rewritten to its own.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tcstation.processes import process_exists, stop_process, stop_when_orphaned
from tcstation.storage.config import (
    TILED_CATALOG_VARIABLE,
    TILED_TABULAR_VARIABLE,
    StorageConfig,
    load_or_create_api_key,
    mask_secret,
    prepare_data_dir,
)
from tcstation.storage.tiled import healthz_url, tiled_answers

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def free_tcp_port() -> int:
    """A TCP port free on 127.0.0.1 now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def key_is_accepted(uri: str, api_key: str, timeout: float = 2.0) -> bool:
    """Whether the server at ``uri`` lists its root for ``api_key`` (it is ours, and up)."""
    try:
        response = httpx.get(f"{uri}/api/v1/metadata/", timeout=timeout, trust_env=False,
                             headers={"Authorization": f"Apikey {api_key}"})
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@contextmanager
def _startup_lock(config: StorageConfig, timeout: float) -> Iterator[None]:
    """Serialise 'is a server running? if not, start one' between sessions on one data dir."""
    lock_path = config.data_dir / "tiled_server.lock"
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"another session holds {lock_path} for more than {timeout:g} s"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(descriptor)


def running_server_uri(config: StorageConfig, api_key: str) -> str | None:
    """The address of the local server already serving ``config.data_dir``, if one answers."""
    try:
        state = json.loads(config.server_state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    uri, pid = state.get("uri"), state.get("pid")
    if not isinstance(uri, str) or not isinstance(pid, int) or not process_exists(pid):
        return None
    if state.get("data_dir") != str(config.data_dir):
        # A copy of a data directory carries the original's state file (and key).
        return None
    return uri if key_is_accepted(uri, api_key) else None


class LocalTiledServer:
    """The data directory's Tiled server, run as a subprocess on 127.0.0.1.

    Parameters
    ----------
    config
        Storage configuration (local mode): data directory, catalog and
        tabular URIs, port.

    Examples
    --------
    >>> server = LocalTiledServer(config).start()   # doctest: +SKIP
    >>> client = connect(server.uri, server.api_key)  # doctest: +SKIP
    >>> server.stop()                               # doctest: +SKIP
    """

    def __init__(self, config: StorageConfig):
        if not config.uses_local_server:
            raise ValueError(f"{config!r} points at an external Tiled; there is no local server")
        self.config = config
        self.api_key = load_or_create_api_key(config)
        self.port = config.port
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise RuntimeError("the local Tiled server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.config.log_dir / "tiled-server.log"

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "tcstation.storage.server",
                "--data-dir", str(self.config.data_dir), "--port", str(port),
                "--owner-pid", str(os.getpid())]

    def environment(self) -> dict[str, str]:
        return {**os.environ,
                TILED_CATALOG_VARIABLE: self.config.local_catalog_uri,
                TILED_TABULAR_VARIABLE: self.config.local_tabular_uri}

    def start(self, timeout: float = STARTUP_TIMEOUT) -> LocalTiledServer:
        """Start the subprocess and wait until it serves; no-op if it already runs."""
        if self.process is not None and self.process.poll() is None:
            return self
        prepare_data_dir(self.config)
        self.config.log_dir.mkdir(exist_ok=True)
        if self.config.local_tabular_uri.startswith("duckdb:"):
            logger.warning("DuckDB tables: tiled 0.2.20 shares one DuckDB connection between "
                           "request threads, so reading a run while it is written can fail or "
                           "stall; prefer the default SQLite tables or PostgreSQL")
        port = self.port or free_tcp_port()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(port), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.environment(), start_new_session=True,
            )
        self.port = port
        try:
            self._wait_until_serving(timeout)
        except BaseException:
            self.stop()
            raise
        self.config.server_state_file.write_text(
            json.dumps({"uri": self.uri, "pid": self.process.pid,
                        "data_dir": str(self.config.data_dir)}) + "\n")
        logger.info("local Tiled server on %s (key %s, log %s)", self.uri,
                    mask_secret(self.api_key), self.log_path)
        return self

    def _wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the local Tiled server exited with code {self.process.returncode} before "
                    f"serving; last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if tiled_answers(self.uri, timeout=1.0):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the local Tiled server did not answer {healthz_url(self.uri)} "
                           f"within {timeout:g} s; see {self.log_path}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        tail = "\n".join(text.splitlines()[-lines:])
        return tail.replace(self.api_key, mask_secret(self.api_key))

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the subprocess (SIGTERM, then SIGKILL after ``timeout``); no-op if not running."""
        if self.process is None:
            return
        stop_process(self.process, timeout)
        try:
            state = json.loads(self.config.server_state_file.read_text())
            if state.get("pid") == self.process.pid:
                self.config.server_state_file.unlink()
        except (FileNotFoundError, json.JSONDecodeError):
            pass

    def restart(self, timeout: float = STARTUP_TIMEOUT) -> LocalTiledServer:
        """Stop, then start again on the same port (clients keep their address)."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> LocalTiledServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def ensure_local_server(
    config: StorageConfig, timeout: float = STARTUP_TIMEOUT,
) -> tuple[str, str, LocalTiledServer | None]:
    """Reuse the server already serving the data directory, or start one.

    Returns
    -------
    uri, api_key, server
        ``server`` is the started :class:`LocalTiledServer` (the caller owns it
        and stops it), or None when an already running server was reused.
    """
    api_key = load_or_create_api_key(config)
    with _startup_lock(config, timeout):
        uri = running_server_uri(config, api_key)
        if uri is not None:
            logger.info("reusing the local Tiled server on %s", uri)
            return uri, api_key, None
        server = LocalTiledServer(config).start(timeout)
        return server.uri, api_key, server


def use_write_ahead_log(sqlite_path: Path) -> None:
    """Put a SQLite file in WAL mode (a property of the file, kept across connections).

    Tiled opens its SQLite tables with no busy timeout; in the default rollback
    journal mode a live reader and the writer then fail each other with
    "database is locked" (HTTP 500, and a forced retry of the append). In WAL
    mode readers and the one writer do not block each other.
    """
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(sqlite_path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def sqlite_catalog_exists(catalog_uri: str) -> bool:
    """Whether ``catalog_uri`` names a SQLite file that holds something.

    An empty file is no catalog: a server stopped during its first initialisation (a
    startup timeout on a loaded machine) leaves one, and skipping the initialisation
    then would fail every later start with "No catalog database found".
    """
    if not catalog_uri.startswith("sqlite:///"):
        return False
    path = Path(catalog_uri.removeprefix("sqlite:///"))
    return path.is_file() and path.stat().st_size > 0


SERVED_FROM_FILENAME = "served_from"
"""In ``DATA_DIR/tiled``: the tiled directory the catalog's asset locations were written under."""


def _asset_path_prefixes(tiled_dir: Path) -> tuple[str, ...]:
    """How the catalog writes a location under ``tiled_dir``: as a file and as SQLite."""
    return (f"file://localhost{tiled_dir}/", f"sqlite://localhost/{tiled_dir}/")


def _inferred_old_tiled_dir(connection: sqlite3.Connection) -> Path | None:
    """For a catalog written before ``served_from`` existed: where its tables file was."""
    row = connection.execute("SELECT data_uri FROM assets WHERE data_uri LIKE 'sqlite://%' "
                             "AND data_uri LIKE '%/tables.sqlite' LIMIT 1").fetchone()
    if row is None:
        return None
    return Path(row[0].removeprefix("sqlite://localhost/")).parent


def reroot_assets(config: StorageConfig) -> int:
    """Rewrite asset locations written under another data directory to this one's.

    Only for the data directory's own SQLite catalog (a shared PostgreSQL catalog is
    not the directory's to rewrite). Locations outside the old tiled directory are
    left as they are.

    Returns
    -------
    int
        How many asset locations were rewritten.
    """
    if config.local_catalog_uri != f"sqlite:///{config.tiled_dir / 'catalog.db'}":
        return 0
    marker = config.tiled_dir / SERVED_FROM_FILENAME
    rewritten = 0
    if sqlite_catalog_exists(config.local_catalog_uri):
        connection = sqlite3.connect(config.local_catalog_uri.removeprefix("sqlite:///"))
        try:
            old = Path(marker.read_text().strip()) if marker.exists() else None
            old = old or _inferred_old_tiled_dir(connection)
            if old is not None and old != config.tiled_dir:
                with connection:
                    for old_prefix, new_prefix in zip(_asset_path_prefixes(old),
                                                      _asset_path_prefixes(config.tiled_dir),
                                                      strict=True):
                        rewritten += connection.execute(
                            "UPDATE assets SET data_uri = :new || substr(data_uri, :length + 1) "
                            "WHERE substr(data_uri, 1, :length) = :old",
                            {"new": new_prefix, "old": old_prefix, "length": len(old_prefix)},
                        ).rowcount
                logger.warning("the data directory was moved from %s: %d asset location(s) "
                               "of the catalog now point under %s", old.parent, rewritten,
                               config.data_dir)
        finally:
            connection.close()
    marker.write_text(f"{config.tiled_dir}\n")
    return rewritten


def serve(config: StorageConfig, port: int) -> None:
    """Build the Tiled application for the data directory and serve it (blocks until SIGTERM)."""
    import uvicorn
    from tiled.catalog import from_uri as catalog_from_uri
    from tiled.config import Authentication
    from tiled.server.app import build_app

    from tcstation.storage.layout import migrate_root_runs

    api_key = load_or_create_api_key(config)
    (config.tiled_dir / "data").mkdir(parents=True, exist_ok=True)
    if config.local_tabular_uri.startswith("sqlite:///"):
        use_write_ahead_log(Path(config.local_tabular_uri.removeprefix("sqlite:///")))
    catalog_uri = config.local_catalog_uri
    reroot_assets(config)
    # Initialising runs `tiled catalog init` in a subprocess (3 s); a restart skips it.
    catalog = catalog_from_uri(
        catalog_uri,
        writable_storage=[config.tiled_dir / "data", config.local_tabular_uri],
        init_if_not_exists=not sqlite_catalog_exists(catalog_uri),
    )
    migrate_root_runs(catalog_uri)
    app = build_app(catalog, Authentication(single_user_api_key=api_key))
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="info")




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tcstation.storage.server",
        description="Serve a tcstation data directory with Tiled on 127.0.0.1. The key is read "
                    f"from DATA_DIR/tiled_api_key; {TILED_CATALOG_VARIABLE} and "
                    f"{TILED_TABULAR_VARIABLE} choose the databases (default: files in DATA_DIR).",
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--owner-pid", type=int, default=None,
                        help="stop when this process (the parent) is gone")
    options = parser.parse_args(argv)
    if options.owner_pid is not None:
        stop_when_orphaned(options.owner_pid, "Tiled server")
    config = StorageConfig(
        data_dir=options.data_dir.resolve(),
        catalog_uri=os.environ.get(TILED_CATALOG_VARIABLE) or None,
        tabular_uri=os.environ.get(TILED_TABULAR_VARIABLE) or None,
    )
    serve(config, options.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
