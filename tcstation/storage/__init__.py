"""Storage of the station's runs in Tiled, with a local durable spool in front.

One call gives a session its storage::

    storage = open_storage()            # config from TCSTATION_* variables
    storage.subscribe(RE)               # every document: spool, then Tiled
    run = latest_run(storage.runs, plan_name="count")
    data = read_stream(run)             # xarray.Dataset of the primary stream
    storage.close()                     # let the writer catch up, stop the local server

Without ``TCSTATION_TILED_URI``, a local Tiled server (SQLite catalog, SQLite
tables, under ``TCSTATION_DATA_DIR``) is reused if one already serves the data
directory, or started and owned by this session. Runs that could not reach
Tiled stay in ``DATA_DIR/spool`` until ``tcstation replay`` (:func:`tcstation.cli.replay_main`)
puts them in, exactly once.

The catalog's layout (:mod:`tcstation.storage.layout`): runs under ``raw`` (a
``CatalogOfBlueskyRuns``: ``storage.runs``), derived Tc tables under ``derived``
(``storage.derived``); the session creates both if missing, on the local server and on
an external one alike.

The pieces live in ``tcstation.storage.config`` (configuration, API key),
``server`` (the local server), ``spool`` (the spool), ``layout`` (the containers),
``lookup`` (a run from ``latest``, a scan id or a uid prefix),
``writer`` (the RunEngine callback), ``replay`` (replay) and
``tiled`` (Tiled helpers); the names a session needs are re-exported here.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from typing import Any

import pandas
import xarray
from bluesky import RunEngine
from tiled.client.container import Container
from tiled.queries import Key

from tcstation.storage.config import (
    StorageConfig,
    StorageConfigError,
    load_or_create_api_key,
    mask_secret,
    prepare_data_dir,
)
from tcstation.storage.layout import (
    DERIVED_KEY,
    RUNS_KEY,
    derived_container,
    ensure_layout,
    runs_container,
)
from tcstation.storage.lookup import RunLookupError, resolve_run
from tcstation.storage.replay import ReplayOutcome, ReplayResult, replay_pending
from tcstation.storage.server import LocalTiledServer, ensure_local_server
from tcstation.storage.spool import DocumentSpool, SpooledRun
from tcstation.storage.tiled import connect
from tcstation.storage.writer import (
    DEFAULT_MAX_LAG,
    LIVE_BATCH_SIZE,
    LiveTiledWriter,
    RunOutcome,
)

__all__ = [
    "DERIVED_KEY",
    "RUNS_KEY",
    "DocumentSpool",
    "LiveTiledWriter",
    "LocalTiledServer",
    "ReplayOutcome",
    "ReplayResult",
    "RunLookupError",
    "RunOutcome",
    "SpooledRun",
    "StorageConfig",
    "StorageConfigError",
    "StorageSession",
    "connect_runs",
    "derived_container",
    "ensure_layout",
    "find_runs",
    "latest_run",
    "load_or_create_api_key",
    "mask_secret",
    "open_storage",
    "read_stream",
    "replay_pending",
    "resolve_run",
    "run_by_uid",
    "runs_container",
]

logger = logging.getLogger(__name__)

Document = dict[str, Any]


class StorageSession:
    """A session's storage: the writer callback, a Tiled client, the local server it owns.

    Make one with :func:`open_storage`.

    Parameters
    ----------
    config
        The resolved configuration.
    uri, api_key
        The Tiled server written to and read from; ``uri`` is None when the
        local server failed to start (every run then stays in the spool).
    spool
        The durable spool.
    writer
        The RunEngine callback.
    server
        The local server this session started and stops on :meth:`close`;
        None when the server is external or was already running.
    """

    def __init__(self, config: StorageConfig, uri: str | None, api_key: str, spool: DocumentSpool,
                 writer: LiveTiledWriter, server: LocalTiledServer | None = None):
        self.config = config
        self.uri = uri
        self._api_key = api_key
        self.spool = spool
        self.writer = writer
        self.server = server
        self._client: Container | None = None
        self._closed = False
        atexit.register(self.close)

    def __repr__(self) -> str:
        owner = "owned local server" if self.server is not None else "server not owned"
        return (f"StorageSession(uri={self.uri!r}, key={mask_secret(self._api_key)!r}, "
                f"data_dir={str(self.config.data_dir)!r}, {owner})")

    @property
    def client(self) -> Container:
        """A Tiled client of the catalog root, laid out (connected on first use)."""
        if self.uri is None:
            raise RuntimeError(f"no Tiled server in this session; see {self.config.log_dir}")
        if self._client is None:
            self._client = ensure_layout(connect(self.uri, self._api_key))
        return self._client

    @property
    def runs(self) -> Container:
        """The container of runs (``CatalogOfBlueskyRuns``: ``runs[-1]``, ``runs[scan_id]``)."""
        return runs_container(self.client)

    @property
    def derived(self) -> Container:
        """The container of derived tables (each names its run in ``metadata["raw_run"]``)."""
        return derived_container(self.client)

    def callbacks(self) -> list[Callable[[str, Document], None]]:
        """The callbacks to subscribe to a RunEngine (one: the spooling Tiled writer)."""
        return [self.writer]

    def subscribe(self, run_engine: RunEngine) -> list[int]:
        """Subscribe :meth:`callbacks` to ``run_engine``; returns the subscription tokens."""
        return [run_engine.subscribe(callback) for callback in self.callbacks()]

    def pending_runs(self) -> list[SpooledRun]:
        """Runs in the spool not (yet) confirmed complete in Tiled."""
        return [self.spool.summary(uid) for uid in self.spool.pending_uids()]

    def close(self, timeout: float = 30.0) -> bool:
        """Let the writer catch up (at most ``timeout`` s), then stop the owned local server.

        Returns
        -------
        bool
            True if every document reached its end (Tiled, or pending in the spool).
        """
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self.close)
        caught_up = self.writer.close(timeout)
        if self.server is not None:
            self.server.stop()
        return caught_up

    def __enter__(self) -> StorageSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_storage(config: StorageConfig | None = None, *, strict: bool = False,
                 batch_size: int = LIVE_BATCH_SIZE,
                 max_lag: float = DEFAULT_MAX_LAG) -> StorageSession:
    """Open the station's storage for a session.

    Parameters
    ----------
    config
        Default: :meth:`StorageConfig.from_environment`.
    strict
        If the local server cannot be started: raise (True), or log the error
        and keep every run in the spool for a later replay (False, so that a
        measurement can go on).
    batch_size, max_lag
        Passed to :class:`LiveTiledWriter`.

    Returns
    -------
    StorageSession
        Close it (or use it as a context manager) at the end of the session;
        it is also closed at interpreter exit.
    """
    config = config or StorageConfig.from_environment()
    prepare_data_dir(config)
    spool = DocumentSpool(config.spool_dir)
    server: LocalTiledServer | None = None
    if config.uses_local_server:
        try:
            uri, api_key, server = ensure_local_server(config)
        except (OSError, RuntimeError, TimeoutError) as error:
            if strict:
                raise
            uri, api_key = None, load_or_create_api_key(config)
            logger.error("the local Tiled server did not start (%s); every run is kept in %s "
                         "until `tcstation replay`", error, config.spool_dir)
    else:
        uri, api_key = config.tiled_uri, config.api_key

    def connect_writer() -> Container:
        return connect_runs(uri, api_key)

    writer = LiveTiledWriter(spool, connect_writer, uri, batch_size=batch_size, max_lag=max_lag)
    return StorageSession(config, uri, api_key, spool, writer, server)


def connect_runs(uri: str, api_key: str) -> Container:
    """The runs container of the Tiled at ``uri``, its layout created if missing.

    What the writer and replay write into: a ``CatalogOfBlueskyRuns`` client.
    """
    return runs_container(ensure_layout(connect(uri, api_key)))


def find_runs(client: Container, plan_name: str | None = None,
              **start_metadata: Any) -> Container:
    """Runs whose start document matches, newest first.

    Parameters
    ----------
    client
        The container of runs (e.g. ``StorageSession.runs``).
    plan_name
        ``start["plan_name"]``, e.g. ``"count"``.
    **start_metadata
        Further equalities on start-document keys, e.g. ``sample="mg_mgo"``.
    """
    results = client
    if plan_name is not None:
        results = results.search(Key("start.plan_name") == plan_name)
    for key, value in start_metadata.items():
        results = results.search(Key(f"start.{key}") == value)
    return results.sort(("start.time", -1))


def latest_run(client: Container, plan_name: str | None = None,
               **start_metadata: Any) -> Container | None:
    """The most recent run (matching ``plan_name`` and ``start_metadata``), or None."""
    runs = find_runs(client, plan_name, **start_metadata)
    for run in runs.values():
        return run
    return None


def run_by_uid(client: Container, uid: str) -> Container:
    """The run with start uid ``uid`` (KeyError, with the uid, if Tiled has none)."""
    if uid not in client:
        raise KeyError(f"no run {uid} in Tiled at {client.uri}; if it is pending in the spool, "
                       "`tcstation replay` puts it there")
    return client[uid]


def read_stream(run: Container, stream: str = "primary", *,
                as_dataframe: bool = False) -> xarray.Dataset | pandas.DataFrame:
    """Read one stream of a run: an xarray Dataset on ``time``, or a pandas DataFrame."""
    if stream not in run:
        raise KeyError(f"run {run.metadata['start']['uid']} has no stream {stream!r}; "
                       f"it has {sorted(run)}")
    dataset = run[stream].read()
    return dataset.to_dataframe() if as_dataframe else dataset
