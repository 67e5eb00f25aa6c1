"""The RunEngine callback that spools every document and writes it to Tiled off the plan's thread.

In the RunEngine's thread, :class:`LiveTiledWriter` does only what must not be
lost: it appends the document to the run's spool file and puts the line on a
queue (0.1-0.2 ms, mostly waiting for the interpreter lock while the worker
runs). A worker thread takes the lines off the queue
and feeds them to a ``bluesky_tiled_plugins.TiledWriter`` created per run.

Why a worker thread: a write costs one HTTP request (about 40 ms on the
station's 2-core PC with the server on the same machine). In the RunEngine's
thread it would add those 40 ms to a point, and a dead server would hold the
plan for the Tiled client's retry window (45 s by default) at every write.

Batches by count and by time: TiledWriter batches by count only (events
reach Tiled when ``batch_size`` of them have gathered, or at the stop). One
append costs the Tiled server about 50 ms of CPU whatever its size (52 ms an
event at one event per append, 6 ms at ten), so the worker hands TiledWriter
batches of ``batch_size`` (10) events and, when fewer have gathered,
writes them anyway ``flush_seconds`` (0.5 s) after the first of them
arrived. A ramp's point is then readable in Tiled within about a second of
its emission, and a fast scan costs the server a tenth of what it did
(``benchmarks/tiled_server_cpu.py``). The time-based flush is the one place
that reaches into TiledWriter's per-run writer (its event cache; what its
own stop does first); :func:`flush_cached_events` checks it at each run.
A worker that falls behind anyway writes the run in one pass at its stop
(see ``max_lag`` below).

What can go wrong, and what happens:

- Tiled does not answer at a run's start (one health check, 2 s): the run is
  kept in the spool only, as pending.
- A write fails mid-run (the client has retried for its retry window): the
  rest of the run goes to the spool only; the run stays pending, and
  ``tcstation replay`` rewrites it from the spool.
- The worker falls behind by more than ``max_lag`` seconds (a fast scan
  produces points faster than one request each can follow): live writing of
  that run stops and the whole run is written in one pass after its stop
  (the replay code path, with the lock this writer already holds).
- After a run's stop, the worker checks that Tiled holds the stop and every
  event once; only then is the spool file moved to ``done/``.
"""

from __future__ import annotations

import enum
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bluesky_tiled_plugins import TiledWriter
from bluesky_tiled_plugins.writing.tiled_writer import RunNormalizer
from tiled.client.container import Container

from tcstation.storage.replay import ReplayOutcome, replay_run
from tcstation.storage.spool import DocumentSpool, RunLock, SpoolError, decode_document
from tcstation.storage.tiled import (
    RunContents,
    TiledRunState,
    run_state_detail,
    tiled_answers,
    written_run_state,
)

logger = logging.getLogger(__name__)

LIVE_BATCH_SIZE = 10
LIVE_FLUSH_SECONDS = 0.5
DEFAULT_MAX_LAG = 10.0
DEFAULT_PROBE_TIMEOUT = 2.0


class RunOutcome(enum.Enum):
    """Where a run stands for this writer."""

    LIVE = "being written live"
    DEFERRED = "live writing stopped (too fast); to be written at its stop"
    FAILED = "Tiled failed during the run; pending in the spool"
    OFFLINE = "Tiled did not answer at its start; pending in the spool"
    WRITTEN = "complete in Tiled; done"
    PENDING = "pending in the spool"

    @property
    def finished(self) -> bool:
        return self in (RunOutcome.WRITTEN, RunOutcome.PENDING)


@dataclass
class _RunProgress:
    uid: str
    outcome: RunOutcome
    writer: TiledWriter | None = None
    reason: str = ""
    run_writer: Any = None
    flush_at: float | None = None


