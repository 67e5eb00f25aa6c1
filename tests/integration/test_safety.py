"""The sample never passes its limit: guard in kelvin, watchdog, targets, clean-up, ramp's end.

Each test asserts on what the sample reached (the simulator's true sample
temperature, monitored throughout), never on timing.
"""

from __future__ import annotations

import threading
import time

import epics
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from ophyd import EpicsSignal

from tcstation.devices.station import build_station
from tcstation.plans.maintenance import cool_down
from tcstation.plans.policy import HOLD_MARGIN
from tcstation.plans.ramps import RampInterruptedError, transport_ramp
from tcstation.plans.safety import (
    SampleTemperatureGuard,
    UnsafeSetpointError,
    refuse_unsafe_setpoints,
)

pytestmark = pytest.mark.integration

LIMIT = 77.0  # K, the Mg/MgO sample's


class Peak:
    """The highest true sample temperature seen since ``reset``."""

    def __init__(self, station):
        self.signal = station.simulation.sample_temperature
        self.value = -np.inf
        self.signal.subscribe(self._update, run=True)

    def _update(self, value=None, **kwargs):
        if value is not None:
            self.value = max(self.value, float(value))

    def reset(self):
        self.value = float(self.signal.get(use_monitor=False))


def simulated_time(station) -> float:
    return float(station.simulation.simulated_time.get(use_monitor=False))


def wait_simulated(station, seconds: float, wall_timeout: float = 120.0) -> None:
    """Wait until the simulation clock has advanced ``seconds`` (a reading we wait for)."""
    end = simulated_time(station) + seconds
    deadline = time.monotonic() + wall_timeout
    while simulated_time(station) < end:
        assert time.monotonic() < deadline, f"the simulation did not advance {seconds} s"
        time.sleep(0.05)


def heater_runs_away(prefix: str) -> None:
    """An operator's slip: open loop at full output on the high range."""
    assert epics.caput(f"{prefix}TC:OUT1:MOUT", 100.0, wait=True) == 1
    assert epics.caput(f"{prefix}TC:HTR1:Range", "High", wait=True) == 1
    assert epics.caput(f"{prefix}TC:OUT1:Mode", "Open Loop", wait=True) == 1


_engines: list[RunEngine] = []


def guarded_engine(station) -> tuple[RunEngine, SampleTemperatureGuard, list]:
    RE = RunEngine({}, call_returns_result=False)
    documents: list = []
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    guard = SampleTemperatureGuard(station.cryostat)
    RE.install_suspender(guard)
    RE.preprocessors.append(refuse_unsafe_setpoints(station.cryostat))
    _engines.append(RE)
    return RE, guard, documents


@pytest.fixture(autouse=True)
def remove_guards():
    """A guard left installed would act on the next test's runaway."""
    yield
    while _engines:
        RE = _engines.pop()
        RE.clear_suspenders()
        if RE.state != "idle":
            RE.halt()


def after_events(RE, count: int, action, condition=None):
    """Run ``action`` in a thread once ``count`` events (meeting ``condition``) were emitted."""
    seen = []

    def watch(name, doc):
        if name == "event" and (condition is None or condition(doc)):
            seen.append(doc)
            if len(seen) == count:
                threading.Thread(target=action, daemon=True).start()

    return RE.subscribe(watch)


@pytest.fixture
def restore(station, ioc):
    yield
    prefix = ioc.prefix
    epics.caput(f"{prefix}TC:IN1:Units", "K", wait=True)
    epics.caput(f"{prefix}TC:OUT1:Mode", "Closed Loop", wait=True)
    epics.caput(f"{prefix}TC:OUT1:MOUT", 0.0, wait=True)


