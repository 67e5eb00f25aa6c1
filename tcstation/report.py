"""``tcstation report`` and ``tcstation export``: runs read back from Tiled.

The report recomputes every transition from the raw runs (the live tables
stored beside them are a convenience), prints the table of transitions (onset,
midpoint and width, each +- its standard error) and Tc against the dc bias,
and draws the source paper's Fig. 1 (4 pi chi' and 4 pi chi'' against T for
pure Mg, curves 1, and Mg/MgO, curves 2) and Fig. 2 (dU/dI against T on the
core, curve 1, on the surface at each bias, curves 2 to 5, and after the
degradation, curve 6, with the onsets against the bias), their conditions
taken from the runs' start documents.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcstation.analysis.export import write_csv, write_nexus
from tcstation.analysis.figures import (
    Conditions,
    write_dudi_figure,
    write_susceptibility_figure,
)
from tcstation.analysis.live import format_table, run_transitions, transition_rows


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
    """The latest protocol's runs (or the latest run), or the run with uid ``target``."""
    from tcstation.storage import find_runs, run_by_uid

    if target != "latest":
        run = run_by_uid(client, target)
        protocol = run.metadata["start"].get("protocol_uid")
        if protocol is None:
            return [run]
    else:
        runs = _bluesky_runs(find_runs(client))
        if not runs:
            raise LookupError("no runs in Tiled yet")
        protocol = runs[0].metadata["start"].get("protocol_uid")
        if protocol is None:
            return runs[:1]
    runs = _bluesky_runs(find_runs(client, protocol_uid=protocol))
    return sorted(runs, key=lambda run: run.metadata["start"]["time"])


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


def tc_table_text(runs: list[RunData], transitions: list[dict]) -> str:
    blocks = [format_table(run.start, transition_rows(found))
              for run, found in zip(runs, transitions, strict=True)
              if run.measurement in ("transport", "susceptibility")]
    return "\n".join(blocks) if blocks else "no ramps among these runs"


def report(client, target: str = "latest", output: Path | None = None) -> tuple[str, list[Path]]:
    """The text table and the figure paths for ``target`` ("latest" or a run uid)."""
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
                        help="a run uid, or 'latest' (the latest protocol, else the latest run)")
    parser.add_argument("--output", type=Path, default=Path("report"),
                        help="directory for the PNG figures (default ./report)")
    args = parser.parse_args(argv)
    from tcstation.storage import open_storage

    with open_storage() as storage:
        text, paths = report(storage.client, args.target, args.output)
    print(text)
    for path in paths:
        print(f"figure: {path}")
    return 0


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tcstation export",
                                     description="Export a run's primary stream.")
    parser.add_argument("uid", help="run uid")
    parser.add_argument("--format", choices=("csv", "hdf5"), default="csv")
    parser.add_argument("--output", type=Path, default=None,
                        help="file to write (default <uid8>.csv or <uid8>.h5)")
    args = parser.parse_args(argv)
    from tcstation.storage import open_storage, run_by_uid

    with open_storage() as storage:
        run = read_run(run_by_uid(storage.client, args.uid))
    suffix = ".csv" if args.format == "csv" else ".h5"
    output = args.output or Path(run.start["uid"][:8] + suffix)
    metadata = {key: value for key, value in run.start.items()
                if isinstance(value, str | int | float | bool | dict | list)}
    if args.format == "csv":
        write_csv(output, run.columns, run.units, metadata)
    else:
        auxiliary = [role for role in run.columns if role not in ("signal", "temperature")]
        write_nexus(output, run.columns, run.units, metadata, signal="signal",
                    axis="temperature", auxiliary_signals=auxiliary,
                    title=f"{run.start.get('plan_name')} {run.label}")
    print(f"wrote {output}")
    return 0