class _CapturingNormalizer(RunNormalizer):
    """TiledWriter's default normalizer, which also hands over the per-run writer it feeds."""

    def __init__(self, *, run: _RunProgress, **kwargs: Any):
        super().__init__(**kwargs)
        self._run = run

    def subscribe(self, func, name="all"):
        self._run.run_writer = func
        return super().subscribe(func, name)


def cached_event_count(run_writer: Any) -> int:
    """Events TiledWriter's per-run writer holds, not yet appended to Tiled."""
    return sum(len(cache) for cache in run_writer._internal_data_cache.values())


def flush_cached_events(run_writer: Any) -> int:
    """Append the events a per-run writer holds, as its own stop does first; returns how many.

    Raises
    ------
    RuntimeError
        If this bluesky-tiled-plugins keeps its event cache elsewhere.
    """
    try:
        caches, descriptors = run_writer._internal_data_cache, run_writer._desc_nodes
        write = run_writer._write_internal_data
    except AttributeError as error:
        raise RuntimeError(f"this bluesky-tiled-plugins has no event cache where the writer "
                           f"expects it ({error}); use batch_size=1") from None
    written = 0
    for stream, cache in caches.items():
        if cache:
            write(cache, desc_node=descriptors[stream])
            written += len(cache)
            cache.clear()
    return written


@dataclass(frozen=True)
class _Queued:
    enqueued: float
    uid: str
    name: str
    line: str


