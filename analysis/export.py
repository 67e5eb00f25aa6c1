"""Export a run's table to CSV and to NeXus (HDF5), and read both back.

A table is a set of named one-dimensional columns of one length (numbers, booleans or
text), the unit of each column and a metadata dictionary (JSON-serialisable: the run's start
document or a selection of it).

CSV layout: a plain CSV file (one header row, then the data) and a JSON sidecar beside it
(``<stem>.json``) with the units, types and metadata::

    sample_temperature_K,dudi_ohm,bias_A
    4.5012,0.0030001,0.0
    ...

``pandas.read_csv(path)``, ``numpy.genfromtxt(path, names=True, delimiter=",")`` and
spreadsheets read it as it is; a column's unit is in its name (``<name>_<unit>``, see
:func:`csv_column_name`) and in the sidecar.

NeXus layout of a table (:func:`write_nexus`; NXentry/NXdata, readable by any HDF5 tool)::

    /                 NX_class=NXroot, default=entry, creator, file_time
    /entry            NX_class=NXentry, default=data
    /entry/title      the title, when given
    /entry/data       NX_class=NXdata, signal=<signal>, axes=[<axis>], <axis>_indices=0
    /entry/data/<col> one dataset per column, attributes long_name and units
    /entry/metadata   NX_class=NXcollection, one dataset per metadata key (dicts and mixed
                      lists as JSON text, attribute encoding=json)

A run (:func:`write_run_nexus`) has one NXdata per curve (:class:`Curve`, e.g. one per dc
bias), an NXsample from the start document's ``sample`` and ``start_time``/``end_time``
from the start and stop documents.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import ArrayLike

CSV_FORMAT = "tcstation table 2"
_TYPE_NAMES = {"b": "bool", "i": "int", "u": "int", "f": "float", "U": "str", "S": "str",
               "O": "str"}
_PARSERS = {"bool": lambda text: text == "True", "int": int, "float": float, "str": str}
_DTYPES = {"bool": bool, "int": np.int64, "float": float, "str": str}


@dataclass(frozen=True)
class RunTable:
    """Columns, their units and the run's metadata, as read back from a file.

    Attributes
    ----------
    columns : dict of str to numpy.ndarray
        One-dimensional columns of one length, in file order.
    units : dict of str to str
        Unit of each column ("" when dimensionless or unknown).
    metadata : dict
        The metadata written with the table.
    """

    columns: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def _checked_columns(columns: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    if not columns:
        raise ValueError("a table needs at least one column")
    arrays: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        if not isinstance(name, str) or not name or any(c in name for c in "/\n\r,"):
            raise ValueError(f"column names must be non-empty text without '/', ',' or line "
                             f"breaks, got {name!r}")
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(f"column {name!r} must be one-dimensional, got shape {array.shape}")
        if array.dtype.kind not in _TYPE_NAMES:
            raise TypeError(f"column {name!r} has unsupported dtype {array.dtype}")
        if array.dtype.kind in "SO":
            array = array.astype(str)
        arrays[name] = array
    lengths = {name: array.size for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns must have one length, got {lengths}")
    return arrays


def _checked_units(units: Mapping[str, str] | None, names: Sequence[str]) -> dict[str, str]:
    units = dict(units or {})
    unknown = set(units) - set(names)
    if unknown:
        raise KeyError(f"units given for columns that do not exist: {sorted(unknown)}")
    return {name: str(units.get(name, "")) for name in names}


def _json_ready(value: Any) -> Any:
    """numpy scalars and arrays as plain Python, for json.dumps."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _metadata_json(metadata: Mapping[str, Any] | None) -> str:
    try:
        return json.dumps(dict(metadata or {}), default=_json_ready, sort_keys=False)
    except TypeError as error:
        raise TypeError(f"metadata must be JSON-serialisable: {error}") from error


