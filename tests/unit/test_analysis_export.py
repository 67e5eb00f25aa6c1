"""analysis.export: CSV and NeXus files round-trip columns, units and metadata."""

import csv

import h5py
import numpy as np
import pytest

from tcstation.analysis.export import RunTable, read_csv, read_nexus, write_csv, write_nexus
from tcstation.analysis.transitions import TC_TABLE_COLUMNS, TC_TABLE_UNITS

UNITS = {"temperature": "K", "dudi": "ohm", "bias": "A", "found": "", "note": ""}
METADATA = {"sample": "mg_mgo", "plan_name": "transport_ramp", "rate_k_per_min": 1.5,
            "biases": [0.0, 0.2, 0.3, 0.4], "scan_id": 7, "noise": True,
            "hints": {"dimensions": [[["temperature"], "primary"]]}, "numpy_value": np.float64(2.5)}


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    temperature = np.sort(rng.uniform(4.5, 70.0, 50))
    return {"temperature": temperature,
            "dudi": 3e-3 + 2e-3 / (1 + np.exp(-(temperature - 53.9) / 0.5)),
            "bias": np.resize([0.0, 0.2, 0.3, 0.4], 50),
            "found": np.arange(50) % 3 == 0,
            "note": np.array([f"reading, {index}" for index in range(50)])}


def assert_same_table(read: RunTable, columns):
    assert list(read.columns) == list(columns)
    for name, values in columns.items():
        assert read.columns[name].shape == np.shape(values)
        if np.asarray(values).dtype.kind == "f":
            np.testing.assert_array_equal(read.columns[name], values)  # exact: repr round-trips
        else:
            assert read.columns[name].tolist() == np.asarray(values).tolist()
    assert read.columns["found"].dtype == bool


def expected_metadata():
    return {**METADATA, "numpy_value": 2.5}


def test_csv_round_trip(tmp_path, table):
    path = write_csv(tmp_path / "run" / "table.csv", table, UNITS, METADATA)
    read = read_csv(path)
    assert_same_table(read, table)
    assert read.units == UNITS
    assert read.metadata == expected_metadata()


def test_csv_header_is_commented_and_the_data_are_plain_csv(tmp_path, table):
    path = write_csv(tmp_path / "table.csv", table, UNITS, METADATA)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert all(line.startswith("#") for line in lines[:4])
    assert '"temperature": "K"' in lines[1] and '"sample": "mg_mgo"' in lines[3]
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    assert rows[0] == list(table)
    assert len(rows) == 51
    assert float(rows[1][0]) == table["temperature"][0]
    assert rows[1][4] == "reading, 0"


def test_csv_keeps_nan(tmp_path):
    path = write_csv(tmp_path / "t.csv", {"onset": [50.1, np.nan]}, {"onset": "K"})
    onset = read_csv(path).columns["onset"]
    assert onset[0] == 50.1 and np.isnan(onset[1])


def test_nexus_layout_read_with_h5py(tmp_path, table):
    path = write_nexus(tmp_path / "run.nxs", table, UNITS, METADATA, signal="dudi",
                       axis="temperature", auxiliary_signals=["bias"], title="Mg/MgO dU/dI")
    with h5py.File(path, "r") as root:
        assert root.attrs["NX_class"] == "NXroot" and root.attrs["default"] == "entry"
        entry = root["entry"]
        assert entry.attrs["NX_class"] == "NXentry" and entry.attrs["default"] == "data"
        assert entry["title"].asstr()[()] == "Mg/MgO dU/dI"
        data = entry["data"]
        assert data.attrs["NX_class"] == "NXdata"
        assert data.attrs["signal"] == "dudi"
        assert list(data.attrs["axes"]) == ["temperature"]
        assert data.attrs["temperature_indices"] == 0
        assert list(data.attrs["auxiliary_signals"]) == ["bias"]
        assert data["dudi"].attrs["units"] == "ohm"
        assert data["temperature"].attrs["units"] == "K"
        assert "units" not in data["found"].attrs
        assert data["dudi"].shape == (50,) and data["dudi"].dtype == np.float64
        np.testing.assert_array_equal(data["temperature"][()], table["temperature"])
        assert data["found"][()].dtype == bool
        assert data["note"].asstr()[3] == "reading, 3"
        metadata = entry["metadata"]
        assert metadata.attrs["NX_class"] == "NXcollection"
        assert metadata["sample"].asstr()[()] == "mg_mgo"
        assert metadata["rate_k_per_min"][()] == 1.5
        np.testing.assert_array_equal(metadata["biases"][()], [0.0, 0.2, 0.3, 0.4])
        assert metadata["hints"].attrs["encoding"] == "json"


