"""The susceptometer against the simulated station IOC with a Pb reference mounted."""

from __future__ import annotations

import statistics
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky.plans import count
from bluesky.utils import FailedStatus
from polling import events_of

from tcstation.devices import LockInOverloadError
from tcstation.devices.sr830_tables import SENSITIVITIES
from tcstation.ioc_sim.simulation import PICKUP_PHASE_DEG

pytestmark = pytest.mark.integration

READINGS = 8


@pytest.fixture(scope="module")
def ioc(station_factory):
    return station_factory(speedup=60.0, sample="pb", noise=True)


def mean_of(events, key) -> float:
    return statistics.fmean(event[key] for event in events)


def test_the_sample_limit_follows_the_mounted_sample(station):
    assert station.environment.sample.get() == "pb"
    assert station.cryostat.sample_temperature_limit.get() == pytest.approx(400.0)
    assert station.cryostat.limits == (0.0, 325.0)


def test_chi_reads_minus_one_deep_in_the_pb_state_after_calibration(station, RE):
    susceptometer = station.susceptometer
    assert station.cryostat.sample_temperature.get() < 4.5
    assert station.simulation.chi_real.get() == pytest.approx(-1.0, abs=1e-6)

    reference = events_of(RE, count([susceptometer], num=READINGS))
    assert not any(event["susceptometer_overload"] for event in reference)
    x, y = mean_of(reference, "susceptometer_x"), mean_of(reference, "susceptometer_y")
    scale, phase = susceptometer.calibrate(x, y, source="Pb at 4.2 K")
    assert scale == pytest.approx(0.3e-3, rel=0.02)
    assert phase == pytest.approx(PICKUP_PHASE_DEG, abs=1.0)

    # Half the drive and a different frequency: the calibration scales with f * Hac.
    RE(bps.mv(susceptometer.sine_amplitude, 0.5, susceptometer.frequency, 1000.0))
    events = events_of(RE, count([susceptometer], num=READINGS))
    chi_real = mean_of(events, "susceptometer_chi_real")
    chi_imag = mean_of(events, "susceptometer_chi_imag")
    assert chi_real == pytest.approx(-1.0, abs=0.02)
    assert chi_imag == pytest.approx(0.0, abs=0.02)
    for event in events:  # each reading is computed from the X and Y it carries
        expected = susceptometer.susceptibility(event["susceptometer_x"],
                                                event["susceptometer_y"])
        assert event["susceptometer_chi_real"] == pytest.approx(expected.real)
    RE(bps.mv(susceptometer.sine_amplitude, 1.0, susceptometer.frequency, 1550.0))


def test_an_overload_is_flagged_and_raises_when_asked(station, RE):
    susceptometer = station.susceptometer
    RE(bps.mv(susceptometer.sensitivity, 12))  # 20 uV full scale, 0.3 mV of signal
    try:
        (event,) = events_of(RE, count([susceptometer]))
        assert event["susceptometer_overload"] is True
        susceptometer.raise_on_overload.put(True)
        with pytest.raises(FailedStatus) as raised:
            RE(count([susceptometer]))
        assert isinstance(raised.value.__cause__, LockInOverloadError)
        assert "overload at sensitivity 20 uV (SENS 12)" in str(raised.value.__cause__)
    finally:
        susceptometer.raise_on_overload.put(False)


def test_autorange_brings_the_signal_into_range(station, RE):
    susceptometer = station.susceptometer
    for start in (12, 26):  # overloaded, then far too insensitive
        RE(bps.mv(susceptometer.sensitivity, start))
        started = time.monotonic()
        RE(bps.mv(susceptometer.autorange, 1))
        assert time.monotonic() - started < 10.0
        (event,) = events_of(RE, count([susceptometer]))
        full_scale = SENSITIVITIES[susceptometer.sensitivity.get()]
        assert not event["susceptometer_overload"]
        assert 0.2 <= event["susceptometer_r"] / full_scale <= 0.9


def test_the_calibrated_chi_follows_the_true_chi_above_tc(station, RE):
    """Last in the module: the cryostat stays at 10 K."""
    cryostat, susceptometer = station.cryostat, station.susceptometer
    RE(bps.mv(cryostat.heater_range, "High", cryostat.ramp_enabled, "Off"))
    RE(bps.mv(cryostat, 10.0))
    events = events_of(RE, count([susceptometer, station.simulation], num=READINGS))
    assert mean_of(events, "susceptometer_chi_real") == pytest.approx(
        mean_of(events, "simulation_chi_real"), abs=0.01)
    # Pb's own metal screens the 1550 Hz field above Tc (physics note section 7)
    assert -0.8 < mean_of(events, "susceptometer_chi_real") < -0.5
