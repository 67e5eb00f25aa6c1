"""Transition temperatures while a ramp runs, from the document stream.

:class:`LiveTransitions` is a bluesky document callback. A run whose start
document says which fields hold the temperature, the signal and (for
transport) the bias (``start["fields"]``, written by the station's plans)
is collected as it comes; every ``refresh_seconds`` the Tc table is
recomputed and handed to ``on_update``, and at the stop the final table goes
to ``on_stop`` with the start document (the session stores it in Tiled,
linked to the raw run). Analysis never talks to devices: everything it needs
is in the documents.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

from analysis.transitions import find_susceptibility_transition, transitions_by_bias

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
        row = {"onset": transition.onset, "midpoint": transition.midpoint,
               "width": transition.width, "found": transition.found,
               "reason": transition.reason}
        if bias is None:
            row["loss_peak"] = transition.loss_peak_temperature
        else:
            row = {"bias": bias, **row, "step": transition.step}
        rows.append(row)
    return rows


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
            lines.append(f"{label}: onset {row['onset']:.2f} K, midpoint {row['midpoint']:.2f} K,"
                         f" width {_kelvin(row['width'])}")
        else:
            lines.append(f"{label}: no transition ({row['reason']})")
    return "\n".join(lines)


def _kelvin(value: float) -> str:
    return f"{value:.2f} K" if math.isfinite(value) else "n/a"


class LiveTransitions:
    """Collect a ramp's curves from the documents and keep its Tc table up to date.

    Parameters
    ----------
    on_update : callable, optional
        ``on_update(start, rows)`` with the table while the run goes on.
    on_stop : callable, optional
        ``on_stop(start, rows)`` with the final table when the run stops.
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
        self.rows: list[dict] = []
        self.last_refresh = 0.0

    def __call__(self, name: str, document: dict) -> None:
        handler = getattr(self, name, None)
        if handler is not None:
            try:
                handler(document)
            except Exception:
                logger.exception("live transition analysis failed; the run goes on")

    def start(self, document: dict) -> None:
        fields = document.get("fields") or {}
        if document.get("measurement") not in ("transport", "susceptibility") or not fields:
            self.start_document = None
            return
        self.start_document = document
        self.fields = dict(fields)
        self.primary = set()
        self.values = {role: [] for role in self.fields}
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
        if time.monotonic() - self.last_refresh >= self.refresh_seconds:
            self.last_refresh = time.monotonic()
            self.rows = self.table()
            if self.on_update is not None and self.rows:
                self.on_update(self.start_document, self.rows)

    def stop(self, document: dict) -> None:
        if self.start_document is None:
            return
        self.rows = self.table()
        if self.on_stop is not None:
            self.on_stop(self.start_document, self.rows)
        self.start_document = None

    def table(self) -> list[dict]:
        columns = {role: np.asarray(values, dtype=float) for role, values in self.values.items()}
        return transition_table(self.start_document["measurement"], columns)
