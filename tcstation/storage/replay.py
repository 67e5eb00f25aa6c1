"""Replay: put the spool's pending runs into Tiled, exactly once.

For each pending run, holding its lock (so no live writer and no other replay
touches it):

1. If the spool has no stop document (the session died mid-run), one is added
   to the spool file: ``exit_status="fail"`` and a reason saying so.
2. Tiled is compared with the spool (:func:`tcstation.storage.tiled.tiled_run_state`):

   - COMPLETE (the stop is there and every stream's ``seq_num`` are exactly the
     spooled ones): nothing is written; the run is marked done.
   - ABSENT: the run is written from the spool in one pass.
   - PARTIAL (an outage cut the live write short, or a forced retry of an
     append doubled rows): the run's container is deleted and the run written
     again from the spool. Completing it in place is not possible with
     TiledWriter (it creates the run's container and its tables itself, and
     the server refuses an existing key with 409), and rewriting is what
     makes duplicates impossible.
3. The result is checked against the spool again; only then is the file moved
   to ``spool/done/``.

Why exactly once: the spool holds every document of the run once; a run is
marked done only after Tiled was seen to hold each event once plus the stop;
any crash before that leaves it pending, and the next replay starts again
from step 2, which never appends to an existing run. Running replay twice
changes nothing: the second finds no pending run.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tiled.client.container import Container

from tcstation.storage.spool import DocumentSpool, RunLock, SpoolError
from tcstation.storage.tiled import (
    BULK_BATCH_SIZE,
    RunContents,
    TiledRunState,
    delete_run,
    run_state_detail,
    tiled_run_state,
    write_run,
    written_run_state,
)

logger = logging.getLogger(__name__)


class ReplayOutcome(enum.Enum):
    WRITTEN = "written"
    REWRITTEN = "rewritten (was partial)"
    ALREADY_COMPLETE = "already complete in Tiled"
    IN_USE = "skipped: a session is writing it"
    FAILED = "failed, still pending"
    WOULD_WRITE = "would write"
    WOULD_REWRITE = "would delete the partial run and write it again"
    WOULD_MARK_DONE = "would mark done (already complete in Tiled)"

    @property
    def failed(self) -> bool:
        return self is ReplayOutcome.FAILED


@dataclass(frozen=True)
class ReplayResult:
    """What replay did (or, dry, would do) with one pending run."""

    uid: str
    plan_name: str
    event_count: int
    outcome: ReplayOutcome
    detail: str = ""


def synthesised_stop(contents: RunContents, last_time: float) -> dict[str, Any]:
    """A stop document for a run whose session ended before its own stop."""
    return {
        "uid": str(uuid.uuid4()),
        "time": last_time,
        "run_start": contents.uid,
        "exit_status": "fail",
        "reason": "tcstation replay: the session ended before this run's stop document; "
                  "this stop was added on replay",
        "num_events": {stream: len(values)
                       for stream, values in contents.seq_nums_by_stream.items()},
    }


def replay_run(spool: DocumentSpool, client: Container, uid: str, *, lock: RunLock | None = None,
               dry_run: bool = False, batch_size: int = BULK_BATCH_SIZE) -> ReplayResult:
    """Put one pending run into Tiled (see the module docstring for the steps).

    Parameters
    ----------
    spool
        The spool holding the run.
    client
        A writable Tiled client.
    uid
        The run's start uid.
    lock
        The run's lock, when the caller holds it already (the live writer
        finishing a deferred run); otherwise it is taken here, without waiting.
    dry_run
        Look, change nothing.
    batch_size
        Events per append to Tiled.

    Returns
    -------
    ReplayResult
        FAILED carries the error in ``detail``; the run is then still pending.
    """
    own_lock = lock is None
    if own_lock:
        lock = spool.try_lock(uid)
        if lock is None:
            return ReplayResult(uid, "", 0, ReplayOutcome.IN_USE)
    try:
        if not spool.is_pending(uid):
            return ReplayResult(uid, "", 0, ReplayOutcome.ALREADY_COMPLETE, "already done")
        documents = list(spool.iter_documents(uid))
        if not documents or documents[0][0] != "start":
            raise SpoolError(f"{spool.pending_path(uid)} does not begin with a start document")
        plan_name = documents[0][1].get("plan_name", "")
        contents = RunContents.from_documents(documents)
        detail = ""
        if not contents.has_stop:
            detail = "no stop document in the spool: "
            if dry_run:
                detail += "one would be added (exit_status 'fail')"
            else:
                last_time = max(doc.get("time", 0.0) for _, doc in documents)
                stop = synthesised_stop(contents, last_time)
                spool.append_to_pending(uid, "stop", stop)
                documents.append(("stop", stop))
                contents = RunContents.from_documents(documents)
                detail += "added one (exit_status 'fail')"

        def result(outcome: ReplayOutcome, text: str = detail) -> ReplayResult:
            return ReplayResult(uid, plan_name, contents.event_count, outcome, text)

        state = tiled_run_state(client, contents)
        if dry_run:
            return result({TiledRunState.ABSENT: ReplayOutcome.WOULD_WRITE,
                           TiledRunState.PARTIAL: ReplayOutcome.WOULD_REWRITE,
                           TiledRunState.COMPLETE: ReplayOutcome.WOULD_MARK_DONE}[state])
        if state is TiledRunState.COMPLETE:
            spool.mark_done(uid)
            return result(ReplayOutcome.ALREADY_COMPLETE)
        if state is TiledRunState.PARTIAL:
            delete_run(client, uid)
        write_run(client, documents, batch_size=batch_size)
        written_state = written_run_state(client, contents)
        if written_state is not TiledRunState.COMPLETE:
            return result(ReplayOutcome.FAILED,
                          f"after writing, Tiled holds the run as {written_state.value} "
                          f"({run_state_detail(client, contents)})")
        spool.mark_done(uid)
        return result(ReplayOutcome.REWRITTEN if state is TiledRunState.PARTIAL
                      else ReplayOutcome.WRITTEN)
    except Exception as error:  # a replay failure of one run must not stop the rest
        logger.warning("replay of run %s failed: %s", uid, error)
        return ReplayResult(uid, "", 0, ReplayOutcome.FAILED, f"{type(error).__name__}: {error}")
    finally:
        if own_lock:
            lock.release()


def replay_pending(spool: DocumentSpool, client: Container, *, dry_run: bool = False,
                   uids: Sequence[str] | None = None) -> list[ReplayResult]:
    """Replay every pending run (or those of ``uids``), oldest first."""
    pending = spool.pending_uids()
    selected = pending if not uids else [uid for uid in pending if uid in set(uids)]
    return [replay_run(spool, client, uid, dry_run=dry_run) for uid in selected]


def format_results(results: Sequence[ReplayResult]) -> str:
    lines = [f"{'run':<10} {'plan':<20} {'events':>7}  outcome"]
    for result in results:
        line = f"{result.uid[:8]:<10} {result.plan_name[:20]:<20} {result.event_count:>7}  "
        line += result.outcome.value
        if result.detail:
            line += f" ({result.detail})"
        lines.append(line)
    return "\n".join(lines)

