"""export_run on a four-bias transport run read back from an in-process Tiled catalog.

The run's documents are composed as the station's transport ramp emits them (start
metadata from plans.ramps: fields, sample, measurement, plan_args; the bias changes on
every point) and written by bluesky_tiled_plugins' TiledWriter.
"""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pandas
import pytest
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run

from tcstation.report import export_run
from tests.unit.in_process_tiled import in_process_tiled

BIASES = (0.0, 0.2, 0.3, 0.4)
POINTS = 184
DATA_KEYS = {
    "transport_temperature": {"dtype": "number", "shape": [], "source": "sim", "units": "K"},
    "transport_dudi": {"dtype": "number", "shape": [], "source": "sim", "units": "ohm"},
    "bias_current": {"dtype": "number", "shape": [], "source": "sim", "units": "A"},
    "stage_temperature": {"dtype": "number", "shape": [], "source": "sim", "units": "K"},
}
START_METADATA = {
    "plan_name": "transport_ramp", "measurement": "transport", "scan_id": 3,
    "plan_args": {"start": 44.0, "stop": 62.0, "rate": 0.4, "biases": list(BIASES),
                  "frequency": 17.0, "excitation": 1e-3},
    "sample": {"name": "mg_mgo", "insert": "transport", "contacts": "surface",
               "max_safe_temperature": 300.0, "warm_seconds_before": 0.0},
    "fields": {"temperature": "transport_temperature", "signal": "transport_dudi",
               "bias": "bias_current"},
    "ramp": {"start": 44.0, "stop": 62.0, "rate": 0.4},
}


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiled")
    client = in_process_tiled(directory)
    writer = TiledWriter(client)
    began = time.time() - 3000.0
    bundle = compose_run(time=began, metadata=START_METADATA)
    writer("start", bundle.start_doc)
    descriptor = bundle.compose_descriptor(name="primary", data_keys=DATA_KEYS)
    writer("descriptor", descriptor.descriptor_doc)
    rng = np.random.default_rng(2)
    temperature = np.linspace(44.0, 62.0, POINTS) + rng.normal(0.0, 0.02, POINTS)
    bias = np.resize(BIASES, POINTS)
    dudi = 3e-3 + 2e-3 / (1 + np.exp(-(temperature - 54.0 + 5.0 * bias) / 0.5))
    for index in range(POINTS):
        when = began + 10.0 * index
        data = {"transport_temperature": temperature[index], "transport_dudi": dudi[index],
                "bias_current": bias[index], "stage_temperature": temperature[index] - 0.5}
        writer("event", descriptor.compose_event(data=data, timestamps=dict.fromkeys(data,
                                                                                  when),
                                                 seq_num=index + 1, time=when))
    stop = bundle.compose_stop(time=began + 1850.0)
    writer("stop", stop)
    yield client[bundle.start_doc["uid"]], {"temperature": temperature, "dudi": dudi,
                                             "bias": bias}, stop
    client.context.close()


def test_nexus_holds_one_plottable_curve_per_bias(stored_run, tmp_path):
    run, truth, stop = stored_run
    (path,) = export_run(run, tmp_path / "run.h5", "hdf5")
    with h5py.File(path, "r") as root:
        entry = root[root.attrs["default"]]
        assert entry.attrs["default"] == "dudi_0mA"
        curves = {name: group for name, group in entry.items()
                  if group.attrs.get("NX_class") == "NXdata"}
        assert sorted(curves) == ["dudi_0mA", "dudi_200mA", "dudi_300mA", "dudi_400mA"]
        for name, group in curves.items():
            bias = float(name.removeprefix("dudi_").removesuffix("mA")) / 1e3
            assert group.attrs["signal"] == "dudi"
            assert list(group.attrs["axes"]) == ["sample_temperature"]
            assert group["dudi"].shape == group["sample_temperature"].shape == (POINTS // 4,)
            rows = group["event_index"][()]
            np.testing.assert_allclose(group["bias"][()], bias)
            np.testing.assert_allclose(group["dudi"][()], truth["dudi"][rows])
            assert np.all(np.diff(group["sample_temperature"][()]) >= 0)
            assert group["sample_temperature"].attrs["units"] == "K"
            assert group["dudi"].attrs["long_name"] == "dU/dI (ohm)"
        assert entry["sample/name"].asstr()[()] == "mg_mgo"
        assert entry["sample/contacts"].asstr()[()] == "surface"
        assert entry["duration"][()] == 1850
        assert entry["end_time"].asstr()[()].startswith(
            time.strftime("%Y-%m-%d", time.gmtime(stop["time"])))
        assert "primary" not in entry
        assert json.loads(entry["metadata/fields"].asstr()[()]) == START_METADATA["fields"]


def test_whole_stream_adds_every_column_with_the_descriptor_units(stored_run, tmp_path):
    run, truth, _ = stored_run
    (path,) = export_run(run, tmp_path / "run.h5", "hdf5", whole_stream=True)
    with h5py.File(path, "r") as root:
        primary = root["entry/primary"]
        assert primary.attrs["signal"] == "transport_dudi"
        assert list(primary.attrs["axes"]) == ["time"]
        for name, key in DATA_KEYS.items():
            assert primary[name].attrs["units"] == key["units"], name
            assert primary[name].shape == (POINTS,)
        np.testing.assert_allclose(primary["bias_current"][()], truth["bias"])
        assert primary["time"].attrs["units"] == "s"
        assert root["entry"].attrs["default"] == "dudi_0mA"


def test_csv_reads_with_plain_pandas_and_has_a_json_sidecar(stored_run, tmp_path):
    run, truth, _ = stored_run
    csv_path, sidecar = export_run(run, tmp_path / "1a2b3c4d.csv", "csv")
    assert sidecar == tmp_path / "1a2b3c4d.json"
    frame = pandas.read_csv(csv_path)
    assert list(frame.columns) == ["sample_temperature_K", "dudi_ohm", "bias_A"]
    np.testing.assert_allclose(frame["dudi_ohm"], truth["dudi"])
    array = np.genfromtxt(csv_path, names=True, delimiter=",")
    np.testing.assert_allclose(array["sample_temperature_K"], truth["temperature"])
    described = json.loads(sidecar.read_text(encoding="utf-8"))
    assert described["metadata"]["start"]["sample"]["contacts"] == "surface"
    assert described["metadata"]["start"]["uid"] == run.metadata["start"]["uid"]
    assert described["metadata"]["stop"]["exit_status"] == "success"
    assert described["metadata"]["conditions"]["bias"] == list(BIASES)
    assert described["metadata"]["conditions"]["frequency"] == [17.0]
    assert [column["unit"] for column in described["columns"]] == ["K", "ohm", "A"]


def test_whole_stream_csv_has_every_column(stored_run, tmp_path):
    run, _, _ = stored_run
    csv_path, sidecar = export_run(run, tmp_path / "all.csv", "csv", whole_stream=True)
    frame = pandas.read_csv(csv_path)
    assert "transport_dudi_ohm" in frame and "stage_temperature_K" in frame
    assert "time_s" in frame and len(frame) == POINTS
