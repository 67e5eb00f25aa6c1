"""``RE.md`` kept in the data directory, and scan ids that keep counting across sessions.

bluesky's own answer for metadata that outlives a session is ``RE.md =
PersistentDict(directory)`` (one msgpack file per key, via zict). It is not meant for two
processes at once (its docstring says so: each keeps its own copy in memory and writes
it back at exit), and the station has two: an IPython session and the queueserver's
worker may share one data directory. So the scan id does not come from ``RE.md`` alone:
:class:`ScanIdCounter`, the RunEngine's ``scan_id_source``, hands out the next id from a
counter file under an exclusive lock (``fcntl.flock``), never less than ``RE.md``'s own
``scan_id`` + 1, so two sessions never get the same id and a restart goes on counting.

Layout in the data directory::

    DATA_DIR/run_engine_md/     RE.md (bluesky.utils.PersistentDict)
    DATA_DIR/scan_id            the last scan id handed out (text), guarded by flock
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bluesky.utils import PersistentDict

METADATA_DIRNAME = "run_engine_md"
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


def persistent_run_metadata(data_dir: Path) -> tuple[PersistentDict, ScanIdCounter]:
    """``RE.md`` and the ``scan_id_source`` for a session on the data directory ``data_dir``.

    Returns
    -------
    tuple
        A ``bluesky.utils.PersistentDict`` in ``DATA_DIR/run_engine_md`` and the
        :class:`ScanIdCounter` of ``DATA_DIR/scan_id``.
    """
    directory = Path(data_dir) / METADATA_DIRNAME
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return PersistentDict(str(directory)), ScanIdCounter(Path(data_dir) / SCAN_ID_FILENAME)
