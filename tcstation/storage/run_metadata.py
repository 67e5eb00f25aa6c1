"""``RE.md`` kept in the data directory, and scan ids that keep counting across sessions.

bluesky's own answer for metadata that outlives a session is ``RE.md =
PersistentDict(directory)`` (one msgpack file per key, via zict). It is not meant for two
processes at once (its error message says so): each keeps its own copy in memory and
writes it back at exit, and zict's file names (``key#N``, N counted per instance) let two
instances leave two files for one key, of which the next start reads either. The station
has two processes on one data directory (an IPython session and the queueserver's
worker), so:

- the first session to open ``RE.md`` owns it (an exclusive ``flock`` held until the
  session closes or exits) and has the :class:`SessionMetadata`, a PersistentDict;
- a session that finds it owned gets a plain dict, a copy of what the owner keeps, and
  says so in its log: what it sets in ``RE.md`` lasts for that session only;
- scan ids do not come from ``RE.md``: :class:`ScanIdCounter`, every session's
  ``scan_id_source``, hands out the next id from a counter file under ``flock``, never
  less than ``RE.md["scan_id"]`` + 1, so two sessions never get the same id and a
  restart goes on counting.

Layout in the data directory::

    DATA_DIR/run_engine_md/       RE.md (bluesky.utils.PersistentDict)
    DATA_DIR/run_engine_md.lock   held by the session that owns it
    DATA_DIR/scan_id              the last scan id handed out (text), guarded by flock
"""

from __future__ import annotations

import fcntl
import logging
import os
import weakref
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from bluesky.utils import PersistentDict

logger = logging.getLogger(__name__)

METADATA_DIRNAME = "run_engine_md"
METADATA_LOCK_FILENAME = "run_engine_md.lock"
SCAN_ID_FILENAME = "scan_id"


class ScanIdCounter:
    """The next scan id, from a counter file shared by every session on a data directory.

    Use it as a RunEngine's ``scan_id_source``: ``RunEngine(md, scan_id_source=counter)``.

    Parameters
    ----------
    path
        The counter file (created on first use; it holds the last id handed out).
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ScanIdCounter({str(self.path)!r})"

    def last(self) -> int:
        """The last scan id handed out (0 if none yet)."""
        try:
            return _parse(self.path.read_text(), self.path)
        except FileNotFoundError:
            return 0

    def __call__(self, md: Mapping[str, Any]) -> int:
        """Hand out the next scan id: above the last one and above ``md["scan_id"]``.

        Parameters
        ----------
        md
            The RunEngine's metadata; a ``scan_id`` set there by hand raises the count.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            text = os.read(descriptor, 64).decode()
            last = _parse(text, self.path) if text.strip() else 0
            scan_id = max(last, int(md.get("scan_id") or 0)) + 1
            os.lseek(descriptor, 0, os.SEEK_SET)
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{scan_id}\n".encode())
            os.fsync(descriptor)
            return scan_id
        finally:
            os.close(descriptor)  # releases the lock


def _parse(text: str, path: Path) -> int:
    try:
        return int(text.strip() or 0)
    except ValueError:
        raise ValueError(f"{path} holds {text.strip()[:20]!r}, not a scan id (an integer); "
                         "put the last scan id in it, or delete it to count on from "
                         "RE.md's scan_id") from None


class SessionMetadata(PersistentDict):
    """bluesky's PersistentDict, owned by this session while it holds ``lock_descriptor``.

    :meth:`close` (or the end of the process) writes every key back, then releases the
    lock, in that order, so the next owner reads what this one kept.
    """

    def __init__(self, directory: str, lock_descriptor: int):
        super().__init__(directory)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _write_back_and_release, self._file,
                                           self._cache, lock_descriptor)

    def close(self) -> None:
        """Write every key to disk and let another session own the metadata."""
        self._finalizer()


def _write_back_and_release(zfile: Any, cache: dict, lock_descriptor: int) -> None:
    try:
        zfile.update((key, PersistentDict._dump(value)) for key, value in cache.items())
    finally:
        os.close(lock_descriptor)


def read_metadata_copy(directory: Path) -> dict[str, Any]:
    """What a PersistentDict directory holds, read without opening it (the newest file per key).

    A key being rewritten at that moment (its file gone or half written) is left out.
    """
    newest: dict[str, tuple[int, str]] = {}
    for name in os.listdir(directory):
        key, _, number = name.rpartition("#")
        if key and number.isdigit() and int(number) >= newest.get(key, (-1, ""))[0]:
            newest[key] = (int(number), name)
    copy: dict[str, Any] = {}
    for key, (_, name) in newest.items():
        try:
            copy[unquote(key)] = PersistentDict._load((directory / name).read_bytes())
        except (OSError, ValueError):
            continue
    return copy


def persistent_run_metadata(data_dir: Path) -> tuple[MutableMapping, ScanIdCounter]:
    """``RE.md`` and the ``scan_id_source`` for a session on the data directory ``data_dir``.

    Returns
    -------
    tuple
        ``RE.md``: a :class:`SessionMetadata` in ``DATA_DIR/run_engine_md`` if no other
        session owns it, else a dict copy of it; and the :class:`ScanIdCounter` of
        ``DATA_DIR/scan_id``.
    """
    data_dir = Path(data_dir)
    directory = data_dir / METADATA_DIRNAME
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    counter = ScanIdCounter(data_dir / SCAN_ID_FILENAME)
    lock_descriptor = os.open(data_dir / METADATA_LOCK_FILENAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_descriptor)
        logger.warning("RE.md of %s is kept by another session; this session starts from a "
                       "copy of it, and what it sets in RE.md is not kept (scan ids still "
                       "count on: %s)", data_dir, counter.path)
        return read_metadata_copy(directory), counter
    try:
        return SessionMetadata(str(directory), lock_descriptor), counter
    except BaseException:
        os.close(lock_descriptor)
        raise
