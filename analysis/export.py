"""Export a run's table to CSV and to NeXus (HDF5), and read both back.

A table is a set of named one-dimensional columns of one length (numbers, booleans or
text), the unit of each column and a metadata dictionary (JSON-serialisable: the run's start
document or a selection of it).

CSV layout::

    # tcstation table 1
    # units: {"temperature": "K", "dudi": "ohm"}
    # types: {"temperature": "float", "dudi": "float"}
    # metadata: {"sample": "mg_mgo", ...}
    temperature,dudi
    4.5012,0.0030001
    ...

``pandas.read_csv(path, comment="#")`` and spreadsheets read the data directly.

NeXus layout (NXentry/NXdata, readable by any HDF5 tool)::

    /                 NX_class=NXroot, default=entry, creator, file_time
    /entry            NX_class=NXentry, default=data
    /entry/title      the title, when given
    /entry/data       NX_class=NXdata, signal=<signal>, axes=[<axis>], <axis>_indices=0
    /entry/data/<col> one dataset per column, attribute units where the unit is not empty
    /entry/metadata   NX_class=NXcollection, one dataset per metadata key (dicts and mixed
                      lists as JSON text, attribute encoding=json)
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

CSV_FORMAT_LINE = "# tcstation table 1"
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


def write_csv(path: str | Path, columns: Mapping[str, ArrayLike],
              units: Mapping[str, str] | None = None,
              metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a table as CSV with a commented header carrying units, types and metadata.

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
    unit_line = json.dumps(_checked_units(units, names))
    type_line = json.dumps({name: _TYPE_NAMES[array.dtype.kind]
                            for name, array in arrays.items()})
    metadata_line = _metadata_json(metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as stream:
        stream.write(f"{CSV_FORMAT_LINE}\n# units: {unit_line}\n# types: {type_line}\n"
                     f"# metadata: {metadata_line}\n")
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(names)
        rows = zip(*(array.tolist() for array in arrays.values()), strict=True)
        writer.writerows([repr(value) if isinstance(value, float) else value
                          for value in row] for row in rows)
    return path


def read_csv(path: str | Path) -> RunTable:
    """Read a table written by :func:`write_csv`.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.

    Returns
    -------
    RunTable
    """
    header: dict[str, Any] = {}
    with Path(path).open(newline="", encoding="utf-8") as stream:
        first = stream.readline().rstrip("\n")
        if first != CSV_FORMAT_LINE:
            raise ValueError(f"{path} is not a tcstation table: first line {first!r}")
        for key in ("units", "types", "metadata"):
            line = stream.readline()
            prefix = f"# {key}: "
            if not line.startswith(prefix):
                raise ValueError(f"{path}: expected a '{prefix.strip()}' line, got {line!r}")
            header[key] = json.loads(line[len(prefix):])
        reader = csv.reader(stream)
        names = next(reader)
        rows = list(reader)
    columns = {}
    for index, name in enumerate(names):
        kind = header["types"][name]
        values = [_PARSERS[kind](row[index]) for row in rows]
        columns[name] = np.array(values, dtype=_DTYPES[kind])
    return RunTable(columns, {name: header["units"].get(name, "") for name in names},
                    header["metadata"])


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


def write_nexus(path: str | Path, columns: Mapping[str, ArrayLike],
                units: Mapping[str, str] | None = None,
                metadata: Mapping[str, Any] | None = None, *, signal: str,
                axis: str = "temperature", auxiliary_signals: Sequence[str] = (),
                title: str | None = None, entry: str = "entry") -> Path:
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
        root.attrs.update({
            "NX_class": "NXroot", "default": entry, "file_name": path.name,
            "file_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "creator": "tcstation analysis.export", "HDF5_Version": h5py.version.hdf5_version,
            "h5py_version": h5py.version.version,
        })
        entry_group = root.create_group(entry)
        entry_group.attrs.update({"NX_class": "NXentry", "default": "data"})
        if title is not None:
            entry_group.create_dataset("title", data=title, dtype=h5py.string_dtype())
        data = entry_group.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": signal, "axes": [axis],
                           f"{axis}_indices": 0})
        if auxiliary_signals:
            data.attrs["auxiliary_signals"] = list(auxiliary_signals)
        for name, array in arrays.items():
            if array.dtype.kind == "U":
                dataset = data.create_dataset(name, data=array.astype(object),
                                              dtype=h5py.string_dtype())
            else:
                dataset = data.create_dataset(name, data=array)
            if unit_of[name]:
                dataset.attrs["units"] = unit_of[name]
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
