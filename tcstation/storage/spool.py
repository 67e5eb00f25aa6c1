"""The durable spool: every document of every run, on local disk, before Tiled sees it.

One JSON-lines file per run, ``DATA_DIR/spool/<uid>.jsonl``, one
``{"name": ..., "doc": ...}`` per line (the format of bluesky's
``JSONLinesWriter``). Each line is flushed to the operating system when it is
written, so a crash of the session loses nothing; ``fsync`` runs at the start
and stop documents and at most ``fsync_interval`` seconds apart in between, so
a power cut loses at most those seconds of a running run and nothing of a
finished one.

A run's state is where its file is:

``spool/<uid>.jsonl``
    pending: not confirmed complete in Tiled (being written live, or waiting
    for ``tcstation replay``);
``spool/done/<uid>.jsonl``
    done: Tiled holds the run completely (checked, not assumed).

``spool/<uid>.lock`` is held (``flock``) by whoever is writing the run to Tiled:
the live writer from the start document until it has finished with the run,
or replay. The operating system drops the lock when its process dies, so a
crashed session never leaves a run locked.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from event_model import NumpyEncoder

logger = logging.getLogger(__name__)

DEFAULT_FSYNC_INTERVAL = 5.0


class SpoolError(RuntimeError):
    """A spool file is unreadable or inconsistent."""


def encode_document(name: str, doc: dict[str, Any]) -> str:
    """One spool line (without newline); numpy values become plain JSON numbers and lists."""
    return json.dumps({"name": name, "doc": doc}, cls=NumpyEncoder, separators=(",", ":"))


def decode_document(line: str) -> tuple[str, dict[str, Any]]:
    record = json.loads(line)
    return record["name"], record["doc"]


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``spool/<uid>.lock``.

    Use :meth:`DocumentSpool.try_lock`; release with :meth:`release` (idempotent).
    """

    def __init__(self, path: Path, descriptor: int):
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@dataclass(frozen=True)
class SpooledRun:
    """A summary of one spooled run.

    Parameters
    ----------
    uid
        The run's start uid.
    path
        Its spool file.
    plan_name
        ``start["plan_name"]``, or "" if absent.
    start_time
        ``start["time"]`` (seconds since the epoch).
    event_count
        Number of events in the file.
    has_stop
        Whether the file ends with the stop document.
    done
        Whether the run is in ``spool/done/``.
    """

    uid: str
    path: Path
    plan_name: str
    start_time: float
    event_count: int
    has_stop: bool
    done: bool


@dataclass
class _OpenRunFile:
    file: IO[str]
    last_fsync: float


