"""analysis.export: CSV and NeXus files round-trip columns, units and metadata."""

import csv
import json
from datetime import datetime

import h5py
import numpy as np
import pandas
import pytest

from tcstation.analysis.export import (
    RunTable,
    csv_column_name,
    read_csv,
    read_nexus,
    run_curves,
    sidecar_path,
    write_csv,
    write_nexus,
    write_run_nexus,
)
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


def test_csv_is_plain_with_units_in_the_header_and_a_json_sidecar(tmp_path, table):
    path = write_csv(tmp_path / "table.csv", table, UNITS, METADATA)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "temperature_K,dudi_ohm,bias_A,found,note"
    assert not any(line.startswith("#") for line in lines)
    rows = list(csv.reader(lines))
    assert len(rows) == 51
    assert float(rows[1][0]) == table["temperature"][0]
    assert rows[1][4] == "reading, 0"
    sidecar = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    assert sidecar_path(path).name == "table.json"
    assert sidecar["metadata"] == expected_metadata()
    assert sidecar["columns"][0] == {"header": "temperature_K", "name": "temperature",
                                     "unit": "K", "type": "float"}


def test_csv_reads_with_pandas_and_numpy_unchanged(tmp_path, table):
    path = write_csv(tmp_path / "table.csv", table, UNITS, METADATA)
    frame = pandas.read_csv(path)
    assert list(frame.columns) == ["temperature_K", "dudi_ohm", "bias_A", "found", "note"]
    np.testing.assert_array_equal(frame["temperature_K"], table["temperature"])
    np.testing.assert_array_equal(frame["dudi_ohm"], table["dudi"])
    assert frame["found"].dtype == bool and frame["note"][3] == "reading, 3"
    numeric = write_csv(tmp_path / "numeric.csv",
                        {name: table[name] for name in ("temperature", "dudi", "bias")},
                        {"temperature": "K", "dudi": "ohm", "bias": "A"})
    array = np.genfromtxt(numeric, names=True, delimiter=",")
    assert array.dtype.names == ("temperature_K", "dudi_ohm", "bias_A")
    np.testing.assert_array_equal(array["dudi_ohm"], table["dudi"])


def test_csv_column_names_spell_units():
    assert csv_column_name("sample_temperature", "K") == "sample_temperature_K"
    assert csv_column_name("rate", "K/min") == "rate_K_per_min"
    assert csv_column_name("chi_real", "dimensionless") == "chi_real"
    assert csv_column_name("found", "") == "found"


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
        assert data["temperature"].attrs["long_name"] == "temperature (K)"
        assert "units" not in data["found"].attrs
        assert data["found"].attrs["long_name"] == "found"
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
    with pytest.raises(ValueError, match="no sidecar"):
        read_csv(_plain_csv(tmp_path))
    with pytest.raises(ValueError, match="own sidecar"):
        write_csv(tmp_path / "a.json", table)


