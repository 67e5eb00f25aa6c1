"""A lock-in trigger caught mid-settle by an IOC outage (kill -9, restart on the same state)."""

from __future__ import annotations

import logging
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine
from polling import wait_for

pytestmark = pytest.mark.integration

LONG_TIME_CONSTANT = 12  # OFLT 10 s: 70 s to settle at 12 dB/oct, 7 wall s at 10x
SHORT_TIME_CONSTANT = 9  # OFLT 300 ms: 2.1 s to settle


@pytest.fixture(scope="module")
def ioc(station_factory, tmp_path_factory):
    process = station_factory(speedup=10.0, sample="mg_mgo", noise=True)
    process.state_file = tmp_path_factory.mktemp("outage") / "state.json"
    process.restart()  # now saving its state, so a restart resumes the same simulation
    return process


def kill(ioc) -> None:
    """kill -9: no clean shutdown, no last save."""
    ioc.process.kill()
    ioc.process.wait(10.0)


def test_a_trigger_interrupted_mid_settle_finishes_with_a_settle_after_the_restart(
        ioc, station, caplog):
    lockin, clock = station.transport, station.clock
    RE = RunEngine({})
    RE(bps.mv(lockin.time_constant, SHORT_TIME_CONSTANT))
    RE(bps.mv(lockin.time_constant, LONG_TIME_CONSTANT))
    # the restarted IOC must come back with the long time constant: wait for a save after it
    put_at = time.time()
    wait_for(lambda: ioc.state_file.exists() and ioc.state_file.stat().st_mtime > put_at, 10.0,
             "the IOC to save its state")
    settle = lockin.settle_time()
    assert settle == pytest.approx(70.0)

    with caplog.at_level(logging.WARNING, logger="tcstation.devices.lockin"):
        interrupted = lockin.trigger()
        triggered_at = clock.now()
        kill(ioc)
        # The oldest code failed here, settle x time scale + 5 s later (12 wall s).
        wait_for(lambda: interrupted.done or "the trigger waits up to" in caplog.text,
                 settle * lockin.time_scale + 10.0, "the trigger to see the outage")
        assert clock.now() < triggered_at + settle, "the outage must land mid-settle"
        assert not interrupted.done, f"the trigger ended during the outage: {interrupted}"

        after_restart = []  # simulated times the restarted IOC published
        subscription = clock.time_signal.subscribe(
            lambda value=None, **kwargs: after_restart.append(value), run=False)
        ioc.start()  # same port, same state file: the simulation resumes where it was saved
        wait_for(lambda: "the IOC is back; the trigger settles again" in caplog.text, 60.0,
                 "the trigger to see the IOC back")
        interrupted.wait(settle * lockin.time_scale + 60.0)
    clock.time_signal.unsubscribe(subscription)
    assert interrupted.success
    assert clock.now() >= after_restart[0] + settle, "a full settle after the restart"
    assert lockin.x.connected and lockin.read()["transport_x"]["timestamp"] > 0

    RE(bps.mv(lockin.time_constant, SHORT_TIME_CONSTANT))
    started = clock.now()
    fresh = lockin.trigger()
    fresh.wait(30.0)
    assert fresh.success
    assert clock.now() >= started + lockin.settle_time()
