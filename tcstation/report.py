"""``tcstation report`` and ``tcstation export``: runs read back from Tiled.

The report recomputes every transition from the raw runs (the container of runs,
``storage.runs``; the live Tc tables in the ``derived`` container are a convenience),
prints the table of transitions (onset, midpoint and width, each +- its standard
error) and Tc against the dc bias, and draws the source paper's Fig. 1 (4 pi chi'
and 4 pi chi'' against T for pure Mg, curves 1, and Mg/MgO, curves 2) and Fig. 2
(dU/dI against T on the core, curve 1, on the surface at each bias, curves 2 to 5,
and after the degradation, curve 6, with the onsets against the bias), their
conditions taken from the runs' start documents.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tcstation.analysis.export import (
    Curve,
    export_names,
    run_curves,
    sidecar_path,
    write_csv,
    write_run_nexus,
)
from tcstation.analysis.figures import (
    Conditions,
    write_dudi_figure,
    write_susceptibility_figure,
)
from tcstation.analysis.live import format_table, run_transitions, transition_rows
from tcstation.ledger import warm_flag


@dataclass
class RunData:
    """One run read back from Tiled: its start document and primary columns by role."""

    start: dict
    columns: dict[str, np.ndarray]
    units: dict[str, str]

    @property
    def measurement(self) -> str:
        return self.start.get("measurement", "")

    @property
    def label(self) -> str:
        sample = self.start.get("sample", {})
        names = {"pure_mg": "pure Mg", "mg_mgo": "Mg/MgO"}
        name = names.get(sample.get("name"), sample.get("name", "?"))
        if self.start.get("state") == "degraded":
            name += " after exposure"
        if self.measurement == "transport":
            name += f", {sample.get('contacts', '?')} contacts"
        return name


def read_run(run) -> RunData:
    """The start document and the primary stream's columns, by the roles in ``fields``."""
    from tcstation.storage import read_stream

    start = dict(run.metadata["start"])
    table = read_stream(run, as_dataframe=True)
    fields = start.get("fields", {})
    columns = {role: np.asarray(table[field], dtype=float)
               for role, field in fields.items() if field in table}
    data_keys = run["primary"].metadata.get("data_keys", {})
    units = {role: data_keys.get(field, {}).get("units", "") for role, field in fields.items()}
    return RunData(start=start, columns=columns, units=units)


def _bluesky_runs(results) -> list:
    """The runs among search results, newest first (derived tables have no start document)."""
    return [node for node in results.values() if "start" in node.metadata]


def runs_to_report(client, target: str) -> list:
    """The latest protocol's runs (or the latest run), or those of the run ``target`` names
    (a scan id, a uid or a unique uid prefix: :func:`~tcstation.storage.resolve_run`), in
    the container of runs ``client`` (``StorageSession.runs``)."""
    from tcstation.storage import find_runs
    from tcstation.storage.lookup import RunLookupError, resolve_run

    if target != "latest":
        run = resolve_run(client, target)
        protocol = run.metadata["start"].get("protocol_uid")
        if protocol is None:
            return [run]
    else:
        runs = _bluesky_runs(find_runs(client))
        if not runs:
            raise RunLookupError("no runs in Tiled yet")
        protocol = runs[0].metadata["start"].get("protocol_uid")
        if protocol is None:
            return runs[:1]
    runs = _bluesky_runs(find_runs(client, protocol_uid=protocol))
    return sorted(runs, key=lambda run: run.metadata["start"]["time"])


def stored_tc_table(client, uid: str) -> list[dict] | None:
    """The live Tc table the session stored for run ``uid`` (rows), or None if there is none.

    ``client`` is the catalog root; the tables are ``transitions-<uid>`` in its ``derived``
    container (:mod:`tcstation.storage.layout`), written by
    :func:`tcstation.session.store_transitions`.
    """
    from tcstation.storage.layout import LayoutError, derived_container, transitions_key

    try:
        derived = derived_container(client)
    except LayoutError:
        return None
    key = transitions_key(uid)
    if key not in derived:
        return None
    table = derived[key].read()
    return [{str(name): value for name, value in row.items()}
            for row in table.to_dict(orient="records")]


