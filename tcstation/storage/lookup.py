"""Find one run in a container of runs from what a user types: ``latest``, a scan id, a uid.

:func:`resolve_run` takes the container as an argument (the station's ``raw``, a
``CatalogOfBlueskyRuns``: ``StorageSession.runs``) and uses only Tiled searches and
sorting on the start document, never the container's own indexing, so it works wherever
the runs live (an older catalog's root too) and ignores nodes that are not runs (they have
no start document).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from tiled.queries import Key, KeyPresent, Like

NEWEST_SHOWN = 5
"""How many of the newest runs an 'unknown run' message names."""
CANDIDATES_SHOWN = 8
"""How many matching runs an 'ambiguous prefix' message names."""
PREFIX_CHARACTERS = re.compile(r"[0-9a-fA-F-]+")
"""A start uid (uuid4 text) is hexadecimal digits and dashes."""
MIN_PREFIX = 4
"""Shorter uid prefixes are refused: they match many runs in a month of data."""


class RunLookupError(LookupError):
    """A run reference that matches no run, or more than one; the message says which."""


def _newest_first(runs: Any) -> Any:
    return runs.search(KeyPresent("start.uid")).sort(("start.time", -1))


def _first(results: Any, count: int) -> list[Any]:
    found = []
    for run in results.values():
        found.append(run)
        if len(found) >= count:
            break
    return found


def describe_run(run: Any) -> str:
    """``1a2b3c4d (scan 7, transport_ramp, 2026-12-04 17:01)``: a run as a message names it."""
    start = run.metadata.get("start", {})
    when = start.get("time")
    when_text = datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M") if when else "?"
    return (f"{str(start.get('uid', '?'))[:8]} (scan {start.get('scan_id', '?')}, "
            f"{start.get('plan_name', '?')}, {when_text})")


def newest_runs_text(runs: Any, count: int = NEWEST_SHOWN) -> str:
    """The newest ``count`` runs, for a message: ``the newest are ...`` or ``there are none``."""
    newest = _first(_newest_first(runs), count)
    if not newest:
        return "there are no runs"
    return "the newest are " + ", ".join(describe_run(run) for run in newest)


def _by_prefix(runs: Any, prefix: str) -> list[Any]:
    """Runs whose start uid begins with ``prefix`` (at most CANDIDATES_SHOWN + 1)."""
    # LIKE is safe here: a prefix is hexadecimal digits and dashes, no '%' or '_'.
    matches = runs.search(Like("start.uid", f"{prefix.lower()}%")).sort(("start.time", -1))
    return _first(matches, CANDIDATES_SHOWN + 1)


def resolve_run(runs: Any, reference: str | int) -> Any:
    """The run ``reference`` names in the container ``runs``.

    Parameters
    ----------
    runs : tiled.client.container.Container
        A container whose runs carry their start document in ``metadata["start"]`` (nodes
        without one are ignored).
    reference : str or int
        ``"latest"`` (the run with the newest ``start.time``); a scan id (``7``, ``"7"``:
        the newest run with that ``start.scan_id``); a negative integer (``-1`` the newest
        run, ``-2`` the one before, as bluesky catalogs count); a full start uid; or a
        unique prefix of one, at least MIN_PREFIX characters (the export file names use
        the first 8). Digits only are a scan id first, a uid prefix if no run has that
        scan id.

    Returns
    -------
    tiled.client.container.Container
        The run.

    Raises
    ------
    RunLookupError
        When nothing matches (the message names the newest runs) or a prefix matches more
        than one run (the message names the candidates).
    """
    text = str(reference).strip()
    if text == "latest":
        text = "-1"
    if re.fullmatch(r"-\d+", text):
        count = -int(text)
        newest = _first(_newest_first(runs), count) if count else []
        if len(newest) < max(count, 1):
            raise RunLookupError(f"no run {text}: there are {len(newest)} run(s); "
                                 f"{newest_runs_text(runs)}")
        return newest[-1]
    if text.isdigit():
        scanned = _first(_newest_first(runs.search(Key("start.scan_id") == int(text))), 1)
        if scanned:
            return scanned[0]
        if len(text) < MIN_PREFIX or not _by_prefix(runs, text):
            raise RunLookupError(f"no run has scan id {int(text)}; {newest_runs_text(runs)}")
    if not PREFIX_CHARACTERS.fullmatch(text):
        raise RunLookupError(f"{reference!r} is not 'latest', a scan id or a run uid (prefix): "
                             f"a uid is hexadecimal digits and dashes; {newest_runs_text(runs)}")
    if len(text) < MIN_PREFIX:
        raise RunLookupError(f"uid prefix {text!r} is too short: give at least {MIN_PREFIX} "
                             f"characters; {newest_runs_text(runs)}")
    matches = _by_prefix(runs, text)
    if not matches:
        raise RunLookupError(f"no run uid starts with {text!r}; {newest_runs_text(runs)}")
    if len(matches) > 1:
        shown = ", ".join(describe_run(run) for run in matches[:CANDIDATES_SHOWN])
        more = " and more" if len(matches) > CANDIDATES_SHOWN else ""
        raise RunLookupError(f"uid prefix {text!r} is ambiguous: it matches {shown}{more}; "
                             "give more characters")
    return matches[0]



def newest_runs(runs: Any, count: int) -> list[Any]:
    """The ``count`` newest runs of the container ``runs`` (by ``start.time``), newest first."""
    return _first(_newest_first(runs), count)