def test_nexus_round_trip(tmp_path, table):
    path = write_nexus(tmp_path / "run.nxs", table, UNITS, METADATA, signal="dudi")
    read = read_nexus(path)
    assert_same_table(read, table)
    assert read.units == UNITS
    assert read.metadata == expected_metadata()


@pytest.fixture
def tc_table():
    """A Tc table shaped as tc_against_bias returns it: a found and a missing transition."""
    return {"bias": np.array([0.0, 0.2]), "onset": np.array([53.9, np.nan]),
            "onset_error": np.array([0.021, np.nan]), "midpoint": np.array([53.5, np.nan]),
            "midpoint_error": np.array([0.012, np.nan]), "width": np.array([3.6, np.nan]),
            "width_error": np.array([0.05, np.nan]), "step": np.array([2e-3, np.nan]),
            "found": np.array([True, False]),
            "reason": np.array(["transition: onset 53.90 K", "no departure"])}


def test_tc_table_columns_are_those_of_tc_against_bias(tc_table):
    assert tuple(tc_table) == TC_TABLE_COLUMNS


@pytest.mark.parametrize("file_format", ["csv", "nexus"])
def test_tc_table_exports_with_its_units_and_errors(tmp_path, tc_table, file_format):
    if file_format == "csv":
        read = read_csv(write_csv(tmp_path / "tc.csv", tc_table, TC_TABLE_UNITS, {"run": "abc"}))
    else:
        read = read_nexus(write_nexus(tmp_path / "tc.nxs", tc_table, TC_TABLE_UNITS,
                                      {"run": "abc"}, signal="onset", axis="bias",
                                      auxiliary_signals=["midpoint"]))
    assert read.units == TC_TABLE_UNITS
    for name in ("onset_error", "midpoint_error", "width_error"):
        assert read.units[name] == "K", name
        np.testing.assert_array_equal(read.columns[name], tc_table[name])
    assert read.units["bias"] == "A"
    assert read.columns["reason"].tolist() == tc_table["reason"].tolist()
    np.testing.assert_array_equal(read.columns["onset"], tc_table["onset"])


def test_tc_table_units_must_name_existing_columns(tmp_path, tc_table):
    without_errors = {name: values for name, values in tc_table.items()
                      if not name.endswith("_error")}
    with pytest.raises(KeyError, match="onset_error"):
        write_csv(tmp_path / "tc.csv", without_errors, TC_TABLE_UNITS)


def test_invalid_tables_are_refused(tmp_path, table):
    with pytest.raises(ValueError, match="one length"):
        write_csv(tmp_path / "a.csv", {"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError, match="one-dimensional"):
        write_csv(tmp_path / "a.csv", {"a": np.zeros((2, 2))})
    with pytest.raises(KeyError, match="missing"):
        write_csv(tmp_path / "a.csv", table, {"missing": "K"})
    with pytest.raises(TypeError, match="JSON"):
        write_csv(tmp_path / "a.csv", table, metadata={"when": object()})
    with pytest.raises(KeyError, match="chi_real"):
        write_nexus(tmp_path / "a.nxs", table, signal="chi_real")
    with pytest.raises(ValueError, match="differ"):
        write_nexus(tmp_path / "a.nxs", table, signal="temperature")
    with pytest.raises(ValueError, match="tcstation table"):
        read_csv(_plain_csv(tmp_path))


def _plain_csv(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    return path