FIG1_TITLE = "Fig. 1: complex ac susceptibility, (a) real and (b) imaginary part"
FIG2_TITLE = "Fig. 2: dynamic resistance dU/dI of Mg/MgO"
SUSCEPTIBILITY_CURVE_NUMBERS = {"pure_mg": 1, "mg_mgo": 2}
"""The source's Fig. 1 curve of each fresh sample."""
SURFACE_CURVE_NUMBERS = {0.0: 2, 0.2: 3, 0.3: 4, 0.4: 5}
"""The source's Fig. 2 curve of the fresh surface contacts at each dc bias (A)."""
CORE_CURVE_NUMBER = 1
DEGRADED_CURVE_NUMBER = 6
"""Fig. 2 curve of the surface after the exposure; the source measured it at 0 mA only."""


def _numbered(number: int | None, text: str) -> str:
    return text if number is None else f"{number}: {text}"


def _curve_number(numbers: dict[float, int], bias: float) -> int | None:
    return next((number for value, number in numbers.items() if abs(value - bias) < 1e-3), None)


def _degraded(run: RunData) -> bool:
    return run.start.get("state") == "degraded"


def _exposure_text(run: RunData) -> str:
    """``after 30 min at room temperature`` from the sample's warm time, else ``after exposure``."""
    warm = run.start.get("sample", {}).get("warm_seconds_before", 0.0) or 0.0
    return f"after {warm / 60:.0f} min at room temperature" if warm >= 60 else "after exposure"


def susceptibility_label(run: RunData) -> str:
    """The Fig. 1 legend label: the source's curve number for a fresh pure Mg or Mg/MgO."""
    name = run.label
    if _degraded(run):
        return f"{name.removesuffix(' after exposure')} {_exposure_text(run)} (cf. curve 1)"
    return _numbered(SUSCEPTIBILITY_CURVE_NUMBERS.get(run.start.get("sample", {}).get("name")),
                     name)


def dudi_label(run: RunData, bias: float) -> str | None:
    """The Fig. 2 legend label of one bias of a transport run, or None if it is not drawn.

    Core contacts are curve 1 whatever the bias, the fresh surface at 0, 200, 300, 400 mA
    curves 2 to 5 (other biases unnumbered), the surface after the exposure at 0 mA
    curve 6; after the exposure the source drew no other bias, nor does the report.
    """
    contacts = run.start.get("sample", {}).get("contacts", "?")
    milliamps = f"{1e3 * bias:.0f} mA"
    if contacts == "core":
        return _numbered(CORE_CURVE_NUMBER, f"core contacts, {milliamps}")
    if _degraded(run):
        if abs(bias) >= 1e-3:
            return None
        return _numbered(DEGRADED_CURVE_NUMBER, f"surface {_exposure_text(run)}, {milliamps}")
    return _numbered(_curve_number(SURFACE_CURVE_NUMBERS, bias),
                     f"{contacts} contacts, {milliamps}")


def _unique(label: str, taken: dict, run: RunData) -> str:
    return label if label not in taken else f"{label} (run {run.start.get('uid', '?')[:8]})"


def _plan_values(runs: list[RunData], key: str) -> list[float]:
    values = []
    for run in runs:
        value = run.start.get("plan_args", {}).get(key, run.start.get("ramp", {}).get(key))
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(float(value))
    return values


def conditions_of(runs: list[RunData], biases: list[float] = ()) -> Conditions:
    """The conditions the runs' start documents state (``plan_args``, ``ramp``)."""
    transport = all(run.measurement == "transport" for run in runs)
    return Conditions(frequency=_plan_values(runs, "frequency"),
                      field=() if transport else _plan_values(runs, "field"),
                      excitation=_plan_values(runs, "excitation") if transport else (),
                      bias=biases, rate=_plan_values(runs, "rate"))