class LiveTiledWriter:
    """Spool every document at once; write it to Tiled from a worker thread.

    Subscribe an instance to a RunEngine: ``RE.subscribe(writer)``.

    Parameters
    ----------
    spool
        Where documents are made durable first.
    connect
        Returns a writable Tiled client; called on the worker thread when the
        first run starts, and again after a failure.
    uri
        The Tiled address, for the health check at each run's start; None
        when there is no server (every run then stays in the spool).
    batch_size
        Events per append to Tiled while a run is written live.
    flush_seconds
        Longest time an event waits for its batch to fill before it is
        appended anyway (ignored at ``batch_size=1``).
    max_lag
        Seconds the worker may fall behind the plan before a run's live
        writing is given up for one write at its stop.
    probe_timeout
        Seconds the health check at a run's start waits for Tiled.
    """

    def __init__(self, spool: DocumentSpool, connect: Callable[[], Container], uri: str | None, *,
                 batch_size: int = LIVE_BATCH_SIZE, flush_seconds: float = LIVE_FLUSH_SECONDS,
                 max_lag: float = DEFAULT_MAX_LAG,
                 probe_timeout: float = DEFAULT_PROBE_TIMEOUT):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        if not flush_seconds > 0:
            raise ValueError(f"flush_seconds must be > 0 s, not {flush_seconds}")
        if max_lag <= 0:
            raise ValueError(f"max_lag must be > 0 s, not {max_lag}")
        self.spool = spool
        self.uri = uri
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_lag = max_lag
        self.probe_timeout = probe_timeout
        self._connect = connect
        self._client: Container | None = None
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._locks: dict[str, RunLock] = {}
        self._progress: dict[str, _RunProgress] = {}
        self._outcomes: dict[str, RunOutcome] = {}
        self._state = threading.Condition()
        self._outstanding = 0
        self._unflushed = 0
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="tcstation-tiled-writer",
                                        daemon=True)
        self._worker.start()

    # ----- RunEngine thread -----

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if self._closed:
            raise RuntimeError("this LiveTiledWriter is closed; documents would not be kept")
        if name == "start":
            lock = self.spool.try_lock(doc["uid"])
            if lock is None:
                raise SpoolError(f"the spool lock of new run {doc['uid']} is held elsewhere")
            try:
                uid, line = self.spool.append(name, doc)
            except BaseException:
                lock.release()
                raise
            with self._state:
                self._locks[uid] = lock
                self._outcomes[uid] = RunOutcome.LIVE
        else:
            uid, line = self.spool.append(name, doc)
        with self._state:
            self._outstanding += 1
        self._queue.put(_Queued(time.monotonic(), uid, name, line))

    # ----- any thread -----

    def outcome(self, uid: str) -> RunOutcome | None:
        """Where run ``uid`` stands (None if this writer never saw it)."""
        with self._state:
            return self._outcomes.get(uid)

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until every document received so far has been dealt with (events appended).

        Returns
        -------
        bool
            True if the worker caught up within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._state:
            while self._outstanding or self._unflushed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._state.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Let the worker catch up (at most ``timeout`` s), then stop it and close the spool.

        Whatever the worker has not finished stays pending in the spool (its
        locks go with the process), for ``tcstation replay``.

        Returns
        -------
        bool
            True if every document was dealt with before the worker stopped.
        """
        if self._closed:
            return True
        caught_up = self.wait_until_idle(timeout)
        self._closed = True
        self._queue.put(None)
        self._worker.join(timeout=1.0 if caught_up else 0.0)
        self.spool.close()
        if not caught_up:
            logger.warning("the Tiled writer did not catch up within %g s; unfinished runs "
                           "stay pending in %s (run `tcstation replay`)", timeout,
                           self.spool.directory)
        return caught_up

    # ----- worker thread -----

    def _work(self) -> None:
        while True:
            due = [run.flush_at for run in self._progress.values() if run.flush_at is not None]
            try:
                item = self._queue.get(timeout=max(0.0, min(due) - time.monotonic())
                                       if due else None)
            except queue.Empty:
                self._flush_due()
                continue
            if item is None:
                return
            try:
                self._process(item)
            except Exception:  # the worker must outlive any one document
                logger.exception("the Tiled writer could not handle a %r document of run %s",
                                 item.name, item.uid)
            finally:
                with self._state:
                    self._outstanding -= 1
                    self._state.notify_all()

    def _flush_due(self) -> None:
        now = time.monotonic()
        for run in list(self._progress.values()):
            if run.flush_at is not None and run.flush_at <= now:
                if run.writer is not None and run.run_writer is not None:
                    try:
                        flush_cached_events(run.run_writer)
                    except Exception as error:  # as a failed write: the spool has it all
                        self._write_failed(run, "event", error)
                self._track_cache(run)

    def _track_cache(self, run: _RunProgress) -> None:
        """Note when the events the run's writer holds must be appended, if it holds any."""
        holding = (run.writer is not None and run.run_writer is not None
                   and cached_event_count(run.run_writer) > 0)
        if not holding:
            run.flush_at = None
        elif run.flush_at is None:
            run.flush_at = time.monotonic() + self.flush_seconds
        unflushed = sum(run.flush_at is not None for run in self._progress.values())
        with self._state:
            self._unflushed = unflushed
            self._state.notify_all()

    def _set_outcome(self, run: _RunProgress, outcome: RunOutcome, reason: str = "") -> None:
        run.outcome, run.reason = outcome, reason or run.reason
        with self._state:
            self._outcomes[run.uid] = outcome

    def _client_or_connect(self) -> Container:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _process(self, item: _Queued) -> None:
        if item.name == "start":
            run = self._progress[item.uid] = _RunProgress(item.uid, RunOutcome.LIVE)
            self._begin_live(run)
        run = self._progress.get(item.uid)
        if run is None:
            logger.warning("a %r document of unknown run %s; it is in the spool", item.name,
                           item.uid)
            return
        if run.outcome is RunOutcome.LIVE:
            lag = time.monotonic() - item.enqueued
            if item.name in ("event", "event_page") and lag > self.max_lag:
                run.writer = None
                self._set_outcome(run, RunOutcome.DEFERRED, f"{lag:.0f} s behind the plan")
                logger.info("run %s: writing %.0f s behind the plan; the run will be written "
                            "in one pass at its stop", item.uid[:8], lag)
            else:
                self._write(run, item)
        if item.name == "stop":
            self._finish(run)

    def _begin_live(self, run: _RunProgress) -> None:
        if self.uri is None:
            self._set_outcome(run, RunOutcome.OFFLINE, "no Tiled server in this session")
            return
        if not tiled_answers(self.uri, timeout=self.probe_timeout):
            self._set_outcome(run, RunOutcome.OFFLINE, f"no answer from {self.uri}")
            logger.warning("Tiled at %s does not answer: run %s goes to the spool only "
                           "(run `tcstation replay` once Tiled is back)", self.uri, run.uid[:8])
            return
        try:
            run.writer = TiledWriter(self._client_or_connect(), batch_size=self.batch_size,
                                     normalizer=functools.partial(_CapturingNormalizer, run=run))
        except Exception as error:  # any failure to connect means: spool only
            self._client = None
            self._set_outcome(run, RunOutcome.OFFLINE, f"cannot connect: {error}")
            logger.warning("cannot connect to Tiled at %s (%s): run %s goes to the spool only",
                           self.uri, error, run.uid[:8])

    def _write(self, run: _RunProgress, item: _Queued) -> None:
        name, doc = decode_document(item.line)
        try:
            run.writer(name, doc)
        except Exception as error:  # Tiled errors are many; the spool has it all
            self._write_failed(run, name, error)
        if name in ("event", "event_page", "stop"):
            self._track_cache(run)

    def _write_failed(self, run: _RunProgress, name: str, error: Exception) -> None:
        run.writer = None
        self._client = None
        self._set_outcome(run, RunOutcome.FAILED,
                          f"{type(error).__name__} writing a {name!r} document: {error}")
        logger.warning("Tiled failed while writing run %s (%s: %s); the rest of the run "
                       "goes to the spool only (run `tcstation replay` once Tiled is back)",
                       run.uid[:8], type(error).__name__, error)

    def _rewrite_from_spool(self, run: _RunProgress, lock: RunLock, why: str) -> None:
        """Put the run into Tiled from its spooled documents (replacing a partial copy)."""
        result = replay_run(self.spool, self._client_or_connect(), run.uid, lock=lock)
        if result.outcome in (ReplayOutcome.WRITTEN, ReplayOutcome.REWRITTEN,
                              ReplayOutcome.ALREADY_COMPLETE):
            self._set_outcome(run, RunOutcome.WRITTEN)
        else:
            self._set_outcome(run, RunOutcome.PENDING,
                              "; ".join(part for part in (why, result.detail) if part))

    def _finish(self, run: _RunProgress) -> None:
        with self._state:
            lock = self._locks.pop(run.uid)
        try:
            if run.outcome is RunOutcome.LIVE:
                contents = RunContents.from_documents(self.spool.iter_documents(run.uid))
                state = written_run_state(self._client_or_connect(), contents)
                if state is TiledRunState.COMPLETE:
                    self.spool.mark_done(run.uid)
                    self._set_outcome(run, RunOutcome.WRITTEN)
                else:
                    # Still not whole after the wait for the writes to read back (a request
                    # lost, or retried and applied twice): the spool holds the truth.
                    detail = run_state_detail(self._client_or_connect(), contents)
                    logger.info("run %s: Tiled holds it as %s after its stop (%s); writing it "
                                "again from the spool", run.uid[:8], state.value, detail)
                    self._rewrite_from_spool(run, lock, f"Tiled held the run as {state.value} "
                                             f"after its stop ({detail})")
            elif run.outcome is RunOutcome.DEFERRED:
                self._rewrite_from_spool(run, lock, "")
            else:
                self._set_outcome(run, RunOutcome.PENDING)
        except Exception as error:  # checking failed: leave it to replay
            self._client = None
            self._set_outcome(run, RunOutcome.PENDING, f"{type(error).__name__}: {error}")
        finally:
            lock.release()
            del self._progress[run.uid]
            run.flush_at = None
            self._track_cache(run)
        if run.outcome is RunOutcome.PENDING:
            logger.warning("run %s is pending in the spool (%s); `tcstation replay` writes it "
                           "to Tiled", run.uid[:8], run.reason)
