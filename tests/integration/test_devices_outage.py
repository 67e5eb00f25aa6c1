"""A lock-in trigger caught mid-settle by an IOC outage (kill -9, restart on the same state)."""

from __future__ import annotations

import logging
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine

from devices import build_station

pytestmark = pytest.mark.integration

LONG_TIME_CONSTANT = 12  # OFLT 10 s: 70 s to settle at 12 dB/oct, 7 wall s at 10x
SHORT_TIME_CONSTANT = 9  # OFLT 300 ms: 2.1 s to settle


def wait_for(predicate, timeout: float, what: str, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def ioc(station_factory, tmp_path_factory):
    process = station_factory(speedup=10.0, sample="mg_mgo", noise=True)
    process.state_file = tmp_path_factory.mktemp("outage") / "state.json"
    process.restart()  # now saving its state, so a restart resumes the same simulation
    return process


@pytest.fixture(scope="module")
def station(ioc):
    station = build_station(ioc.prefix).connect(timeout=10.0)
    yield station
    for device in station.devices:
        device.destroy()


def kill(ioc) -> None:
    """kill -9: no clean shutdown, no last save."""
    ioc.process.kill()
    ioc.process.wait(10.0)


def test_a_trigger_interrupted_mid_settle_stays_pending_and_the_next_one_succeeds(
        ioc, station, caplog):
    lockin, clock = station.transport, station.clock
    RE = RunEngine({})
    RE(bps.mv(lockin.time_constant, LONG_TIME_CONSTANT))
    wait_for(ioc.state_file.exists, 10.0, "the IOC to save its state")
    settle = lockin.settle_time()
    assert settle == pytest.approx(70.0)

    with caplog.at_level(logging.WARNING, logger="devices.lockin"):
        interrupted = lockin.trigger()
        triggered_at = clock.now()
        kill(ioc)
        # The old trigger failed here, settle x time scale + 5 s later (12 wall s).
        wait_for(lambda: interrupted.done or "trigger is left pending" in caplog.text,
                 settle * lockin.time_scale + 2 * lockin.fresh_reading_timeout,
                 "the trigger to be failed or left pending")
    assert clock.now() < triggered_at + settle, "the outage must land mid-settle"
    assert not interrupted.done, f"the interrupted trigger ended: {interrupted}"

    ioc.start()  # same port, same state file: the simulation resumes where it was saved
    wait_for(lambda: clock.connected and lockin.x.connected, 30.0, "the station to reconnect")
    resumed_at = clock.now()
    wait_for(lambda: clock.now() > resumed_at, 10.0, "the simulation clock to tick again")
    RE(bps.mv(lockin.time_constant, SHORT_TIME_CONSTANT))

    started = clock.now()
    fresh = lockin.trigger()
    fresh.wait(30.0)
    assert fresh.success
    assert clock.now() >= started + lockin.settle_time()
    assert not interrupted.done, "the abandoned trigger must not finish (or fail) later"
    reading = lockin.read()
    assert reading["transport_x"]["timestamp"] > 0
