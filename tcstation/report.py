"""``tcstation report`` and ``tcstation export``: runs read back from Tiled.

The report recomputes every transition from the raw runs (the live tables
stored beside them are a convenience), prints the table of transitions and
Tc against the dc bias, and draws the source paper's Fig. 1 (4 pi chi' and
4 pi chi'' against T for pure Mg and Mg/MgO) and Fig. 2 (dU/dI against T on
the core, on the surface at each bias, and after the degradation).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcstation.analysis.export import write_csv, write_nexus
from tcstation.analysis.figures import write_dudi_figure, write_susceptibility_figure
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


def figures(runs: list[RunData], transitions: list[dict], output: Path) -> list[Path]:
    """Fig. 1 from the susceptibility runs and Fig. 2 from the transport runs.

    ``transitions`` holds each run's :func:`~tcstation.analysis.live.run_transitions`, in order.
    """
    written = []
    chi_curves, chi_marks = {}, {}
    dudi_curves, dudi_marks, lower = {}, {}, []
    for run, found in zip(runs, transitions, strict=True):
        columns = run.columns
        if (run.measurement == "susceptibility"
                and run.start.get("sample", {}).get("name") in ("pure_mg", "mg_mgo")):
            chi_curves[run.label] = (columns["temperature"], columns["signal"],
                                     columns.get("chi_imag", np.zeros_like(columns["signal"])))
            chi_marks[run.label] = found[None]
        elif run.measurement == "transport":
            biases = np.round(columns["bias"], 3)
            for bias, transition in found.items():
                chosen = np.abs(biases - bias) < 1e-3
                label = f"{run.label}, {1e3 * bias:.0f} mA"
                dudi_curves[label] = (columns["temperature"][chosen], columns["signal"][chosen])
                dudi_marks[label] = transition
                if run.start.get("sample", {}).get("contacts") == "core":
                    lower.append(label)
    if chi_curves:
        written.append(write_susceptibility_figure(output / "fig1_susceptibility.png",
                                                   chi_curves, chi_marks))
    if dudi_curves:
        written.append(write_dudi_figure(output / "fig2_dudi.png", dudi_curves, dudi_marks,
                                         lower_panel=lower))
    return written


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
