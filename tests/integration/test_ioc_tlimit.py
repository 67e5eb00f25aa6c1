"""The simulated LakeShore 336's input temperature limit (TLIMIT), through Channel Access.

With a limit on the sample input, a heater runaway (open loop, 100 % on High)
is stopped by the controller itself: all outputs off as the sample passes the
limit, checked inside the physics integration, so the overshoot is the
physics' own and does not grow with the speed-up.
"""

from __future__ import annotations

import math
import threading

import epics
import pytest
from caproto import ChannelType
from caproto._utils import ErrorResponseReceived
from caproto.sync.client import read as caproto_read
from caproto.sync.client import write as caproto_write
from polling import wait_for
from scipy.optimize import brentq

from tcstation.ioc_sim.instruments import HEATING_RATE_AT_FULL_POWER, CryostatModel

pytestmark = pytest.mark.integration

LIMIT = 40.0  # K, on input 2 (the sample)
REACTION = 1.0  # simulated seconds the controller may take to react (interfaces note)


def runaway_peak(limit: float) -> tuple[float, float]:
    """Closed-form peak of the sample after an instant trip at ``limit``: (trip time, peak K).

    The cryostat's physics (``CryostatModel``, physics note section 6): the stage
    heats at R = 2 K/s on High at 100 % and leaks to the bath with tau_c = 120 s;
    the sample follows the stage with tau = 20 s.  From base,
    stage - base = R tau_c (1 - e^(-t/tau_c)) and
    sample - base = R tau_c [1 - (tau_c e^(-t/tau_c) - tau e^(-t/tau)) / (tau_c - tau)].
    After the trip the stage decays as e^(-s/tau_c) and the sample, still behind it,
    keeps rising until it meets the falling stage.
    """
    model = CryostatModel()
    base, tau_c, tau = model.base_temperature, model.cooling_time, model.sample_lag
    rate = HEATING_RATE_AT_FULL_POWER["High"]

    def stage(t):
        return rate * tau_c * (1.0 - math.exp(-t / tau_c))

    def sample(t):
        return rate * tau_c * (1.0 - (tau_c * math.exp(-t / tau_c) - tau * math.exp(-t / tau))
                               / (tau_c - tau))

    trip = brentq(lambda t: sample(t) - (limit - base), 0.0, 10 * tau_c)
    lead = stage(trip)
    a = lead * tau_c / (tau_c - tau)
    b = (limit - base) - a
    peak_after = math.log(-b * tau_c / (a * tau)) / (1.0 / tau - 1.0 / tau_c)
    peak = a * math.exp(-peak_after / tau_c) + b * math.exp(-peak_after / tau)
    return trip, base + peak


TRIP_TIME, PEAK = runaway_peak(LIMIT)
# A trip up to REACTION late lets the stage gain at most R x REACTION more, and the sample,
# which only follows the stage, at most as much.
BOUND = PEAK + HEATING_RATE_AT_FULL_POWER["High"] * REACTION


def test_the_bound_is_the_physics_overshoot():
    # 14.6 K above the limit: the sample lags the stage by ~28 K when it passes 40 K.
    assert 54.0 < PEAK < 55.2
    assert 36.0 < TRIP_TIME < 38.0


class Trace:
    """Monitor updates of some PVs, in arrival order."""

    def __init__(self, *names: str):
        self.values: dict[str, list] = {name: [] for name in names}
        self._lock = threading.Lock()
        self.pvs = [epics.PV(name, auto_monitor=True, callback=self._record) for name in names]
        wait_for(lambda: all(self.values.values()), 30.0, f"monitors of {names}")

    def _record(self, pvname=None, value=None, **kwargs):
        with self._lock:
            self.values[pvname].append(value)

    def last(self, name: str):
        with self._lock:
            return self.values[name][-1]

    def all(self, name: str) -> list:
        with self._lock:
            return list(self.values[name])

    def close(self) -> None:
        for pv in self.pvs:
            pv.clear_callbacks()
            pv.disconnect()


def put(name: str, value) -> None:
    assert epics.caput(name, value, wait=True, timeout=10.0) == 1, f"put to {name} failed"