def test_celsius_display_units_do_not_blind_the_guard(station, ioc, restore):
    """IN1 in Celsius (a legal put) and a heater runaway mid-ramp: the sample stays cold."""
    RE, guard, _ = guarded_engine(station)
    peak = Peak(station)
    RE(cool_down(station, 60.0))
    assert epics.caput(f"{ioc.prefix}TC:IN1:Units", "C", wait=True) == 1
    peak.reset()
    after_events(RE, 3, lambda: heater_runs_away(ioc.prefix))
    with pytest.raises(RampInterruptedError, match="temperature guard"):
        RE(transport_ramp(station, start=60.0, stop=75.0, rate=1.5, biases=(0.0,)))
    wait_simulated(station, 120.0)
    assert guard.trips >= 1
    assert peak.value < LIMIT, f"the sample reached {peak.value:.2f} K"


def test_the_watchdog_stops_a_100_K_setpoint_with_the_run_engine_idle(station, ioc,
                                                                       restore, tmp_path):
    from tcstation.watchdog import start_watchdog

    prefix = ioc.prefix
    peak = Peak(station)
    log = tmp_path / "watchdog.log"
    with start_watchdog(prefix, log_path=log) as watchdog:
        assert watchdog.owned and watchdog.running
        peak.reset()
        assert epics.caput(f"{prefix}TC:OUT1:Mode", "Closed Loop", wait=True) == 1
        assert epics.caput(f"{prefix}TC:HTR1:Range", "High", wait=True) == 1
        assert epics.caput(f"{prefix}TC:OUT1:SP", 100.0, wait=True) == 1
        # The reaction first (a starved watchdog process may take wall seconds to act), then
        # 12 sample lags (20 s) for the lagging sample's peak to have passed.
        deadline = time.monotonic() + 120.0
        while "made safe" not in log.read_text():
            assert watchdog.running, "the watchdog exited:\n" + log.read_text()[-2000:]
            assert time.monotonic() < deadline, (
                "the watchdog did not make the station safe within 120 wall s:\n"
                + log.read_text()[-2000:])
            time.sleep(0.05)
        wait_simulated(station, 240.0)
    assert peak.value < LIMIT, f"the sample reached {peak.value:.2f} K"
    assert station.cryostat.heater_range.get(use_monitor=False) == "Off"
    assert station.cryostat.setpoint.get(use_monitor=False) <= LIMIT - HOLD_MARGIN + 1e-6
    assert "watchdog" in log.read_text() and "heater range Off" in log.read_text()


def test_a_raw_unsafe_setpoint_in_a_plan_is_refused_and_the_run_ends(station, ioc):
    RE, _, documents = guarded_engine(station)
    raw = EpicsSignal(f"{ioc.prefix}TC:OUT1:SP", name="raw_setpoint")
    raw.wait_for_connection(10.0)
    before = station.cryostat.setpoint.get(use_monitor=False)

    def plan():
        yield from bps.open_run()
        yield from bps.checkpoint()
        yield from bps.mv(raw, 100.0)
        yield from bps.close_run()

    # A plan that re-put the value on every resume would never end: pause it then.
    stopper = threading.Timer(60.0, RE.request_pause)
    stopper.start()
    try:
        with pytest.raises(UnsafeSetpointError, match=r"setpoint 100 K .* 0 to 76 K"):
            RE(plan())
    finally:
        stopper.cancel()
    assert station.cryostat.setpoint.get(use_monitor=False) == pytest.approx(before)
    stop = [doc for name, doc in documents if name == "stop"][-1]
    assert stop["exit_status"] == "fail"


def test_the_final_setpoint_after_a_ramp_to_the_limit_is_the_safe_hold(station):
    RE, guard, documents = guarded_engine(station)
    RE(transport_ramp(station, start=74.0, stop=76.0, rate=1.5, biases=(0.0,)))
    stop = [doc for name, doc in documents if name == "stop"][-1]
    assert stop["exit_status"] == "success"
    assert guard.trips == 0, guard.last_trip
    wait_simulated(station, 30.0)  # the end-of-plan stop() has run and posted
    assert station.cryostat.setpoint.get(use_monitor=False) <= LIMIT - HOLD_MARGIN + 1e-6


