"""The session's description with and without a Tiled server (no IOC, no server)."""

from types import SimpleNamespace

from tcstation.session import Session, store_transitions
from tcstation.storage.layout import TRANSITIONS_KEY_PREFIX


def _session(storage) -> Session:
    station = SimpleNamespace(simulation=None, cryostat=SimpleNamespace(prefix="LAB:TC:"))
    return Session(station=station, RE=None, storage=storage, transitions=None)


def test_description_says_runs_stay_in_the_spool_when_tiled_does_not_answer():
    description = _session(SimpleNamespace(uri=None)).description
    assert "real station (LAB:TC:)" in description
    assert "local spool" in description


def test_description_names_the_tiled_server():
    description = _session(SimpleNamespace(uri="http://127.0.0.1:8123")).description
    assert description.endswith("data: http://127.0.0.1:8123")


def test_description_without_storage():
    assert _session(None).description.endswith("no Tiled storage")


class RecordingClient:
    def __init__(self):
        self.tables = []

    def write_table(self, frame, key, metadata):
        self.tables.append((frame, key, metadata))


def test_the_stored_tc_table_names_its_raw_run_and_units():
    client = RecordingClient()
    start = {"uid": "abc123", "plan_name": "transport_ramp", "measurement": "transport"}
    rows = [{"bias": 0.0, "onset": 54.1, "onset_error": 0.02, "midpoint": 53.6,
             "midpoint_error": 0.01, "width": 1.1, "width_error": 0.03, "found": True,
             "reason": "transition", "step": 2e-3}]
    store_transitions(SimpleNamespace(derived=client), start, rows)
    ((frame, key, metadata),) = client.tables
    assert key == TRANSITIONS_KEY_PREFIX + "abc123"
    assert metadata["raw_run"] == "abc123"
    assert list(frame.columns) == list(rows[0])
    assert metadata["units"]["onset_error"] == metadata["units"]["onset"] == "K"
    assert metadata["units"]["width_error"] == metadata["units"]["midpoint_error"] == "K"
    assert metadata["units"]["bias"] == "A" and metadata["units"]["step"] == "ohm"
