"""Fixtures the integration modules share: a station IOC, the station on it, a RunEngine.

A module that needs another IOC (another sample, speed-up or a state file) overrides
``ioc``; ``station`` and ``RE`` then follow it.
"""

from __future__ import annotations

import pytest
from bluesky import RunEngine

from tcstation.devices import build_station
from tcstation.stream import StreamConfig, start_proxy
from tests.integration.bridge_processes import Emulators


@pytest.fixture(scope="session", autouse=True)
def stream_proxy():
    """The test run's document stream proxy (tests/conftest.py chose its ports).

    Started here and stopped at the end, so the sessions the tests open find it and none
    leaves one behind for its idle time.
    """
    handle = start_proxy(StreamConfig.from_environment(), idle=0)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def ioc(station_factory):
    """The simulated station at 60x with Mg/MgO mounted and noise on."""
    return station_factory(speedup=60.0, sample="mg_mgo", noise=True)


@pytest.fixture(scope="module")
def station(ioc):
    """The station's devices, connected to the module's IOC, destroyed after the module."""
    station = build_station(ioc.prefix).connect(timeout=20.0)
    yield station
    for device in station.devices:
        device.destroy()


@pytest.fixture
def RE():
    """A RunEngine that keeps every document it emits in ``RE.documents``."""
    engine = RunEngine({}, call_returns_result=False)
    documents: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    engine.documents = documents
    yield engine
    if engine.state != "idle":
        engine.halt()


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    """The instruments' emulators on free loopback ports (``tcstation emulate``)."""
    running = Emulators(tmp_path_factory.mktemp("emulators")).start()
    yield running
    running.stop()