def csv_column_name(name: str, unit: str) -> str:
    """The CSV header of column ``name``: ``<name>_<unit>`` (``sample_temperature_K``).

    Dimensionless columns (unit "", "1" or "dimensionless") keep their name; a ``/`` in the
    unit is spelt ``_per_`` and spaces are underscores (``rate_K_per_min``).
    """
    if unit in ("", "1", "dimensionless"):
        return name
    spelt = unit.replace("/", "_per_").replace(" ", "_").replace(",", "_")
    return f"{name}_{spelt}"


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of CSV file ``path``: the same name with ``.json`` (``r.csv`` ->
    ``r.json``)."""
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"a CSV file named {path.name!r} would be its own sidecar; "
                         "give it another suffix, e.g. .csv")
    return path.with_suffix(".json")


def write_csv(path: str | Path, columns: Mapping[str, ArrayLike],
              units: Mapping[str, str] | None = None,
              metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a table as plain CSV (one header row) and its JSON sidecar (:func:`sidecar_path`).

    The header names carry the units (:func:`csv_column_name`); the sidecar holds
    ``format``, ``columns`` (one entry per column: ``header``, ``name``, ``unit``, ``type``)
    and ``metadata``.

    Parameters
    ----------
    path : str or pathlib.Path
        File to write (parents are created).
    columns : mapping of str to array_like
        One-dimensional columns of one length: numbers, booleans or text.
    units : mapping of str to str, optional
        Unit of each column, e.g. ``{"temperature": "K", "dudi": "ohm"}``.
    metadata : mapping, optional
        JSON-serialisable run metadata.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    arrays = _checked_columns(columns)
    names = list(arrays)
    unit_of = _checked_units(units, names)
    headers = [csv_column_name(name, unit_of[name]) for name in names]
    if len(set(headers)) != len(headers):
        raise ValueError(f"columns {names} with units {unit_of} give repeated CSV headers "
                         f"{headers}")
    sidecar = {
        "format": CSV_FORMAT,
        "columns": [{"header": header, "name": name, "unit": unit_of[name],
                     "type": _TYPE_NAMES[arrays[name].dtype.kind]}
                    for header, name in zip(headers, names, strict=True)],
        "metadata": json.loads(_metadata_json(metadata)),
    }
    path = Path(path)
    side = sidecar_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(headers)
        rows = zip(*(array.tolist() for array in arrays.values()), strict=True)
        writer.writerows([repr(value) if isinstance(value, float) else value
                          for value in row] for row in rows)
    side.write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    return path


def read_csv(path: str | Path) -> RunTable:
    """Read a table written by :func:`write_csv`, with its sidecar.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file; its sidecar (:func:`sidecar_path`) must be beside it.

    Returns
    -------
    RunTable
        Columns by their names (without the unit suffix of the headers).
    """
    side = sidecar_path(path)
    if not side.exists():
        raise ValueError(f"{path} has no sidecar {side.name}: not a tcstation table "
                         "(pandas.read_csv reads it as it is)")
    sidecar = json.loads(side.read_text(encoding="utf-8"))
    if sidecar.get("format") != CSV_FORMAT:
        raise ValueError(f"{side} is not a tcstation table sidecar: format "
                         f"{sidecar.get('format')!r}, expected {CSV_FORMAT!r}")
    with Path(path).open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        headers = next(reader)
        rows = list(reader)
    described = {column["header"]: column for column in sidecar["columns"]}
    if list(described) != headers:
        raise ValueError(f"{path}: header {headers} does not match its sidecar's columns "
                         f"{list(described)}")
    columns, units = {}, {}
    for index, header in enumerate(headers):
        column = described[header]
        values = [_PARSERS[column["type"]](row[index]) for row in rows]
        columns[column["name"]] = np.array(values, dtype=_DTYPES[column["type"]])
        units[column["name"]] = column["unit"]
    return RunTable(columns, units, sidecar["metadata"])


def _write_metadata_value(group: h5py.Group, key: str, value: Any) -> None:
    plain = json.loads(json.dumps(value, default=_json_ready))
    if isinstance(plain, str):
        group.create_dataset(key, data=plain, dtype=h5py.string_dtype())
    elif isinstance(plain, bool | int | float):
        group.create_dataset(key, data=plain)
    elif (isinstance(plain, list) and plain
          and all(isinstance(item, int | float) and not isinstance(item, bool)
                  for item in plain)):
        group.create_dataset(key, data=np.asarray(plain))
    else:
        dataset = group.create_dataset(key, data=json.dumps(plain), dtype=h5py.string_dtype())
        dataset.attrs["encoding"] = "json"


def _read_metadata_value(dataset: h5py.Dataset) -> Any:
    value = dataset[()]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if dataset.attrs.get("encoding") == "json":
        return json.loads(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _long_name(name: str, unit: str, long_names: Mapping[str, str]) -> str:
    label = long_names.get(name, name)
    return f"{label} ({unit})" if unit else label


def _write_fields(group: h5py.Group, arrays: Mapping[str, np.ndarray],
                  unit_of: Mapping[str, str], long_names: Mapping[str, str]) -> None:
    """One dataset per array, each with ``long_name`` and (where known) ``units``."""
    for name, array in arrays.items():
        if array.dtype.kind in "UO":
            dataset = group.create_dataset(name, data=array.astype(object),
                                           dtype=h5py.string_dtype())
        else:
            dataset = group.create_dataset(name, data=array)
        unit = unit_of.get(name, "")
        dataset.attrs["long_name"] = _long_name(name, unit, long_names)
        if unit:
            dataset.attrs["units"] = unit


def _root_attributes(root: h5py.File, path: Path, entry: str) -> None:
    root.attrs.update({
        "NX_class": "NXroot", "default": entry, "file_name": path.name,
        "file_time": datetime.now(UTC).isoformat(timespec="seconds"),
        "creator": "tcstation analysis.export", "HDF5_Version": h5py.version.hdf5_version,
        "h5py_version": h5py.version.version,
    })


def write_nexus(path: str | Path, columns: Mapping[str, ArrayLike],
                units: Mapping[str, str] | None = None,
                metadata: Mapping[str, Any] | None = None, *, signal: str,
                axis: str = "temperature", auxiliary_signals: Sequence[str] = (),
                title: str | None = None, entry: str = "entry",
                long_names: Mapping[str, str] | None = None) -> Path:
    """Write a table as a NeXus file: NXentry/NXdata with ``signal`` plotted against ``axis``.

    Parameters
    ----------
    path : str or pathlib.Path
        File to write (parents are created; an existing file is replaced).
    columns : mapping of str to array_like
        One-dimensional columns of one length: numbers, booleans or text. Every column is
        a field of the NXdata group, in event order (not sorted).
    units : mapping of str to str, optional
        Unit of each column (UDUNITS spelling: "K", "ohm", "A").
    metadata : mapping, optional
        JSON-serialisable run metadata, written to an NXcollection ``metadata``.
    signal : str
        The plottable column, e.g. "dudi" or "chi_real".
    axis : str
        The column it is plotted against, e.g. the corrected sample temperature.
    auxiliary_signals : sequence of str
        Further columns to offer for plotting against the same axis.
    title : str, optional
        Written as ``entry/title``.
    entry : str
        Name of the NXentry group.
    long_names : mapping of str to str, optional
        Axis label of each column (default its name); the unit is added in parentheses.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    arrays = _checked_columns(columns)
    names = list(arrays)
    unit_of = _checked_units(units, names)
    for role, name in (("signal", signal), ("axis", axis),
                       *(("auxiliary signal", name) for name in auxiliary_signals)):
        if name not in arrays:
            raise KeyError(f"{role} {name!r} is not a column; columns are {names}")
    if signal == axis:
        raise ValueError(f"signal and axis must differ, got {signal!r} for both")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as root:
        _root_attributes(root, path, entry)
        entry_group = root.create_group(entry)
        entry_group.attrs.update({"NX_class": "NXentry", "default": "data"})
        if title is not None:
            entry_group.create_dataset("title", data=title, dtype=h5py.string_dtype())
        data = entry_group.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": signal, "axes": [axis],
                           f"{axis}_indices": 0})
        if auxiliary_signals:
            data.attrs["auxiliary_signals"] = list(auxiliary_signals)
        _write_fields(data, arrays, unit_of, long_names or {})
        metadata_group = entry_group.create_group("metadata", track_order=True)
        metadata_group.attrs["NX_class"] = "NXcollection"
        metadata_group.attrs["column_order"] = names
        for key, value in json.loads(_metadata_json(metadata)).items():
            _write_metadata_value(metadata_group, key, value)
    return path