def figure_arguments(runs: list[RunData], transitions: list[dict]) -> dict[str, dict]:
    """What Fig. 1 and Fig. 2 draw: file name to the keyword arguments of its figure function.

    Fig. 1 (``fig1_susceptibility.png``, :func:`~tcstation.analysis.figures.susceptibility_figure`)
    draws the pure Mg and Mg/MgO susceptibility runs, Fig. 2 (``fig2_dudi.png``,
    :func:`~tcstation.analysis.figures.dudi_figure`) the transport runs; a figure without
    runs is left out. ``transitions`` holds each run's
    :func:`~tcstation.analysis.live.run_transitions`, in order. Legend labels carry the
    source's curve numbers (:func:`susceptibility_label`, :func:`dudi_label`), titles the
    conditions of the runs drawn (:func:`conditions_of`).
    """
    arguments = {}
    chi_curves, chi_marks, chi_runs, dashed = {}, {}, [], []
    dudi_curves, dudi_marks, dudi_runs, lower, biases = {}, {}, [], [], {}
    left_out, drawn_biases = [], []
    for run, found in zip(runs, transitions, strict=True):
        columns = run.columns
        if (run.measurement == "susceptibility"
                and run.start.get("sample", {}).get("name") in SUSCEPTIBILITY_CURVE_NUMBERS):
            label = _unique(susceptibility_label(run), chi_curves, run)
            chi_curves[label] = (columns["temperature"], columns["signal"],
                                 columns.get("chi_imag", np.zeros_like(columns["signal"])))
            chi_marks[label] = found[None]
            chi_runs.append(run)
            if _degraded(run):
                dashed.append(label)
        elif run.measurement == "transport":
            rounded = np.round(columns["bias"], 3)
            drawn = False
            for bias, transition in found.items():
                label = dudi_label(run, bias)
                if label is None:
                    left_out.append((bias, transition))
                    continue
                label = _unique(label, dudi_curves, run)
                chosen = np.abs(rounded - bias) < 1e-3
                dudi_curves[label] = (columns["temperature"][chosen], columns["signal"][chosen])
                dudi_marks[label] = transition
                drawn_biases.append(bias)
                drawn = True
                if run.start.get("sample", {}).get("contacts") == "core":
                    lower.append(label)
                elif not _degraded(run):
                    biases[label] = bias
            if drawn:
                dudi_runs.append(run)
    if chi_curves:
        arguments["fig1_susceptibility.png"] = {
            "curves": chi_curves, "transitions": chi_marks, "dashed": dashed,
            "conditions": conditions_of(chi_runs), "title": FIG1_TITLE}
    if dudi_curves:
        arguments["fig2_dudi.png"] = {
            "curves": dudi_curves, "transitions": dudi_marks, "lower_panel": lower,
            "biases": biases, "conditions": conditions_of(dudi_runs, drawn_biases),
            "title": FIG2_TITLE, "notes": _left_out_note(left_out)}
    return arguments


FIGURE_WRITERS = {"fig1_susceptibility.png": write_susceptibility_figure,
                  "fig2_dudi.png": write_dudi_figure}


def figures(runs: list[RunData], transitions: list[dict], output: Path) -> list[Path]:
    """Fig. 1 and Fig. 2 of :func:`figure_arguments` written to ``output`` as PNG."""
    return [FIGURE_WRITERS[name](output / name, **options)
            for name, options in figure_arguments(runs, transitions).items()]


def _left_out_note(left_out: list) -> list[str]:
    """A caption line for the biases measured after the exposure but not drawn."""
    if not left_out:
        return []
    milliamps = ", ".join(f"{1e3 * bias:.0f}" for bias, _ in left_out)
    found = sum(transition.found for _, transition in left_out)
    outcome = "no transition in any" if not found else f"a transition in {found}"
    return [f"not drawn: after the exposure at {milliamps} mA ({outcome}; see the table)"]


