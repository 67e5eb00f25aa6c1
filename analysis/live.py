"""Transition temperatures while a ramp runs, from the document stream.

:class:`LiveTransitions` is a bluesky document callback. A run whose start
document says which fields hold the temperature, the signal and (for
transport) the bias (``start["fields"]``, written by the station's plans)
is collected as it comes; every ``refresh_seconds`` the Tc table is
recomputed and handed to ``on_update``, and at the stop the final table goes
to ``on_stop`` with the start document (the session stores it in Tiled,
linked to the raw run, with the units of :func:`row_units` in its metadata). Every
onset, midpoint and width comes with its standard error (``onset_error``, ...; K).
Analysis never talks to devices: everything it needs is in the documents.

The RunEngine calls the callback in its own thread, so an event costs only
appending its values there. The periodic recomputation, whose cost grows
with the run (the whole curve is analysed again), runs in a worker thread on
the latest snapshot only: a snapshot is the run's append-only columns and a
row count, handed over without copying; a newer one replaces one not yet
started, so work never queues up behind a slow analysis. ``on_update`` is
called from the worker, never after the run's ``on_stop``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from tcstation.analysis.transitions import (
    TC_TABLE_UNITS,
    find_susceptibility_transition,
    kelvin_text,
    transitions_by_bias,
)

logger = logging.getLogger(__name__)

TableSink = Callable[[dict, list[dict]], None]


def run_transitions(measurement: str, columns: dict[str, np.ndarray]) -> dict:
    """The run's transitions: by bias (A) for transport, under ``None`` for susceptibility."""
    if len(columns.get("temperature", ())) < 5:
        return {}
    if measurement == "transport":
        return transitions_by_bias(columns, temperature="temperature", signal="signal",
                                   bias="bias")
    return {None: find_susceptibility_transition(columns["temperature"], columns["signal"],
                                                 columns.get("chi_imag"))}


def transition_rows(transitions: dict) -> list[dict]:
    """Table rows of :func:`run_transitions`: one per bias, or one for susceptibility."""
    rows = []
    for bias, transition in transitions.items():
        row = {"onset": transition.onset, "onset_error": transition.onset_error,
               "midpoint": transition.midpoint, "midpoint_error": transition.midpoint_error,
               "width": transition.width, "width_error": transition.width_error,
               "found": transition.found, "reason": transition.reason}
        if bias is None:
            row["loss_peak"] = transition.loss_peak_temperature
        else:
            row = {"bias": bias, **row, "step": transition.step}
        rows.append(row)
    return rows


def row_units(rows: list[dict]) -> dict[str, str]:
    """Unit of every column of :func:`transition_rows` (K for temperatures and their errors).

    A transport row's ``step`` is a dU/dI step in ohm; a column this module does not know
    gets "".
    """
    units = {**TC_TABLE_UNITS, "loss_peak": "K"}
    names = dict.fromkeys(name for row in rows for name in row)
    return {name: units.get(name, "") for name in names}


def transition_table(measurement: str, columns: dict[str, np.ndarray]) -> list[dict]:
    """Rows of transitions: one per bias for transport, one for susceptibility."""
    return transition_rows(run_transitions(measurement, columns))


def format_table(start: dict, rows: list[dict]) -> str:
    """A few lines of text: the run's transitions, for a terminal."""
    sample = start.get("sample", {})
    where = (f"on {sample.get('contacts', '?')} contacts"
             if start.get("measurement") == "transport" else f"in the {sample.get('insert', '?')}")
    title = (f"{start.get('plan_name', 'run')} {start.get('uid', '')[:8]}: "
             f"{sample.get('name', '?')} {where}")
    lines = [title]
    for row in rows:
        label = f"  {1e3 * row['bias']:5.0f} mA" if "bias" in row else "  chi'   "
        if row["found"]:
            lines.append(f"{label}: onset {_kelvin(row['onset'], row.get('onset_error'))}, "
                         f"midpoint {_kelvin(row['midpoint'], row.get('midpoint_error'))}, "
                         f"width {_kelvin(row['width'], row.get('width_error'))}")
        else:
            lines.append(f"{label}: no transition ({row['reason']})")
    return "\n".join(lines)


def _kelvin(value: float, error: float | None = None) -> str:
    """``50.043 +- 0.012 K`` (:func:`~tcstation.analysis.transitions.kelvin_text`)."""
    return kelvin_text(value, error)


