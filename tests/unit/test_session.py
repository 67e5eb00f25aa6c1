"""The session's description with and without a Tiled server (no IOC, no server)."""

from types import SimpleNamespace

from tcstation.session import Session


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