def _plain_csv(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    return path


BIASES = (0.0, 0.2, 0.3, 0.4)
START = {"uid": "1a2b3c4d-0000-4000-8000-000000000001", "time": 1_796_000_000.0,
         "scan_id": 12, "plan_name": "transport_ramp", "measurement": "transport",
         "sample": {"name": "mg_mgo", "insert": "transport", "contacts": "surface",
                    "max_safe_temperature": 300.0, "warm_seconds_before": 1800.0},
         "plan_args": {"start": 44.0, "stop": 62.0, "rate": 0.4, "biases": list(BIASES)},
         "fields": {"temperature": "t", "signal": "d", "bias": "b"}}
STOP = {"uid": "5", "run_start": START["uid"], "time": START["time"] + 2700.25,
        "exit_status": "success", "reason": "", "num_events": {"primary": 184}}


@pytest.fixture
def four_bias_run():
    """Role columns of a transport ramp cycling through four biases: the bias changes on
    183 of 184 points, the temperature rises with a little noise."""
    rng = np.random.default_rng(1)
    points = 184
    temperature = np.linspace(44.0, 62.0, points) + rng.normal(0.0, 0.02, points)
    bias = np.resize(BIASES, points) + rng.normal(0.0, 1e-5, points)
    onset = 54.0 - 5.0 * bias
    dudi = 3e-3 + 2e-3 / (1 + np.exp(-(temperature - onset) / 0.5))
    return ({"temperature": temperature, "signal": dudi, "bias": bias},
            {"temperature": "K", "signal": "ohm", "bias": "A"})


def test_a_transport_run_gives_one_curve_per_bias(four_bias_run):
    columns, units = four_bias_run
    curves = run_curves("transport", columns, units)
    assert [curve.name for curve in curves] == ["dudi_0mA", "dudi_200mA", "dudi_300mA",
                                                "dudi_400mA"]
    assert sum(len(curve.fields["dudi"]) for curve in curves) == 184
    for curve, bias in zip(curves, BIASES, strict=True):
        assert curve.signal == "dudi" and curve.axis == "sample_temperature"
        assert np.all(np.diff(curve.fields["sample_temperature"]) >= 0)
        np.testing.assert_allclose(curve.fields["bias"], bias, atol=1e-4)
        rows = curve.fields["event_index"]
        np.testing.assert_array_equal(curve.fields["dudi"], columns["signal"][rows])
        assert curve.units == {"sample_temperature": "K", "dudi": "ohm", "bias": "A",
                               "event_index": ""}


def test_a_susceptibility_run_gives_chi_real_and_chi_imag():
    temperature = np.array([40.0, 39.0, 41.0])
    curves = run_curves("susceptibility", {"temperature": temperature,
                                           "signal": np.array([-1.0, -1.0, -0.5]),
                                           "chi_imag": np.array([0.1, 0.0, 0.2])},
                        {"temperature": "K", "signal": "dimensionless"})
    assert [(curve.name, curve.signal) for curve in curves] == [("chi_real", "chi_real"),
                                                                ("chi_imag", "chi_imag")]
    np.testing.assert_array_equal(curves[1].fields["chi_imag"], [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(curves[0].fields["sample_temperature"], [39.0, 40.0, 41.0])


def _resolve(group, name):
    assert name in group, f"{group.name} names {name!r}, which it does not hold"
    return group[name]


def test_run_nexus_plots_one_nxdata_per_bias(tmp_path, four_bias_run):
    columns, units = four_bias_run
    path = write_run_nexus(tmp_path / "run.h5", run_curves("transport", columns, units),
                           START, STOP, title="transport_ramp Mg/MgO", program_version="0.1")
    with h5py.File(path, "r") as root:
        entry = _resolve(root, root.attrs["default"])
        assert entry.attrs["NX_class"] == "NXentry"
        default = _resolve(entry, entry.attrs["default"])
        assert default.name == "/entry/dudi_0mA"
        groups = [group for group in entry.values()
                  if group.attrs.get("NX_class") == "NXdata"]
        assert len(groups) == 4
        for group in groups:
            signal = _resolve(group, group.attrs["signal"])
            (axis_name,) = group.attrs["axes"]
            axis = _resolve(group, axis_name)
            assert group.attrs[f"{axis_name}_indices"] == 0
            assert signal.shape == axis.shape and signal.shape[0] > 40
            assert np.all(np.diff(axis[()]) >= 0)
            assert np.ptp(group["bias"][()]) < 1e-3
            assert "auxiliary_signals" not in group.attrs
            for name, dataset in group.items():
                if isinstance(dataset, h5py.Dataset) and name != "title":
                    assert dataset.attrs["long_name"], name
            assert signal.attrs["units"] == "ohm" and axis.attrs["units"] == "K"
            assert signal.attrs["long_name"] == "dU/dI (ohm)"
        assert entry["dudi_200mA/title"].asstr()[()] == "dU/dI at 200 mA"
        assert datetime.fromisoformat(entry["start_time"].asstr()[()]).timestamp() == \
            START["time"]
        assert datetime.fromisoformat(entry["end_time"].asstr()[()]).timestamp() == \
            STOP["time"]
        assert entry["duration"][()] == 2700 and entry["duration"].attrs["units"] == "s"
        assert entry["entry_identifier"].asstr()[()] == START["uid"]
        assert entry["program_name"].asstr()[()] == "tcstation"
        assert entry["program_name"].attrs["version"] == "0.1"
        assert entry["title"].asstr()[()] == "transport_ramp Mg/MgO"
        sample = entry["sample"]
        assert sample.attrs["NX_class"] == "NXsample"
        assert sample["name"].asstr()[()] == "mg_mgo"
        assert sample["contacts"].asstr()[()] == "surface"
        assert sample["warm_seconds_before"][()] == 1800.0
        assert sample["warm_seconds_before"].attrs["units"] == "s"
        metadata = entry["metadata"]
        assert metadata.attrs["NX_class"] == "NXcollection"
        assert metadata["scan_id"][()] == 12
        assert json.loads(metadata["plan_args"].asstr()[()])["biases"] == list(BIASES)
        assert entry["stop/exit_status"].asstr()[()] == "success"


def test_run_nexus_is_valid_nxdata_for_silx(tmp_path, four_bias_run):
    nxdata = pytest.importorskip("silx.io.nxdata")
    columns, units = four_bias_run
    path = write_run_nexus(tmp_path / "run.h5", run_curves("transport", columns, units),
                           START, STOP)
    with h5py.File(path, "r") as root:
        names = [name for name, group in root["entry"].items()
                 if group.attrs.get("NX_class") == "NXdata"]
        assert len(names) == 4
        for name in names:
            assert nxdata.is_valid_nxdata(root["entry"][name]), name
            data = nxdata.NXdata(root["entry"][name])
            assert data.signal_dataset_name == "dudi"
            assert data.axes_dataset_names == ["sample_temperature"]
            assert data.signal_name == "dU/dI (ohm)"  # silx labels the plot with long_name
            assert data.is_curve
        default = nxdata.get_default(root)
        assert default is not None and default.group.name == "/entry/dudi_0mA"


def test_run_nexus_plots_in_nexusformat(tmp_path, four_bias_run):
    nexus = pytest.importorskip("nexusformat.nexus")
    columns, units = four_bias_run
    path = write_run_nexus(tmp_path / "run.h5", run_curves("transport", columns, units),
                           START, STOP)
    tree = nexus.nxload(str(path))
    plottable = tree.plottable_data
    assert plottable.nxpath == "/entry/dudi_0mA"
    assert plottable.nxsignal.nxname == "dudi"
    assert [axis.nxname for axis in plottable.nxaxes] == ["sample_temperature"]
    assert plottable.nxsignal.shape == plottable.nxaxes[0].shape
    assert tree["entry/sample"].nxclass == "NXsample"


def test_run_nexus_has_no_errors_for_nexusformat_validate(tmp_path, four_bias_run):
    validate = pytest.importorskip("nexusformat.nexus.validate")
    columns, units = four_bias_run
    path = write_run_nexus(tmp_path / "run.h5", run_curves("transport", columns, units),
                           START, STOP)
    warnings, errors = validate.validate_file(str(path))
    assert errors == 0
    # The warnings are the NXsample fields the base class does not define (insert,
    # contacts, max_safe_temperature, warm_seconds_before): the station's own.
    assert warnings == len(START["sample"]) - 1