def read_nexus(path: str | Path, entry: str = "entry") -> RunTable:
    """Read a table written by :func:`write_nexus`.

    Parameters
    ----------
    path : str or pathlib.Path
        The NeXus file.
    entry : str
        Name of the NXentry group.

    Returns
    -------
    RunTable
    """
    with h5py.File(path, "r") as root:
        entry_group = root[entry]
        data = entry_group["data"]
        metadata_group = entry_group["metadata"]
        names = [str(name) for name in metadata_group.attrs.get("column_order", list(data))]
        columns = {}
        for name in names:
            dataset = data[name]
            if h5py.check_string_dtype(dataset.dtype) is not None:
                columns[name] = dataset.asstr()[()].astype(str)
            else:
                columns[name] = dataset[()]
        units = {name: str(data[name].attrs.get("units", "")) for name in names}
        metadata = {key: _read_metadata_value(metadata_group[key]) for key in metadata_group}
    return RunTable(columns, units, metadata)


@dataclass(frozen=True)
class Curve:
    """One plottable NXdata group of a run: ``signal`` against ``axis``.

    Attributes
    ----------
    name : str
        Group name, e.g. ``dudi_200mA`` (letters, digits and ``_``).
    signal, axis : str
        Names of the plotted field and of its axis among ``fields``.
    fields : dict of str to numpy.ndarray
        Arrays of one first dimension; every one becomes a field of the group.
    units, long_names : dict of str to str
        Unit and axis label of each field (label default: its name).
    title : str, optional
        The group's ``title``, e.g. ``dU/dI at 200 mA``.
    """

    name: str
    signal: str
    axis: str
    fields: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    long_names: dict[str, str] = field(default_factory=dict)
    title: str | None = None

    def __post_init__(self) -> None:
        for role, name in (("signal", self.signal), ("axis", self.axis)):
            if name not in self.fields:
                raise KeyError(f"curve {self.name!r}: {role} {name!r} is not a field; fields "
                               f"are {list(self.fields)}")
        lengths = {name: len(values) for name, values in self.fields.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"curve {self.name!r}: fields must have one length, got {lengths}")


