"""The live Tc table: no analysis in the RunEngine's thread while a run goes on; same tables."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tcstation.analysis import live
from tcstation.analysis.live import LiveTransitions, transition_table

BIASES = (0.0, 0.2)
FIELDS = {"temperature": "T", "signal": "dudi", "bias": "I"}


def transport_documents(points: int):
    """A transport ramp's documents: a dU/dI step at 52 K on two interleaved biases."""
    rng = np.random.default_rng(3)
    start = {"uid": "run-1", "measurement": "transport", "fields": FIELDS,
             "plan_name": "transport_ramp", "sample": {}}
    descriptor = {"uid": "desc-1", "name": "primary", "run_start": "run-1"}
    temperatures = np.linspace(40.0, 60.0, points)
    events = []
    for number, temperature in enumerate(temperatures):
        bias = BIASES[number % len(BIASES)]
        step = 1e-3 if temperature > 52.0 - 5 * bias else 0.0
        events.append({"descriptor": "desc-1", "seq_num": number + 1,
                       "data": {"T": float(temperature), "I": bias,
                                "dudi": 4e-3 + step + rng.normal(0, 1e-5)}})
    return start, descriptor, events, {"uid": "stop-1", "run_start": "run-1"}


class RecordingAnalysis:
    """Wraps transition_table: which threads called it, on how many rows."""

    def __init__(self):
        self.threads: list[int] = []
        self.sizes: list[int] = []

    def __call__(self, measurement, columns):
        self.threads.append(threading.get_ident())
        self.sizes.append(len(columns["temperature"]))
        return transition_table(measurement, columns)


@pytest.fixture
def analysis(monkeypatch):
    recording = RecordingAnalysis()
    monkeypatch.setattr(live, "transition_table", recording)
    return recording


def test_events_never_run_the_analysis_in_the_callers_thread(analysis):
    updates: list[tuple[dict, list[dict]]] = []
    first_update = threading.Event()

    def on_update(start, rows):
        updates.append((start, rows))
        first_update.set()

    table = LiveTransitions(on_update=on_update, refresh_seconds=0.0)
    start, descriptor, events, stop = transport_documents(5000)
    table("start", start)
    table("descriptor", descriptor)
    caller = threading.get_ident()
    for event in events:
        table("event", event)
    assert caller not in analysis.threads, "an event ran the analysis in the RunEngine thread"
    assert first_update.wait(60.0), "no periodic table from the analysis thread"
    assert table.wait_until_idle(60.0)
    # Only the latest snapshot is analysed: never one analysis per event queued up.
    assert len(analysis.sizes) < len(events)
    assert analysis.sizes == sorted(analysis.sizes)
    assert updates[-1][0] is start and updates[-1][1]
    refreshes = len(analysis.sizes)

    finals = []
    table.on_stop = lambda start_document, rows: finals.append(rows)
    table("stop", stop)
    assert len(analysis.sizes) == refreshes + 1 and analysis.sizes[-1] == len(events)
    assert finals == [table.rows]


def test_the_tables_are_those_of_the_whole_analysis(analysis):
    updates: list[list[dict]] = []
    finals: list[list[dict]] = []
    table = LiveTransitions(on_update=lambda start, rows: updates.append(rows),
                            on_stop=lambda start, rows: finals.append(rows),
                            refresh_seconds=0.0)
    start, descriptor, events, stop = transport_documents(600)
    table("start", start)
    table("descriptor", descriptor)
    for event in events[:400]:
        table("event", event)
    assert table.wait_until_idle(60.0)
    assert analysis.sizes[-1] == 400, "the latest snapshot is analysed last"
    update_at_400 = updates[-1]
    for event in events[400:]:
        table("event", event)
    table("stop", stop)

    def expected(count: int) -> list[dict]:
        columns = {role: np.array([event["data"][field] for event in events[:count]])
                   for role, field in FIELDS.items()}
        return transition_table("transport", columns)

    assert _same(update_at_400, expected(400))
    assert _same(finals[0], expected(len(events)))
    assert [row["bias"] for row in finals[0]] == pytest.approx(BIASES)
    assert all(row["found"] for row in finals[0])