class LiveTransitions:
    """Collect a ramp's curves from the documents and keep its Tc table up to date.

    Parameters
    ----------
    on_update : callable, optional
        ``on_update(start, rows)`` with the table while the run goes on (called
        from the analysis thread).
    on_stop : callable, optional
        ``on_stop(start, rows)`` with the final table when the run stops (called
        from the RunEngine's thread, with its stop document).
    refresh_seconds : float
        Wall seconds between recomputations while the run goes on.
    """

    def __init__(self, on_update: TableSink | None = None, on_stop: TableSink | None = None,
                 refresh_seconds: float = 10.0):
        self.on_update = on_update
        self.on_stop = on_stop
        self.refresh_seconds = refresh_seconds
        self.start_document: dict | None = None
        self.fields: dict[str, str] = {}
        self.primary: set[str] = set()
        self.values: dict[str, list[float]] = {}
        self.count = 0
        self.rows: list[dict] = []
        self.last_refresh = 0.0
        self.refreshes = 0
        # _lock orders the worker's on_update before the run's on_stop; _run counts runs,
        # so that a table of a run that has stopped is dropped.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._run = 0
        self._snapshot: tuple | None = None
        self._busy = False
        self._worker: threading.Thread | None = None

    def __call__(self, name: str, document: dict) -> None:
        handler = getattr(self, name, None)
        if handler is not None:
            try:
                handler(document)
            except Exception:
                logger.exception("live transition analysis failed; the run goes on")

    def start(self, document: dict) -> None:
        with self._lock:
            self._run += 1
            self._snapshot = None
        fields = document.get("fields") or {}
        if document.get("measurement") not in ("transport", "susceptibility") or not fields:
            self.start_document = None
            return
        self.start_document = document
        self.fields = dict(fields)
        self.primary = set()
        # New lists for each run: a snapshot of the previous run keeps its own.
        self.values = {role: [] for role in self.fields}
        self.count = 0
        self.rows = []
        self.last_refresh = time.monotonic()

    def descriptor(self, document: dict) -> None:
        if self.start_document is not None and document.get("name") == "primary":
            self.primary.add(document["uid"])

    def event(self, document: dict) -> None:
        if self.start_document is None or document["descriptor"] not in self.primary:
            return
        data = document["data"]
        if not all(field in data for field in self.fields.values()):
            return
        for role, field in self.fields.items():
            self.values[role].append(float(data[field]))
        self.count += 1
        if time.monotonic() - self.last_refresh >= self.refresh_seconds:
            self.last_refresh = time.monotonic()
            self._request_refresh()

    def stop(self, document: dict) -> None:
        with self._lock:
            self._run += 1
            self._snapshot = None
        if self.start_document is None:
            return
        self.rows = self.table()
        if self.on_stop is not None:
            self.on_stop(self.start_document, self.rows)
        self.start_document = None

    def table(self) -> list[dict]:
        """The Tc table of everything collected so far."""
        return _table_of(self.start_document["measurement"], self.values, self.count)

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until no recomputation is pending or running; True if so within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._busy or self._snapshot is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.wait(remaining)
        return True

    # ----- RunEngine thread: O(1) -----

    def _request_refresh(self) -> None:
        with self._wake:
            self._snapshot = (self._run, self.start_document, self.values, self.count)
            self._wake.notify_all()
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="live-transitions",
                                            daemon=True)
            self._worker.start()

    # ----- analysis thread -----

    def _work(self) -> None:
        while True:
            with self._wake:
                while self._snapshot is None:
                    self._wake.wait()
                run, start, values, count = self._snapshot
                self._snapshot = None
                self._busy = True
            try:
                rows = _table_of(start["measurement"], values, count)
                with self._lock:
                    if run == self._run:
                        self.rows = rows
                        self.refreshes += 1
                        if self.on_update is not None and rows:
                            self.on_update(start, rows)
            except Exception:
                logger.exception("live transition analysis failed; the run goes on")
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()


def _table_of(measurement: str, values: dict[str, list[float]], count: int) -> list[dict]:
    """The table of the first ``count`` rows of append-only columns (safe while they grow)."""
    columns = {role: np.asarray(column[:count], dtype=float) for role, column in values.items()}
    return transition_table(measurement, columns)
