"""Shared fixtures: Channel Access ports for the session, IOCs as subprocesses.

pyepics reads the EPICS_CA_* environment once, when its context is created, so
a pool of loopback ports is chosen here, before anything imports epics, and
every port of the pool is in the client's address list.  Each IOC takes its
own port from the pool (two servers on one UDP port would split the searches).
"""

from __future__ import annotations

import itertools
import os
import signal
import uuid

import caproto.sync.client
import pytest

from tcstation.ca_renewal import start_channel_renewal
from tcstation.ioc_process import (
    SimulatedStationProcess,
    free_port,
    loopback_client_environment,
    start_repeater,
)

# caproto's sync client spawns a CA repeater that inherits, and holds open, the
# session's stdout: a piped run (CI) would never end. Nothing here needs one.
caproto.sync.client.spawn_repeater = lambda: None

CA_PORTS = tuple(sorted({free_port() for _ in range(12)}))[:8]
os.environ.update(loopback_client_environment(*CA_PORTS))
_next_port = itertools.cycle(CA_PORTS)
# The live document stream of every session the tests open goes to a proxy on ports of
# the test run's own (tests/integration/conftest.py starts it), never to the station's.
os.environ.update({"TCSTATION_STREAM_IN_PORT": str(free_port()),
                   "TCSTATION_STREAM_OUT_PORT": str(free_port())})


@pytest.fixture(scope="session", autouse=True)
def interruptible_children():
    """Subprocesses get SIGINT's default disposition, however the suite was launched.

    A shell script's background job starts with SIGINT ignored, and an ignored signal
    stays ignored across exec: a `tcstation qserver` started by the tests would then not
    stop on Ctrl-C (SIGINT), which one test checks. Python's handler here is reset to
    the default in each child at exec.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session", autouse=True)
def ca_repeater():
    """The session's CA repeater, on the pool's repeater port, as a station machine runs one.

    A session opened by a test (``open_session``) then finds it and starts none of its own.
    """
    with start_repeater() as running:
        yield running


@pytest.fixture(scope="session")
def channel_renewal(ca_repeater):
    """Disconnected channels re-created on an IOC's beacons, as ``open_session`` does."""
    renewal = start_channel_renewal(ca_repeater.port)
    assert renewal.wait_registered(10.0), "the CA repeater never confirmed the registration"
    yield renewal
    renewal.stop()


@pytest.fixture(autouse=True)
def tiled_client_classes():
    """Each test starts with tiled's process-wide client classes as they were.

    Reading a run through databroker's ``.v1`` takes ``run.v2``, which in bluesky-tiled-plugins
    2.0.12 writes ``BlueskyRunV2`` into tiled's default client registry (a ``copy.copy``
    that shares the mapping): every later ``c[uid]`` of the worker process would be a v2 run.
    """
    from tiled.client.container import DEFAULT_STRUCTURE_CLIENT_DISPATCH, Container

    Container.discover_clients_from_entrypoints()  # once, before the snapshot
    # (tiled 0.2.20's OneShotCachedMap has no public way to put an entry back.)
    saved = {name: dict(registry._OneShotCachedMap__mapping)
             for name, registry in DEFAULT_STRUCTURE_CLIENT_DISPATCH.items()}
    yield
    for name, registry in DEFAULT_STRUCTURE_CLIENT_DISPATCH.items():
        mapping = registry._OneShotCachedMap__mapping
        mapping.clear()
        mapping.update(saved[name])


def random_prefix() -> str:
    return f"T{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def station_factory(tmp_path_factory):
    """Start simulated station IOCs; every one is stopped when the module ends."""
    started: list[SimulatedStationProcess] = []
    log_dir = tmp_path_factory.mktemp("ioc-logs")

    def start(speedup: float = 60.0, sample: str = "mg_mgo", noise: bool = True,
              seed: int | None = 1) -> SimulatedStationProcess:
        prefix = random_prefix()
        process = SimulatedStationProcess(
            prefix, next(_next_port), speedup=speedup, sample=sample, noise=noise, seed=seed,
            log_path=log_dir / f"{prefix.rstrip(':')}.log",
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