@pytest.mark.parametrize("speedup", [60.0, 1000.0])
def test_a_heater_runaway_stops_at_the_sample_limit_at_any_speedup(station_factory, speedup):
    station = station_factory(speedup=speedup, noise=False)
    prefix = station.prefix
    put(f"{prefix}TC:IN2:TLimit", LIMIT)
    assert epics.caget(f"{prefix}TC:IN2:TLimit_RBV", use_monitor=False) == LIMIT
    put(f"{prefix}TC:OUT1:Mode", "Open Loop")
    put(f"{prefix}TC:OUT1:MOUT", 100.0)
    kelvin, truth, clock, heater_range, heater = (
        f"{prefix}TC:IN2:Kelvin", f"{prefix}SIM:SampleTemp_RBV", f"{prefix}SIM:Time_RBV",
        f"{prefix}TC:HTR1:Range_RBV", f"{prefix}TC:HTR1")
    trace = Trace(kelvin, truth, clock, heater_range, heater)
    try:
        assert trace.last(truth) < 4.5, "the runaway starts from base"
        started = epics.caget(clock, use_monitor=False)
        put(f"{prefix}TC:HTR1:Range", "High")
        # Long enough in simulated time for the peak and the start of the cool-down.
        until = started + TRIP_TIME + 200.0
        wait_for(lambda: trace.last(clock) >= until, 120.0,
                   f"{until:.0f} simulated s (at {speedup:g}x)")
        readings = trace.all(kelvin) + trace.all(truth)
        assert max(readings) > LIMIT, "the runaway must have reached the limit"
        assert max(readings) <= BOUND, (
            f"the sample reached {max(readings):.2f} K, more than {BOUND - LIMIT:.1f} K above "
            f"its {LIMIT:g} K limit (at {speedup:g}x)")
        assert trace.last(heater_range) == 0, "HTR1:Range_RBV reads Off"
        assert trace.last(heater) == 0.0
        assert epics.caget(f"{prefix}TC:HTR1:Range", use_monitor=False) == 0
        assert trace.last(truth) < max(trace.all(truth)), "the sample is cooling"
    finally:
        trace.close()


def test_a_limit_below_the_present_temperature_shuts_the_heater_at_once(station_factory):
    station = station_factory(speedup=60.0, noise=False)
    prefix = station.prefix
    put(f"{prefix}TC:HTR1:Range", "Low")
    trace = Trace(f"{prefix}TC:HTR1:Range_RBV")
    try:
        assert trace.last(f"{prefix}TC:HTR1:Range_RBV") == 1
        put(f"{prefix}TC:IN1:TLimit", 4.0)  # the stage sits at 4.2 K
        # Posted before the put completed (EPICS put semantics).
        assert trace.last(f"{prefix}TC:HTR1:Range_RBV") == 0
        # While an input is above its limit the outputs stay off: a new range is refused.
        with pytest.raises(ErrorResponseReceived) as refused:
            caproto_write(f"{prefix}TC:HTR1:Range", ["High"], notify=True, timeout=5.0,
                          data_type=ChannelType.STRING)
        message = bytes(refused.value.args[0].error_message).decode().rstrip("\x00")
        assert "input 1 reads 4.2" in message and "limit 4 K" in message, message
        assert epics.caget(f"{prefix}TC:HTR1:Range_RBV", use_monitor=False) == 0
    finally:
        trace.close()
    put(f"{prefix}TC:IN1:TLimit", 0.0)
    put(f"{prefix}TC:HTR1:Range", "Low")
    assert epics.caget(f"{prefix}TC:HTR1:Range_RBV", use_monitor=False) == 1
    put(f"{prefix}TC:HTR1:Range", "Off")


def test_the_limit_survives_an_ioc_restart_with_its_state_file(station_factory, tmp_path):
    station = station_factory(speedup=60.0, noise=False)
    station.stop()
    station.state_file = tmp_path / "state.json"
    station.start()
    put(f"{station.prefix}TC:IN2:TLimit", 77.0)
    clock = epics.caget(f"{station.prefix}SIM:Time_RBV", use_monitor=False)
    # The state file is written once a wall second: wait until it holds the limit.
    wait_for(lambda: station.state_file.exists()
               and '"input_limits": [0.0, 77.0, 0.0, 0.0]' in station.state_file.read_text(), 30.0,
               "the state file to hold the limit")
    station.restart()
    # A fresh client (pyepics would first have to notice the IOC came back).
    assert caproto_read(f"{station.prefix}SIM:Time_RBV", timeout=5.0).data[0] > clock
    for suffix in ("TC:IN2:TLimit_RBV", "TC:IN2:TLimit"):
        assert caproto_read(f"{station.prefix}{suffix}", timeout=5.0).data[0] == 77.0
