"""The exposure's deadline counts the physical clock, not the wall (fake devices)."""

from __future__ import annotations

import time

import pytest
from ophyd import Signal

from tcstation.devices.clock import SimulationClock
from tcstation.devices.environment import SampleEnvironment
from tcstation.devices.fakes import fake_device


def exposing_environment(speedup: float = 1000.0):
    environment = fake_device(SampleEnvironment, name="environment")
    time_signal = Signal(name="simulation_simulated_time", value=1000.0)
    time_signal._metadata["connected"] = True
    environment.clock = SimulationClock(time_signal, speedup=speedup)
    return environment, time_signal


def test_an_exposure_slower_than_its_speed_up_on_the_wall_still_ends_normally():
    """A busy machine: the simulator lags its speed-up, the wall estimate passes, it ends."""
    environment, time_signal = exposing_environment(speedup=1000.0)
    status = environment.expose(1.0)  # 180 physical s allowed: 0.18 wall s at 1000x
    environment.exposing.sim_put(1)
    time_signal.put(1030.0)
    time.sleep(0.5)  # the wall estimate of the whole allowance has passed
    time_signal.put(1060.0)
    assert not status.done, "the exposure failed on the wall clock, not the physical one"
    environment.exposing.sim_put(0)
    status.wait(2.0)
    assert status.success


def test_an_exposure_that_overruns_its_physical_time_fails_naming_it():
    environment, time_signal = exposing_environment()
    status = environment.expose(1.0)
    environment.exposing.sim_put(1)
    time_signal.put(1000.0 + 60.0 + environment.exposure_margin + 1.0)
    with pytest.raises(TimeoutError, match=r"the 1 min exposure did not end within 180 s"):
        status.wait(5.0)


def test_an_exposure_whose_clock_stands_still_fails_saying_so():
    environment, time_signal = exposing_environment()
    environment.stall_timeout = 0.3
    status = environment.expose(1.0)
    environment.exposing.sim_put(1)
    with pytest.raises(TimeoutError, match=r"the clock stood still at 1000 s for 0.3 wall s"):
        status.wait(10.0)


def test_a_physical_interval_ends_on_the_clock_or_when_cut_short():
    from tcstation.devices.clock import PhysicalInterval

    environment, time_signal = exposing_environment()
    status = PhysicalInterval(environment).set(60.0)
    time.sleep(0.3)
    time_signal.put(1030.0)
    assert not status.done, "30 of the 60 physical seconds"
    time_signal.put(1060.0)
    status.wait(2.0)
    cut = []
    status = PhysicalInterval(environment, cut_short=lambda: bool(cut)).set(60.0)
    assert not status.done
    cut.append(True)
    status.wait(3.0)
