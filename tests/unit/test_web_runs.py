"""The page's recent runs, export and figure links on runs in an in-process Tiled catalog."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run
from starlette.testclient import TestClient

from tcstation.analysis.live import transition_table
from tcstation.session import store_transitions
from tcstation.storage.layout import derived_container, ensure_layout, runs_container
from tcstation.web.app import Sources, create_app
from tcstation.web.sources import RecentRuns
from tests.unit.in_process_tiled import in_process_tiled

BIASES = (0.0, 0.2)
POINTS = 120
DATA_KEYS = {
    "transport_temperature": {"dtype": "number", "shape": [], "source": "sim", "units": "K"},
    "transport_dudi": {"dtype": "number", "shape": [], "source": "sim", "units": "ohm"},
    "bias_current": {"dtype": "number", "shape": [], "source": "sim", "units": "A"},
}
START = {
    "plan_name": "transport_ramp", "measurement": "transport",
    "sample": {"name": "mg_mgo", "insert": "transport", "contacts": "surface"},
    "fields": {"temperature": "transport_temperature", "signal": "transport_dudi",
               "bias": "bias_current"},
    "ramp": {"start": 44.0, "stop": 62.0, "rate": 0.4},
}
LOOPBACK = ("127.0.0.1", 50000)


def write_run(client, scan_id: int, with_table: bool) -> str:
    writer = TiledWriter(runs_container(client))
    began = time.time() - 3000.0 + scan_id
    bundle = compose_run(time=began, metadata={**START, "scan_id": scan_id})
    writer("start", bundle.start_doc)
    descriptor = bundle.compose_descriptor(name="primary", data_keys=DATA_KEYS)
    writer("descriptor", descriptor.descriptor_doc)
    temperature = np.linspace(44.0, 62.0, POINTS)
    bias = np.resize(BIASES, POINTS)
    dudi = 3e-3 + 2e-3 / (1 + np.exp(-(temperature - 54.0 + 5.0 * bias) / 0.5))
    for index in range(POINTS):
        data = {"transport_temperature": temperature[index], "transport_dudi": dudi[index],
                "bias_current": bias[index]}
        when = began + 10.0 * index
        writer("event", descriptor.compose_event(data=data,
                                                 timestamps=dict.fromkeys(data, when),
                                                 seq_num=index + 1, time=when))
    writer("stop", bundle.compose_stop(time=began + 1300.0))
    if with_table:
        rows = transition_table("transport", {"temperature": temperature, "signal": dudi,
                                              "bias": bias})
        store_transitions(SimpleNamespace(derived=derived_container(client)), bundle.start_doc,
                          rows)
    return bundle.start_doc["uid"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    client = in_process_tiled(tmp_path_factory.mktemp("tiled"))
    ensure_layout(client)
    older = write_run(client, 1, with_table=False)
    newer = write_run(client, 2, with_table=True)
    yield client, older, newer
    client.context.close()


def test_recent_runs_are_newest_first_with_their_stored_tc_tables(catalog):
    client, older, newer = catalog
    listed = RecentRuns(lambda: client).recent(5)
    assert [entry["uid"] for entry in listed] == [newer, older]
    assert listed[0]["scan_id"] == 2 and listed[0]["exit_status"] == "success"
    assert [row["bias"] for row in listed[0]["tc_table"]] == pytest.approx(BIASES)
    assert listed[0]["tc_table"][0]["onset"] > 50.0
    assert listed[1]["tc_table"] == []


def test_the_page_exports_and_draws_a_run_and_names_an_unknown_one(catalog):
    client, _, newer = catalog
    app = create_app(Sources(runs=RecentRuns(lambda: client)), broadcast=False)
    with TestClient(app, client=LOOPBACK) as http:
        listed = http.get("/api/runs").json()
        assert listed["error"] == "" and len(listed["runs"]) == 2
        csv = http.get(f"/api/runs/{newer}/export?format=csv")
        assert csv.status_code == 200
        assert csv.text.splitlines()[0].startswith("sample_temperature_K")
        assert len(csv.text.splitlines()) == POINTS + 1
        nexus = http.get(f"/api/runs/{newer[:8]}/export?format=hdf5")
        assert nexus.status_code == 200 and nexus.content.startswith(b"\x89HDF")
        figure = http.get(f"/api/runs/{newer}/figure")
        assert figure.status_code == 200 and figure.content.startswith(b"\x89PNG")
        bad = http.get(f"/api/runs/{newer}/export?format=xlsx")
        assert bad.status_code == 400 and "not one of csv, hdf5" in bad.json()["error"]
        unknown = http.get("/api/runs/ffffffff/export")
        assert unknown.status_code == 404 and "no run uid starts with" in unknown.json()["error"]