def test_an_update_computed_for_a_stopped_run_is_dropped(monkeypatch):
    started, release = threading.Event(), threading.Event()
    updates = []

    def slow_first_time(measurement, columns):
        if not started.is_set():
            started.set()
            release.wait(30.0)
        return [{"onset": 1.0}]

    monkeypatch.setattr(live, "transition_table", slow_first_time)
    table = LiveTransitions(on_update=lambda start, rows: updates.append(rows),
                            on_stop=lambda start, rows: None, refresh_seconds=0.0)
    start, descriptor, events, stop = transport_documents(20)
    table("start", start)
    table("descriptor", descriptor)
    table("event", events[0])
    assert started.wait(30.0)
    table("stop", stop)
    release.set()
    assert table.wait_until_idle(30.0)
    assert updates == []


def _same(rows: list[dict], expected: list[dict]) -> bool:
    def key(row: dict) -> tuple:
        return tuple((name, round(value, 9) if isinstance(value, float) and np.isfinite(value)
                      else str(value)) for name, value in sorted(row.items()))

    return [key(row) for row in rows] == [key(row) for row in expected]


def test_the_printed_table_carries_the_onset_errors():
    start, descriptor, events, stop = transport_documents(400)
    columns = {"temperature": np.array([e["data"]["T"] for e in events]),
               "signal": np.array([e["data"]["dudi"] for e in events]),
               "bias": np.array([e["data"]["I"] for e in events])}
    rows = transition_table("transport", columns)
    assert all(row["found"] and np.isfinite(row["onset_error"]) for row in rows)
    text = live.format_table(start, rows)
    assert text.count("onset ") == len(rows)
    assert text.count("+-") >= len(rows)
    for row, line in zip(rows, text.splitlines()[1:], strict=True):
        assert f"onset {live.kelvin_text(row['onset'], row['onset_error'])}" in line
    # Rows without errors (a table written before they existed) still print.
    bare = [{key: value for key, value in row.items() if not key.endswith("_error")}
            for row in rows]
    assert "+-" not in live.format_table(start, bare)


def test_every_row_column_has_a_unit_and_the_errors_are_kelvin():
    start, descriptor, events, stop = transport_documents(400)
    columns = {"temperature": np.array([e["data"]["T"] for e in events]),
               "signal": np.array([e["data"]["dudi"] for e in events]),
               "bias": np.array([e["data"]["I"] for e in events])}
    transport_rows = transition_table("transport", columns)
    susceptibility_rows = live.transition_rows(
        {None: live.find_susceptibility_transition(columns["temperature"],
                                                   columns["signal"])})
    for rows in (transport_rows, susceptibility_rows):
        units = live.row_units(rows)
        assert list(units) == list(rows[0]), "a unit for every column, in column order"
        for name in ("onset", "onset_error", "midpoint", "midpoint_error", "width",
                     "width_error"):
            assert units[name] == "K", name
    assert live.row_units(transport_rows)["bias"] == "A"
    assert live.row_units(transport_rows)["step"] == "ohm"
    assert live.row_units(susceptibility_rows)["loss_peak"] == "K"


@pytest.mark.parametrize(("value", "error", "text"), [
    (54.1034, 0.0213, "54.103 +- 0.021 K"),
    (54.1034, 0.25, "54.10 +- 0.25 K"),
    (50.06, 1.34, "50.1 +- 1.3 K"),
    (50.06, 23.0, "50 +- 23 K"),
    (50.06, 0.0003, "50.060 +- < 0.001 K"),
    (50.06, float("nan"), "50.06 K"),
    (50.06, None, "50.06 K"),
    (float("nan"), 0.1, "n/a"),
])
def test_temperatures_print_with_the_digits_their_error_allows(value, error, text):
    assert live.kelvin_text(value, error) == text
