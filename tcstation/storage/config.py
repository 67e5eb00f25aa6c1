"""Where the station keeps its data, which Tiled it talks to, and the local API key.

Everything is resolved from environment variables, once, into a frozen
:class:`StorageConfig`:

``TCSTATION_DATA_DIR``
    The data directory (default: ``$XDG_DATA_HOME/tcstation``, else
    ``~/.local/share/tcstation``). It holds the local Tiled store (SQLite
    catalog, SQLite tables, array files), the API key of the local server and
    the durable document spool.
``TCSTATION_TILED_URI`` and ``TCSTATION_TILED_API_KEY``
    An external Tiled server. When set, no local server is started.
``TCSTATION_TILED_CATALOG`` and ``TCSTATION_TILED_TABULAR``
    The catalog database and the tabular (SQL) storage of the *local* server,
    e.g. ``postgresql://user@host:5432/tcstation`` for a catalog at scale.
    Defaults: SQLite files in the data directory. DuckDB (``duckdb:///...``)
    is accepted for the tables but not advised: tiled 0.2.20 shares one DuckDB
    connection between all its request threads, and a live reader polling
    while the writer appends gets errors and 30 s stalls.
``TCSTATION_TILED_PORT``
    A fixed port for the local server (default: a free port chosen at start).

Layout of the data directory::

    DATA_DIR/.gitignore          "*": nothing in here is ever committed
    DATA_DIR/tiled_api_key       the local server's key, mode 0600
    DATA_DIR/tiled/              catalog.db, tables.sqlite (WAL), data/, served_from
                                 (where the asset locations were written: a moved
                                 directory is re-rooted at the server's start)
    DATA_DIR/tiled_server.json   address, pid and data directory of the running local server
    DATA_DIR/run_engine_md/      RE.md (bluesky's PersistentDict), and its .lock
    DATA_DIR/scan_id             the last scan id handed out (tcstation.storage.run_metadata)
    DATA_DIR/logs/               the local server's log
    DATA_DIR/spool/              one JSON-lines file per run not yet in Tiled
    DATA_DIR/spool/done/         runs confirmed complete in Tiled
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

DATA_DIR_VARIABLE = "TCSTATION_DATA_DIR"
TILED_URI_VARIABLE = "TCSTATION_TILED_URI"
TILED_API_KEY_VARIABLE = "TCSTATION_TILED_API_KEY"
TILED_CATALOG_VARIABLE = "TCSTATION_TILED_CATALOG"
TILED_TABULAR_VARIABLE = "TCSTATION_TILED_TABULAR"
TILED_PORT_VARIABLE = "TCSTATION_TILED_PORT"

API_KEY_FILENAME = "tiled_api_key"
CATALOG_SCHEMES = ("sqlite", "postgresql", "postgres")
TABULAR_SCHEMES = ("duckdb", "sqlite", "postgresql", "postgres")


class StorageConfigError(ValueError):
    """A storage setting is missing, malformed or inconsistent."""


def mask_secret(secret: str | None) -> str:
    """Show a secret as its first four characters and an ellipsis.

    Parameters
    ----------
    secret
        The secret, or None.

    Returns
    -------
    str
        ``"abcd…"`` for a secret of more than eight characters, ``"…"`` for a
        shorter one (four characters would be half of it), ``"<none>"`` for None.
    """
    if not secret:
        return "<none>"
    if len(secret) <= 8:
        return "…"
    return f"{secret[:4]}…"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data directory: ``$XDG_DATA_HOME/tcstation`` or ``~/.local/share/tcstation``."""
    environ = os.environ if environ is None else environ
    xdg_data_home = environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg_data_home) if xdg_data_home else Path.home() / ".local" / "share"
    return base / "tcstation"


def _check_sql_uri(uri: str, allowed_schemes: tuple[str, ...], variable: str) -> str:
    scheme = urlparse(uri).scheme.split("+", 1)[0]
    if scheme not in allowed_schemes:
        raise StorageConfigError(
            f"{variable}={uri!r}: the scheme must be one of {', '.join(allowed_schemes)} "
            f"(for example postgresql://user@host:5432/database)"
        )
    return uri