TEMPERATURE_FIELD = "sample_temperature"
"""Name of the sample temperature in exported curves and CSV columns."""
ROLE_NAMES = {"transport": {"temperature": TEMPERATURE_FIELD, "signal": "dudi", "bias": "bias"},
              "susceptibility": {"temperature": TEMPERATURE_FIELD, "signal": "chi_real",
                                 "chi_imag": "chi_imag"}}
"""Export names of the analysis roles (``start["fields"]``) of each measurement."""
LONG_NAMES = {TEMPERATURE_FIELD: "sample temperature", "dudi": "dU/dI",
              "bias": "dc bias current", "chi_real": "chi'", "chi_imag": "chi''",
              "event_index": "event index in the primary stream"}


def export_names(measurement: str, columns: Mapping[str, Any]) -> dict[str, str]:
    """Export name of each role column: ``temperature`` -> ``sample_temperature`` and so on.

    Roles without a name of their measurement (:data:`ROLE_NAMES`) keep theirs.
    """
    names = ROLE_NAMES.get(measurement, {"temperature": TEMPERATURE_FIELD})
    return {role: names.get(role, role) for role in columns}


def _bias_label(bias: float) -> tuple[str, str]:
    milliamps = round(1e3 * bias)
    name = f"{'minus' if milliamps < 0 else ''}{abs(milliamps)}mA"
    return name, f"{milliamps} mA"