def test_a_guard_trip_near_a_ramps_end_ends_it_with_the_ramps_error(station, ioc,
                                                                    restore):
    RE, guard, _ = guarded_engine(station)
    sample_field = station.cryostat.sample_temperature.name
    after_events(RE, 1, lambda: heater_runs_away(ioc.prefix),
                 condition=lambda doc: doc["data"][sample_field] >= 73.5)
    with pytest.raises(RampInterruptedError, match="temperature guard"):
        RE(transport_ramp(station, start=71.0, stop=74.0, rate=1.5, biases=(0.0, 0.2)))
    assert guard.trips >= 1


def test_a_guard_trip_after_the_ramp_closed_does_not_replay_the_closed_run(station,
                                                                         ioc, restore):
    """The runaway starts at the run's stop document and the trip lands before the clean-up.

    The clean-up (make_safe) puts the loop back in closed loop, which ends the runaway:
    a trip that lands later than that depends on how long the clean-up's puts take. So
    the stop document's callback, in the RunEngine's thread, holds the plan until the
    guard has tripped (a reaction we wait for): the suspension then always falls in the
    clean-up, after the run closed.
    """
    RE, guard, documents = guarded_engine(station)
    peak = Peak(station)
    RE(cool_down(station, 72.0))
    peak.reset()
    trips_at_stop = []

    def runaway_at_stop(name, doc):
        if name != "stop":
            return
        heater_runs_away(ioc.prefix)
        deadline = time.monotonic() + 120.0
        while guard.trips == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        trips_at_stop.append(guard.trips)

    RE.subscribe(runaway_at_stop)
    before_ramp = len(documents)
    RE(transport_ramp(station, start=72.0, stop=73.0, rate=1.5, biases=(0.0,)))
    assert trips_at_stop and trips_at_stop[0] >= 1, (
        "the runaway after the run did not trip the guard within 120 wall s")
    wait_simulated(station, 60.0)
    assert peak.value < LIMIT, f"the sample reached {peak.value:.2f} K"
    ramp_documents = documents[before_ramp:]
    names = [name for name, _ in ramp_documents]
    assert names.count("start") == names.count("stop") == 1, "the closed run was replayed"
    assert names[-1] == "stop", "documents after the run closed"
    stop = ramp_documents[-1][1]
    assert stop["exit_status"] == "success"


@pytest.mark.parametrize("speedup", [20.0, 60.0, 120.0])
def test_a_100_K_setpoint_during_a_plan_keeps_the_sample_below_its_limit(station_factory,
                                                                        speedup):
    ioc = station_factory(speedup=speedup, noise=True)
    station = build_station(ioc.prefix).connect(timeout=20.0)
    RE, guard, documents = guarded_engine(station)
    peak = Peak(station)
    RE(cool_down(station, 70.0))
    peak.reset()
    watched_for = 240.0  # simulated s after the put: the stage cools below the resume point
    put_results = []
    put_landed_at = []

    def readings():
        # The window counts from the put, not from the plan's start: on a busy machine the
        # two readings before the put can take much of it.
        while not (put_results and put_results != [1]):
            now = yield from bps.rd(station.simulation.simulated_time)
            if put_landed_at and now >= put_landed_at[0] + watched_for:
                break
            yield from bps.checkpoint()
            yield from bps.trigger_and_read([station.cryostat])
            yield from bps.sleep(5.0 * station.cryostat.time_scale)

    def put_100_k():
        put_results.append(epics.caput(f"{ioc.prefix}TC:OUT1:SP", 100.0, wait=True,
                                       timeout=60.0))
        put_landed_at.append(simulated_time(station))

    after_events(RE, 2, put_100_k)
    RE(bpp.run_wrapper(readings()))
    assert put_results == [1], f"the 100 K put during the plan did not land: {put_results}"
    stop = [doc for name, doc in documents if name == "stop"][-1]
    assert stop["exit_status"] == "success", "the plan resumed and ended"
    assert guard.trips >= 1
    assert peak.value < LIMIT, f"the sample reached {peak.value:.2f} K at {speedup:g}x"