class DocumentSpool:
    """Append documents to per-run JSON-lines files; list, read, lock and retire runs.

    Parameters
    ----------
    directory
        The spool directory (``DATA_DIR/spool``); created if missing.
    fsync_interval
        Longest time in seconds between two ``fsync`` of a running run's file.

    Notes
    -----
    :meth:`append` is called from the RunEngine's thread only. The other
    methods may be called from any thread or process.
    """

    def __init__(self, directory: Path, fsync_interval: float = DEFAULT_FSYNC_INTERVAL):
        if fsync_interval < 0:
            raise ValueError(f"fsync_interval must be >= 0 s, not {fsync_interval}")
        self.directory = Path(directory)
        self.done_directory = self.directory / "done"
        self.done_directory.mkdir(parents=True, exist_ok=True)
        self.fsync_interval = fsync_interval
        self._open_runs: dict[str, _OpenRunFile] = {}
        self._run_by_descriptor: dict[str, str] = {}
        self._run_by_resource: dict[str, str] = {}
        self._guard = threading.Lock()

    def pending_path(self, uid: str) -> Path:
        return self.directory / f"{uid}.jsonl"

    def done_path(self, uid: str) -> Path:
        return self.done_directory / f"{uid}.jsonl"

    def lock_path(self, uid: str) -> Path:
        return self.directory / f"{uid}.lock"

    # ----- writing (RunEngine thread) -----

    def run_of(self, name: str, doc: dict[str, Any]) -> str:
        """The start uid of the run a document belongs to."""
        if name == "start":
            return doc["uid"]
        if name in ("stop", "descriptor"):
            return doc["run_start"]
        if name in ("event", "event_page", "stream_datum"):
            return self._run_by_descriptor[doc["descriptor"]]
        if name in ("resource", "stream_resource"):
            if doc.get("run_start"):
                return doc["run_start"]
        elif name in ("datum", "datum_page"):
            resource = doc["resource"]
            resource = resource[0] if isinstance(resource, list) else resource
            if resource in self._run_by_resource:
                return self._run_by_resource[resource]
        if len(self._open_runs) == 1:
            return next(iter(self._open_runs))
        raise SpoolError(f"cannot tell which run a {name!r} document belongs to "
                         f"({len(self._open_runs)} runs open)")

    def append(self, name: str, doc: dict[str, Any]) -> tuple[str, str]:
        """Write one document to its run's file.

        Returns
        -------
        uid, line
            The run's uid and the JSON line written (what a reader of the
            spool will decode).

        Raises
        ------
        SpoolError, OSError
            If the document cannot be placed or written: the data would not be
            durable, which the plan must hear about.
        """
        uid = self.run_of(name, doc)
        line = encode_document(name, doc)
        if name == "start":
            if uid in self._open_runs or self.pending_path(uid).exists():
                raise SpoolError(f"run {uid} is already in the spool")
            file = open(self.pending_path(uid), "x", encoding="utf-8")  # noqa: SIM115
            self._open_runs[uid] = _OpenRunFile(file, last_fsync=0.0)
        elif name == "descriptor":
            self._run_by_descriptor[doc["uid"]] = uid
        elif name in ("resource", "stream_resource"):
            self._run_by_resource[doc["uid"]] = uid
        open_run = self._open_runs.get(uid)
        if open_run is None:
            raise SpoolError(f"a {name!r} document of run {uid}, which is not open in the spool")
        open_run.file.write(line + "\n")
        open_run.file.flush()
        now = time.monotonic()
        if name in ("start", "stop") or now - open_run.last_fsync >= self.fsync_interval:
            os.fsync(open_run.file.fileno())
            open_run.last_fsync = now
        if name == "start":
            _fsync_directory(self.directory)
        if name == "stop":
            open_run.file.close()
            del self._open_runs[uid]
            self._forget(uid)
        return uid, line

    def _forget(self, uid: str) -> None:
        for mapping in (self._run_by_descriptor, self._run_by_resource):
            for key in [key for key, run in mapping.items() if run == uid]:
                del mapping[key]

    def close(self) -> None:
        """Flush, fsync and close the files of runs still open (their stop never came)."""
        for uid, open_run in list(self._open_runs.items()):
            open_run.file.flush()
            os.fsync(open_run.file.fileno())
            open_run.file.close()
            del self._open_runs[uid]
            self._forget(uid)

    # ----- bookkeeping (any thread, any process) -----

    def try_lock(self, uid: str) -> RunLock | None:
        """Take the run's lock without waiting; None if someone else holds it."""
        descriptor = os.open(self.lock_path(uid), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        return RunLock(self.lock_path(uid), descriptor)

    def pending_uids(self) -> list[str]:
        """Uids of the pending runs, oldest file first."""
        paths = sorted(self.directory.glob("*.jsonl"), key=lambda path: path.stat().st_mtime)
        return [path.stem for path in paths]

    def is_pending(self, uid: str) -> bool:
        return self.pending_path(uid).exists()

    def is_done(self, uid: str) -> bool:
        return self.done_path(uid).exists()

    def iter_documents(self, uid: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The documents of a run, in the order they were written.

        A last line cut short by a crash is skipped with a warning; a bad line
        anywhere else is corruption and raises :class:`SpoolError`.
        """
        path = self.pending_path(uid) if self.is_pending(uid) else self.done_path(uid)
        with open(path, encoding="utf-8") as file:
            lines = file.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, line in enumerate(lines, start=1):
            try:
                yield decode_document(line)
            except (json.JSONDecodeError, KeyError) as error:
                if number == len(lines):
                    logger.warning("%s: ignoring a last line cut short (%s)", path, error)
                    return
                raise SpoolError(f"{path}, line {number}: {error}") from error

    def summary(self, uid: str) -> SpooledRun:
        plan_name, start_time, event_count, has_stop = "", 0.0, 0, False
        for name, doc in self.iter_documents(uid):
            if name == "start":
                plan_name, start_time = doc.get("plan_name", ""), doc.get("time", 0.0)
            elif name == "event":
                event_count += 1
            elif name == "event_page":
                event_count += len(doc["seq_num"])
            elif name == "stop":
                has_stop = True
        done = not self.is_pending(uid)
        path = self.done_path(uid) if done else self.pending_path(uid)
        return SpooledRun(uid, path, plan_name, start_time, event_count, has_stop, done)

    def append_to_pending(self, uid: str, name: str, doc: dict[str, Any]) -> None:
        """Append a document to a pending run's file (replay adds a missing stop); fsync.

        A last line cut short by a crash is cut off first, so that the new
        document starts a line of its own.
        """
        path = self.pending_path(uid)
        content = path.read_bytes()
        if content and not content.endswith(b"\n"):
            with open(path, "r+b") as file:
                file.truncate(content.rfind(b"\n") + 1)
        with open(path, "a", encoding="utf-8") as file:
            file.write(encode_document(name, doc) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def prune_done(self, older_than: float) -> list[str]:
        """Delete the files of done runs last written more than ``older_than`` seconds ago.

        Returns
        -------
        list of str
            The uids whose files were deleted.
        """
        if older_than < 0:
            raise ValueError(f"older_than must be >= 0 s, not {older_than}")
        cutoff = time.time() - older_than
        pruned = []
        for path in self.done_directory.glob("*.jsonl"):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                pruned.append(path.stem)
        return pruned

    def mark_done(self, uid: str) -> None:
        """Move a run's file to ``done/`` (atomic rename, then fsync of both directories).

        Call it holding the run's lock, once Tiled is checked to hold the run
        completely. The lock file is removed too: a later holder of a lock on
        the unlinked file would find the run no longer pending and do nothing.
        """
        with self._guard:
            os.replace(self.pending_path(uid), self.done_path(uid))
            _fsync_directory(self.done_directory)
            _fsync_directory(self.directory)
            self.lock_path(uid).unlink(missing_ok=True)