def run_curves(measurement: str, columns: Mapping[str, ArrayLike],
               units: Mapping[str, str] | None = None) -> list[Curve]:
    """The plottable curves of a run from its role columns (as ``start["fields"]`` names them).

    A transport run gives one ``dudi_<bias>mA`` curve per dc bias (biases rounded to 1 mA),
    a susceptibility run ``chi_real`` and ``chi_imag``, any other run with ``temperature``
    and ``signal`` one ``data`` curve. Each curve is sorted by sample temperature and keeps
    ``event_index``, the row of each point in the primary stream.

    Parameters
    ----------
    measurement : str
        ``start["measurement"]``: "transport", "susceptibility" or other.
    columns : mapping of str to array_like
        One-dimensional columns by role: ``temperature``, ``signal``, and ``bias`` or
        ``chi_imag``.
    units : mapping of str to str, optional
        Unit of each role column.

    Returns
    -------
    list of Curve
        Empty when the columns hold no temperature and signal.
    """
    arrays = {role: np.asarray(values, dtype=float) for role, values in columns.items()}
    units = dict(units or {})
    if "temperature" not in arrays or "signal" not in arrays:
        return []
    names = export_names(measurement, arrays)
    renamed = {names[role]: values for role, values in arrays.items()}
    renamed["event_index"] = np.arange(len(arrays["temperature"]))
    unit_of = {names[role]: units.get(role, "") for role in arrays}

    def curve(name: str, signal: str, chosen: np.ndarray, title: str) -> Curve:
        order = np.flatnonzero(chosen)[np.argsort(renamed[TEMPERATURE_FIELD][chosen],
                                                  kind="stable")]
        kept = [TEMPERATURE_FIELD, signal, *(key for key in renamed
                                             if key not in (TEMPERATURE_FIELD, signal))]
        if measurement == "susceptibility":
            kept = [TEMPERATURE_FIELD, signal, "event_index"]
        return Curve(name=name, signal=signal, axis=TEMPERATURE_FIELD,
                     fields={key: renamed[key][order] for key in kept},
                     units={key: unit_of.get(key, "") for key in kept},
                     long_names=dict(LONG_NAMES), title=title)

    everything = np.ones(len(arrays["temperature"]), dtype=bool)
    if measurement == "transport" and "bias" in arrays:
        rounded = np.round(arrays["bias"], 3)
        curves = []
        for bias in sorted(set(rounded.tolist())):
            name, text = _bias_label(bias)
            curves.append(curve(f"dudi_{name}", "dudi", rounded == bias, f"dU/dI at {text}"))
        return curves
    if measurement == "susceptibility":
        curves = [curve("chi_real", "chi_real", everything, "chi' (real part)")]
        if "chi_imag" in renamed:
            curves.append(curve("chi_imag", "chi_imag", everything, "chi'' (imaginary part)"))
        return curves
    return [curve("data", names["signal"], everything, names["signal"])]


SAMPLE_UNITS = {"max_safe_temperature": "K", "warm_seconds_before": "s"}


def _iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _write_text(group: h5py.Group, name: str, text: str) -> h5py.Dataset:
    return group.create_dataset(name, data=text, dtype=h5py.string_dtype())


def _write_curve(parent: h5py.Group, curve: Curve) -> None:
    group = parent.create_group(curve.name, track_order=True)
    group.attrs.update({"NX_class": "NXdata", "signal": curve.signal, "axes": [curve.axis],
                        f"{curve.axis}_indices": 0})
    if curve.title:
        _write_text(group, "title", curve.title)
    arrays = {name: np.asarray(values) for name, values in curve.fields.items()}
    _write_fields(group, arrays, curve.units, curve.long_names)