def warm_time_flag(start: dict) -> str | None:
    """Why the run is suspect because its sample had been warm too long, else None
    (:func:`tcstation.ledger.warm_flag` on the start document's ``sample``)."""
    sample = start.get("sample")
    if not isinstance(sample, dict):
        return None
    return warm_flag(sample.get("name"), sample.get("warm_seconds_before"))


def tc_table_text(runs: list[RunData], transitions: list[dict]) -> str:
    """Each ramp's Tc table, a ``FLAG:`` line under a run on a sample warm too long."""
    blocks = []
    for run, found in zip(runs, transitions, strict=True):
        if run.measurement not in ("transport", "susceptibility"):
            continue
        block = format_table(run.start, transition_rows(found))
        flag = warm_time_flag(run.start)
        blocks.append(block if flag is None else f"{block}\nFLAG: {flag}")
    return "\n".join(blocks) if blocks else "no ramps among these runs"


def report(client, target: str = "latest", output: Path | None = None) -> tuple[str, list[Path]]:
    """The text table and the figure paths for ``target`` ("latest" or a run uid).

    ``client`` is the container of runs (``StorageSession.runs``).
    """
    runs = [read_run(run) for run in runs_to_report(client, target)]
    runs = [run for run in runs if run.columns]
    transitions = [run_transitions(run.measurement, run.columns) for run in runs]
    if output is None:
        output = Path.cwd() / "report"
    output.mkdir(parents=True, exist_ok=True)
    return tc_table_text(runs, transitions), figures(runs, transitions, output)


def report_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tcstation report",
                                     description="Tc table and Fig. 1/2-style figures of runs "
                                     "in Tiled.")
    parser.add_argument("target", nargs="?", default="latest",
                        help="latest (the latest protocol, else the latest run), a scan id, "
                             "or a run uid or unique uid prefix (with its protocol)")
    parser.add_argument("--output", type=Path, default=Path("report"),
                        help="directory for the PNG figures (default ./report)")
    args = parser.parse_args(argv)
    from tcstation.storage import open_storage
    from tcstation.storage.lookup import RunLookupError

    with open_storage() as storage:
        try:
            text, paths = report(storage.runs, args.target, args.output)
        except RunLookupError as error:
            print(f"tcstation report: {error}", file=sys.stderr)
            return 2
    print(text)
    for path in paths:
        print(f"figure: {path}")
    return 0


def _json_able(document: dict) -> dict:
    """The items of ``document`` that JSON can hold (a start document read back from Tiled
    holds only those; a document straight from the RunEngine may hold more)."""
    kept = {}
    for key, value in document.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[key] = value
    return kept


def primary_stream(run) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every column of the run's primary stream (``time`` first) and its descriptor units."""
    from tcstation.storage import read_stream

    table = read_stream(run, as_dataframe=True).reset_index()
    data_keys = run["primary"].metadata.get("data_keys", {})
    columns = {"time": np.asarray(table["time"], dtype=float)} if "time" in table else {}
    for name in table.columns:
        if name != "time":
            columns[str(name)] = np.asarray(table[name])
    units = {name: str(data_keys.get(name, {}).get("units") or "") for name in columns}
    if "time" in columns:
        units["time"] = "s"
    return columns, units


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tcstation")
    except PackageNotFoundError:
        return ""