def _check_api_key(api_key: str, variable: str) -> str:
    if not api_key.isalnum():
        raise StorageConfigError(
            f"{variable} ({mask_secret(api_key)}): a Tiled API key has only letters and digits"
        )
    return api_key


@dataclass(frozen=True)
class StorageConfig:
    """Where data go: the data directory and either an external Tiled or a local one.

    Parameters
    ----------
    data_dir
        Absolute path of the data directory (see the module docstring for its layout).
    tiled_uri
        Address of an external Tiled server, e.g. ``https://tiled.example.org``;
        None for the local server the session starts.
    api_key
        The key for the external server; None for the local server, whose key
        lives in ``data_dir / "tiled_api_key"``. Never shown in full by ``repr``.
    catalog_uri
        Catalog database of the local server; None for ``DATA_DIR/tiled/catalog.db``.
    tabular_uri
        Tabular storage of the local server; None for ``DATA_DIR/tiled/tables.sqlite``.
    port
        Port of the local server; None to pick a free one.
    """

    data_dir: Path
    tiled_uri: str | None = None
    api_key: str | None = field(default=None, repr=False)
    catalog_uri: str | None = None
    tabular_uri: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if not self.data_dir.is_absolute():
            raise StorageConfigError(f"data_dir must be an absolute path, not {self.data_dir}")
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise StorageConfigError(
                f"data directory {self.data_dir} exists but is not a directory")
        if self.tiled_uri is not None:
            parsed = urlparse(self.tiled_uri)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise StorageConfigError(
                    f"{TILED_URI_VARIABLE}={self.tiled_uri!r}: expected http(s)://host[:port][/path]"
                )
            if not self.api_key:
                raise StorageConfigError(
                    f"{TILED_URI_VARIABLE} is set but {TILED_API_KEY_VARIABLE} is not: "
                    "the station writes unattended and needs an API key for the external Tiled"
                )
            if self.catalog_uri or self.tabular_uri or self.port:
                raise StorageConfigError(
                    f"{TILED_CATALOG_VARIABLE}, {TILED_TABULAR_VARIABLE} and {TILED_PORT_VARIABLE} "
                    f"configure the local server; they make no sense with {TILED_URI_VARIABLE}"
                )
        elif self.api_key is not None:
            raise StorageConfigError(
                f"{TILED_API_KEY_VARIABLE} is set without {TILED_URI_VARIABLE}: the local server "
                f"uses its own key, kept in {self.data_dir / API_KEY_FILENAME}"
            )
        if self.api_key is not None:
            _check_api_key(self.api_key, TILED_API_KEY_VARIABLE)
        if self.catalog_uri is not None:
            _check_sql_uri(self.catalog_uri, CATALOG_SCHEMES, TILED_CATALOG_VARIABLE)
        if self.tabular_uri is not None:
            _check_sql_uri(self.tabular_uri, TABULAR_SCHEMES, TILED_TABULAR_VARIABLE)
        if self.port is not None and not 1 <= self.port <= 65535:
            raise StorageConfigError(f"{TILED_PORT_VARIABLE}={self.port}: expected 1..65535")

    def __repr__(self) -> str:
        return (
            f"StorageConfig(data_dir={str(self.data_dir)!r}, tiled_uri={self.tiled_uri!r}, "
            f"api_key={mask_secret(self.api_key)!r}, catalog_uri={self.catalog_uri!r}, "
            f"tabular_uri={self.tabular_uri!r}, port={self.port!r})"
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> StorageConfig:
        """Resolve the configuration from ``TCSTATION_*`` environment variables.

        Parameters
        ----------
        environ
            The environment to read (default: ``os.environ``).

        Raises
        ------
        StorageConfigError
            With the offending variable and value (API keys masked).
        """
        environ = os.environ if environ is None else environ

        def read(variable: str) -> str | None:
            value = environ.get(variable, "").strip()
            return value or None

        data_dir_text = read(DATA_DIR_VARIABLE)
        data_dir = (Path(data_dir_text).expanduser() if data_dir_text
                    else default_data_dir(environ))
        port_text = read(TILED_PORT_VARIABLE)
        try:
            port = int(port_text) if port_text is not None else None
        except ValueError:
            raise StorageConfigError(
                f"{TILED_PORT_VARIABLE}={port_text!r}: expected an integer port number"
            ) from None
        return cls(
            data_dir=data_dir.resolve(),
            tiled_uri=read(TILED_URI_VARIABLE),
            api_key=read(TILED_API_KEY_VARIABLE),
            catalog_uri=read(TILED_CATALOG_VARIABLE),
            tabular_uri=read(TILED_TABULAR_VARIABLE),
            port=port,
        )

    @property
    def uses_local_server(self) -> bool:
        return self.tiled_uri is None

    @property
    def api_key_file(self) -> Path:
        return self.data_dir / API_KEY_FILENAME

    @property
    def tiled_dir(self) -> Path:
        return self.data_dir / "tiled"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def server_state_file(self) -> Path:
        return self.data_dir / "tiled_server.json"

    @property
    def local_catalog_uri(self) -> str:
        return self.catalog_uri or f"sqlite:///{self.tiled_dir / 'catalog.db'}"

    @property
    def local_tabular_uri(self) -> str:
        return self.tabular_uri or f"sqlite:///{self.tiled_dir / 'tables.sqlite'}"


def private_directory(path: Path) -> Path:
    """Make ``path`` a directory only its owner can enter: mode 0700 from its creation.

    Missing parents are created as usual (they are not the data directory). An
    existing directory that others can read or enter is tightened to 0700, with
    a warning, like a loose key file.
    """
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return private_directory(path)
    else:
        # mkdir's mode passes through the umask; the data directory must be exactly 0700.
        path.chmod(0o700)
        return path
    if not path.is_dir():
        raise StorageConfigError(f"data directory {path} exists but is not a directory")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("data directory %s had mode %o; tightening it to 700", path, mode)
        path.chmod(0o700)
    return path


def prepare_data_dir(config: StorageConfig) -> Path:
    """Create the data directory (mode 0700) with a ``.gitignore`` that ignores everything.

    The ``.gitignore`` guards against the key and the data being committed when a
    user points ``TCSTATION_DATA_DIR`` inside a work tree.
    """
    private_directory(config.data_dir)
    gitignore = config.data_dir / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# tcstation data: local database, API key, spool\n*\n")
    return config.data_dir


def load_or_create_api_key(config: StorageConfig) -> str:
    """The local server's API key: read from its 0600 file, created on first use.

    Parameters
    ----------
    config
        The storage configuration; the key lives in ``config.api_key_file``.

    Returns
    -------
    str
        A 64-character hexadecimal key (``secrets.token_hex(32)``).

    Raises
    ------
    StorageConfigError
        If the file exists but does not hold a valid key.
    """
    prepare_data_dir(config)
    path = config.api_key_file
    if not path.exists():
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("API key file %s had mode %o; tightening it to 600", path, mode)
        path.chmod(0o600)
    api_key = path.read_text().strip()
    if not api_key or not api_key.isalnum():
        raise StorageConfigError(
            f"{path} does not hold a valid API key ({mask_secret(api_key)}); "
            "delete it to have a new one generated"
        )
    return api_key


def _create_key_file(path: Path) -> None:
    """Write a new key to a private temporary file and link it into place.

    ``os.link`` fails if ``path`` exists, so when two sessions start at once
    exactly one key wins and neither ever reads a half-written file.
    """
    api_key = secrets.token_hex(32)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(api_key + "\n")
            key_file.flush()
            os.fsync(key_file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("generated the local Tiled API key %s in %s", mask_secret(api_key), path)