def write_run_nexus(path: str | Path, curves: Sequence[Curve], start: Mapping[str, Any],
                    stop: Mapping[str, Any] | None = None, *, title: str | None = None,
                    program_version: str = "", entry: str = "entry") -> Path:
    """Write a run as a NeXus file: one NXdata per curve, the first the default plot.

    Layout::

        /                      NXroot, default=entry
        /entry                 NXentry, default=<first curve>: title, start_time,
                               end_time, duration, entry_identifier (the start uid),
                               program_name (version attribute)
        /entry/<curve>         NXdata per curve, signal and axes, long_name and units
        /entry/sample          NXsample: name, type, and every key of start["sample"]
        /entry/metadata        NXcollection: the start document's JSON-able keys
        /entry/stop            NXcollection: exit_status, reason, num_events

    No NeXus application definition fits this measurement, so ``definition`` is not
    written.

    Parameters
    ----------
    path : str or pathlib.Path
        File to write (parents are created; an existing file is replaced).
    curves : sequence of Curve
        At least one, e.g. from :func:`run_curves`.
    start : mapping
        The run's start document (``uid`` and ``time`` needed).
    stop : mapping, optional
        Its stop document; without it there is no ``end_time``.
    title : str, optional
        ``entry/title`` (default: the plan name and the start uid's first 8 characters).
    program_version : str
        Written as the ``version`` attribute of ``program_name``.
    entry : str
        Name of the NXentry group.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if not curves:
        raise ValueError("a run file needs at least one curve")
    names = [curve.name for curve in curves]
    if len(set(names)) != len(names):
        raise ValueError(f"curve names must differ, got {names}")
    reserved = {"sample", "metadata", "stop", "title"} & set(names)
    if reserved:
        raise ValueError(f"curve names {sorted(reserved)} are taken by the entry's own groups")
    start = json.loads(_metadata_json(start))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as root:
        _root_attributes(root, path, entry)
        group = root.create_group(entry, track_order=True)
        group.attrs.update({"NX_class": "NXentry", "default": curves[0].name})
        _write_text(group, "title", title or f"{start.get('plan_name', 'run')} "
                                              f"{str(start.get('uid', ''))[:8]}")
        _write_text(group, "entry_identifier", str(start.get("uid", "")))
        if "time" in start:
            _write_text(group, "start_time", _iso_time(start["time"]))
        if stop is not None and "time" in stop:
            _write_text(group, "end_time", _iso_time(stop["time"]))
            if "time" in start:
                duration = group.create_dataset(
                    "duration", data=np.int64(round(stop["time"] - start["time"])))
                duration.attrs["units"] = "s"
        program = _write_text(group, "program_name", "tcstation")
        if program_version:
            program.attrs["version"] = program_version
        for curve in curves:
            _write_curve(group, curve)
        sample = group.create_group("sample", track_order=True)
        sample.attrs["NX_class"] = "NXsample"
        described = start.get("sample", {})
        described = described if isinstance(described, dict) else {"name": described}
        _write_text(sample, "type", "sample")
        for key, value in described.items():
            _write_metadata_value(sample, key, value)
            if key in SAMPLE_UNITS:
                sample[key].attrs["units"] = SAMPLE_UNITS[key]
        if "state" in start and "state" not in described:
            _write_metadata_value(sample, "state", start["state"])
        metadata = group.create_group("metadata", track_order=True)
        metadata.attrs["NX_class"] = "NXcollection"
        for key, value in start.items():
            _write_metadata_value(metadata, key, value)
        if stop is not None:
            stop_group = group.create_group("stop", track_order=True)
            stop_group.attrs["NX_class"] = "NXcollection"
            for key in ("exit_status", "reason", "num_events"):
                if key in stop:
                    _write_metadata_value(stop_group, key, stop[key])
    return path