def export_run(run, output: Path, file_format: str = "csv", *,
               whole_stream: bool = False) -> list[Path]:
    """Write one run read back from Tiled as CSV (plus its JSON sidecar) or NeXus.

    Parameters
    ----------
    run : tiled.client.container.Container
        A bluesky run (start document in ``metadata["start"]``, a ``primary`` stream).
    output : pathlib.Path
        The CSV or NeXus file.
    file_format : {"csv", "hdf5"}
        CSV: the analysis columns (sample temperature, dU/dI and bias, or chi' and chi''),
        units in the headers, start metadata, units and conditions in ``<stem>.json``.
        NeXus: one NXdata per dc bias (or chi' and chi''), NXsample, start and end time.
    whole_stream : bool
        CSV: every column of the primary stream instead of the analysis columns. NeXus:
        also an NXdata ``primary`` with every column against ``time``. A run without
        analysis columns (no ``start["fields"]``, e.g. a ``count``) is exported whole.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    if file_format not in ("csv", "hdf5"):
        raise ValueError(f"file_format must be 'csv' or 'hdf5', not {file_format!r}")
    data = read_run(run)
    start = _json_able(data.start)
    stop = _json_able(dict(run.metadata.get("stop") or {}))
    names = export_names(data.measurement, data.columns)
    if file_format == "csv":
        if whole_stream or not data.columns:
            columns, units = primary_stream(run)
        else:
            columns = {names[role]: values for role, values in data.columns.items()}
            units = {names[role]: data.units.get(role, "") for role in data.columns}
        metadata = {"start": start, "stop": stop,
                    "conditions": asdict(conditions_of([data], _run_biases(data)))}
        path = write_csv(output, columns, units, metadata)
        return [path, sidecar_path(path)]
    curves = run_curves(data.measurement, data.columns, data.units)
    if whole_stream or not curves:
        columns, units = primary_stream(run)
        signal = start.get("fields", {}).get("signal")
        if signal not in columns:
            signal = next((name for name in columns if name != "time"
                           and columns[name].dtype.kind in "fiu"), None)
        if signal is None or "time" not in columns:
            raise ValueError(f"run {start.get('uid', '?')[:8]} has no numeric column to plot")
        curves.append(Curve(name="primary", signal=signal, axis="time", fields=columns,
                            units=units, long_names={"time": "event time (POSIX)"},
                            title="every column of the primary stream, in event order"))
    path = write_run_nexus(output, curves, start, stop or None,
                           title=f"{start.get('plan_name', 'run')} {data.label}",
                           program_version=_version())
    return [path]


def _run_biases(data: RunData) -> list[float]:
    if data.measurement != "transport" or "bias" not in data.columns:
        return []
    return sorted(set(np.round(data.columns["bias"], 3).tolist()))


def export_main(argv: list[str]) -> int:
    """``tcstation export RUN [--format csv|hdf5] [--whole-stream] [--output FILE]``.

    Returns
    -------
    int
        0 when written; 2 when ``RUN`` names no run or several (one line, no traceback).
    """
    parser = argparse.ArgumentParser(
        prog="tcstation export",
        description="Export one run. CSV: the analysis columns (sample temperature, dU/dI "
                    "and bias, or chi' and chi''), units in the header names, one header "
                    "row (pandas.read_csv reads it as it is), metadata in <stem>.json beside "
                    "it. NeXus (hdf5): one plottable NXdata per dc bias (or chi' and chi''), "
                    "NXsample, start and end time, the start document in an NXcollection.")
    parser.add_argument("run", help="latest, a scan id, -N (N-th newest), a full run uid or a "
                                    "unique uid prefix (at least 4 characters, e.g. the 8 of "
                                    "the default file names)")
    parser.add_argument("--format", choices=("csv", "hdf5"), default="csv")
    parser.add_argument("--whole-stream", action="store_true",
                        help="CSV: every column of the primary stream instead of the "
                             "analysis columns; NeXus: also an NXdata 'primary' with every "
                             "column, units from the descriptor")
    parser.add_argument("--output", type=Path, default=None,
                        help="file to write (default <uid8>.csv or <uid8>.h5)")
    args = parser.parse_args(argv)
    from tcstation.storage import open_storage
    from tcstation.storage.lookup import RunLookupError, resolve_run

    with open_storage() as storage:
        try:
            run = resolve_run(storage.runs, args.run)
        except RunLookupError as error:
            print(f"tcstation export: {error}", file=sys.stderr)
            return 2
        suffix = ".csv" if args.format == "csv" else ".h5"
        output = args.output or Path(run.metadata["start"]["uid"][:8] + suffix)
        paths = export_run(run, output, args.format, whole_stream=args.whole_stream)
    for path in paths:
        print(f"wrote {path}")
    return 0
