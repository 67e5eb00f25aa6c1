"""The live document stream: a RunEngine's documents reach other processes through the proxy.

The followers are real ``tcstation follow`` subprocesses on the test run's proxy
(tests/integration/conftest.py); a probe run is published until they print it, so no
document of the measured run can fall in 0MQ's slow-joiner gap.
"""

from __future__ import annotations

import logging
import socket
import time

import bluesky.plans as bp
import pytest
from ophyd.sim import det, motor
from stream_followers import DEADLINE, Follower, documents, wait_until_following

from tcstation.ioc_process import free_port
from tcstation.session import open_session
from tcstation.stream import (
    StreamConfig,
    StreamPublisher,
    open_stream,
    proxy_state,
    start_proxy,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def followers(stream_proxy):
    """A JSON follower and a human one, both receiving already (a probe run reached them)."""
    raw, human = Follower("--json"), Follower()
    wait_until_following([raw, human], stream_proxy.config)
    yield raw, human
    for follower in (raw, human):
        if follower.process.poll() is None:
            follower.interrupt()


def test_a_follower_receives_every_document_of_a_run_in_order(RE, followers, stream_proxy):
    raw, human = followers
    stream = open_stream(RE, stream_proxy.config)
    try:
        (uid,) = RE(bp.scan([det], motor, -1, 1, 40), sample={"name": "nb_film"})
    finally:
        stream.close(RE)
    raw.wait_for(lambda line: '"stop"' in line and uid in line, "the run's stop")
    ours = [(name, doc["uid"]) for name, doc in RE.documents]
    received = documents(raw)
    first = next(index for index, (name, doc) in enumerate(received)
                 if name == "start" and doc["uid"] == uid)
    theirs = [(name, doc["uid"]) for name, doc in received[first:first + len(ours)]]
    assert len(ours) == 43 and theirs == ours
    assert received[first + len(ours) - 1][1]["exit_status"] == "success"

    human.wait_for(lambda line: line.startswith(f"run {uid[:8]} (scan) ended"), "the stop line")
    lines = human.lines[next(index for index, line in enumerate(human.lines)
                             if line.startswith(f"run {uid[:8]} started")):]
    assert "scan, scan" in lines[0] and "sample nb_film" in lines[0], lines[0]
    events = [line for line in lines[1:] if not line.startswith("run ")]
    assert len(events) == 40
    assert events[0].split()[:3] == ["1", "motor", "-1"], events[0]
    assert "det " in events[0]
    assert lines[41] == f"run {uid[:8]} (scan) ended: success, 40 events"


def test_a_session_publishes_its_runs(station_factory, followers, stream_proxy):
    raw, _ = followers
    ioc = station_factory(speedup=60.0)
    session = open_session(ioc.prefix, storage=False, watchdog=False, progress=False,
                           plots=False, show_tables=False)
    try:
        assert session.stream is not None and not session.stream.proxy.started
        (uid,) = session.RE(bp.count([session.station.cryostat], num=5))
    finally:
        session.close()
    raw.wait_for(lambda line: '"stop"' in line and uid in line, "the session run's stop")
    received = documents(raw)
    first = next(index for index, (name, doc) in enumerate(received)
                 if name == "start" and doc["uid"] == uid)
    last = next(index for index, (name, doc) in enumerate(received)
                if name == "stop" and doc["run_start"] == uid)
    names = [name for name, _ in received[first:last + 1]]
    assert names.count("event") == 5 and names[0] == "start" and names[-1] == "stop"


def test_ctrl_c_ends_a_follower_cleanly(stream_proxy):
    follower = Follower()
    deadline = time.monotonic() + DEADLINE
    while "following" not in follower.process.stderr.readline():
        assert time.monotonic() < deadline and follower.process.poll() is None
    code, errors = follower.interrupt()
    assert code == 0 and "stopped following" in errors, errors
    assert "Traceback" not in errors and "Task was destroyed" not in errors, errors


@pytest.mark.timeout(120)
def test_the_publisher_never_stalls_a_run_without_a_proxy(RE):
    nowhere = StreamConfig(in_port=free_port(), out_port=free_port())
    publisher = StreamPublisher(nowhere.in_address)
    RE.subscribe(publisher)
    assert not publisher.wait_connected(0.2)
    (uid,) = RE(bp.count([det], num=300))
    publisher.close()
    assert [name for name, _ in RE.documents].count("event") == 300
    assert RE.documents[-1][1]["exit_status"] == "success"


@pytest.mark.timeout(120)
def test_the_publisher_never_stalls_a_run_when_the_proxy_dies(RE):
    config = StreamConfig(in_port=free_port(), out_port=free_port())
    proxy = start_proxy(config, idle=0)
    publisher = StreamPublisher(config.in_address)
    try:
        assert publisher.wait_connected(DEADLINE)
        proxy.stop()
        # More events than 0MQ's send queue holds (1000) for a peer.
        RE.subscribe(publisher)
        RE(bp.count([det], num=1500))
    finally:
        proxy.stop()
        publisher.close()
    assert RE.documents[-1][1]["exit_status"] == "success"
    assert [name for name, _ in RE.documents].count("event") == 1500


def test_a_session_started_proxy_outlives_the_session_and_serves_the_next(RE):
    config = StreamConfig(in_port=free_port(), out_port=free_port())
    assert proxy_state(config) == "free"
    first = open_stream(RE, config)
    try:
        assert first is not None and first.proxy.started
        first.close(RE)
        assert proxy_state(config) == "proxy", "the proxy died with the first session"
        second = open_stream(RE, config)
        assert second is not None and not second.proxy.started
        second.close(RE)
    finally:
        first.proxy.stop()
    assert first.proxy.process.returncode == 0


def test_an_idle_proxy_stays_while_a_publisher_is_connected_then_stops():
    config = StreamConfig(in_port=free_port(), out_port=free_port())
    proxy = start_proxy(config, idle=0.5)
    try:
        publisher = StreamPublisher(config.in_address)
        assert publisher.wait_connected(DEADLINE)
        time.sleep(1.5)
        assert proxy.process.poll() is None, "the proxy stopped with a publisher connected"
        publisher.close()
        proxy.process.wait(DEADLINE)
        assert proxy.process.returncode == 0
    finally:
        proxy.stop()


def test_ports_held_by_something_else_give_a_clear_warning_and_no_stream(RE, caplog):
    config = StreamConfig(in_port=free_port(), out_port=free_port())
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.out_port))
        squatter.listen()
        with caplog.at_level(logging.WARNING, logger="tcstation.stream"):
            assert open_stream(RE, config) is None
    message = caplog.text
    assert f"port {config.out_port} on 127.0.0.1 is taken by something that is not a " \
           "bluesky 0MQ proxy" in message and "TCSTATION_STREAM_OUT_PORT" in message
