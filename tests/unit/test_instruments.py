"""Instrument models without Channel Access: lock-in filter, cryostat, source."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tcstation.instruments.sr830 import SENSITIVITIES as SR830_SENSITIVITIES
from tcstation.instruments.sr830 import SLOPES_DB as SR830_SLOPES_DB
from tcstation.ioc_sim.instruments import CryostatModel, LockInModel, SourceMeterModel
from tcstation.ioc_sim.physics import lockin_noise_bandwidth, lockin_settle_time


def _step_response(slope_index: int, elapsed: float, dt: float = 0.01) -> float:
    lockin = LockInModel(time_constant_index=9, slope_index=slope_index)  # 300 ms
    steps = round(elapsed / dt)
    for _ in range(steps):
        lockin.advance(dt, 1e-3, 1e-3, 0.0, None)
    return lockin.output()[0].real / 1e-3


@pytest.mark.parametrize("slope_index", range(4))
def test_lockin_step_settles_to_one_percent_within_table_time(slope_index):
    settle = lockin_settle_time(0.3, SR830_SLOPES_DB[slope_index])
    # The manual's table is rounded: four ideal poles reach 98.97 % at 10 tau.
    assert _step_response(slope_index, settle) == pytest.approx(1.0, abs=0.0105)


@pytest.mark.parametrize("slope_index", range(4))
def test_lockin_step_is_not_settled_at_half_the_table_time(slope_index):
    settle = lockin_settle_time(0.3, SR830_SLOPES_DB[slope_index])
    assert _step_response(slope_index, settle / 2) < 0.97


def test_lockin_large_steps_agree_with_small_steps():
    """Advancing in one big step (a high speed-up) gives the same filter state."""
    coarse = LockInModel(time_constant_index=10, slope_index=3)
    fine = LockInModel(time_constant_index=10, slope_index=3)
    coarse.advance(4.0, 0.0, 1e-3, 0.0, None)
    for k in range(400):
        fine.advance(0.01, 1e-3 * k / 400, 1e-3 * (k + 1) / 400, 0.0, None)
    assert coarse.output()[0].real == pytest.approx(fine.output()[0].real, rel=0.02)


def test_lockin_reference_phase_rotates_signal_into_x():
    lockin = LockInModel(phase_deg=30.0)
    signal = 1e-3 * complex(math.cos(math.radians(30)), math.sin(math.radians(30)))
    lockin.advance(100.0, signal, signal, 0.0, None)
    value, _ = lockin.output()
    assert value.real == pytest.approx(1e-3, rel=1e-6)
    assert abs(value.imag) < 1e-9


def test_lockin_overload_flags_and_saturates():
    lockin = LockInModel(sensitivity_index=SR830_SENSITIVITIES.index(1e-3))
    lockin.advance(100.0, 5e-3 - 2e-3j, 5e-3 - 2e-3j, 0.0, None)
    value, overloaded = lockin.output()
    assert overloaded
    assert value.real == pytest.approx(1e-3)
    assert value.imag == pytest.approx(-1e-3)


def test_lockin_in_range_signal_is_not_overloaded():
    lockin = LockInModel(sensitivity_index=SR830_SENSITIVITIES.index(1e-3))
    lockin.advance(100.0, 0.9e-3, 0.9e-3, 0.0, None)
    assert lockin.output() == (pytest.approx(0.9e-3), False)


def test_auto_gain_picks_smallest_range_holding_the_signal():
    lockin = LockInModel(sensitivity_index=26)
    lockin.advance(100.0, 85e-6, 85e-6, 0.0, None)
    chosen = SR830_SENSITIVITIES[lockin.auto_gain()]
    assert chosen == 200e-6
    assert not lockin.output()[1]


@pytest.mark.parametrize("slope_index", [0, 1, 3])
def test_lockin_noise_matches_density_over_noise_bandwidth(slope_index):
    rng = np.random.default_rng(3)
    lockin = LockInModel(time_constant_index=9, slope_index=slope_index)
    density = 100e-9
    samples = []
    for _ in range(4000):
        lockin.advance(5.0, 0j, 0j, density, rng)
        samples.append(lockin.output()[0].real)
    expected = density * math.sqrt(lockin_noise_bandwidth(0.3, SR830_SLOPES_DB[slope_index]))
    assert np.std(samples) == pytest.approx(expected, rel=0.1)


def _ramp(cryostat: CryostatModel, minutes: float, dt: float = 1.0) -> list[tuple[float, float]]:
    trace = []
    for k in range(round(minutes * 60 / dt)):
        cryostat.advance(dt)
        trace.append(((k + 1) * dt, cryostat.stage_temperature))
    return trace


def test_cryostat_ramps_at_set_rate():
    cryostat = CryostatModel(heater_range="High", ramp_rate=1.5)
    cryostat.ramp_enabled = True
    cryostat.change_setpoint(70.0)
    trace = np.array(_ramp(cryostat, 40.0))
    middle = (trace[:, 1] > 15.0) & (trace[:, 1] < 55.0)
    rate = np.polyfit(trace[middle, 0], trace[middle, 1], 1)[0] * 60.0
    assert rate == pytest.approx(1.5, rel=0.05)


def test_cryostat_sample_lags_stage_by_rate_times_lag():
    cryostat = CryostatModel(heater_range="High", ramp_rate=1.5)
    cryostat.ramp_enabled = True
    cryostat.change_setpoint(70.0)
    _ramp(cryostat, 30.0)
    lag = cryostat.stage_temperature - cryostat.sample_temperature
    assert lag == pytest.approx(1.5 / 60.0 * cryostat.sample_lag, rel=0.1)


def test_cryostat_without_heater_cools_to_base_and_no_lower():
    cryostat = CryostatModel(stage_temperature=60.0, sample_temperature=60.0, heater_range="Off")
    cryostat.change_setpoint(60.0)
    _ramp(cryostat, 30.0)
    assert cryostat.stage_temperature == pytest.approx(cryostat.base_temperature, abs=0.05)
    assert cryostat.stage_temperature >= cryostat.base_temperature


def test_cryostat_low_heater_range_cannot_reach_50_kelvin():
    cryostat = CryostatModel(heater_range="Low")
    cryostat.change_setpoint(50.0)
    _ramp(cryostat, 30.0)
    assert cryostat.stage_temperature < 10.0
    assert cryostat.heater_output == pytest.approx(100.0)


def test_cryostat_temperature_has_no_jumps_on_a_setpoint_step():
    cryostat = CryostatModel(heater_range="High")
    cryostat.change_setpoint(60.0)
    trace = np.array(_ramp(cryostat, 5.0, dt=0.25))
    steps = np.diff(trace[:, 1])
    assert steps.max() <= 2.0 * 0.25 + 1e-9  # never faster than the full-power heating rate


def test_source_follows_setpoint_when_in_compliance():
    source = SourceMeterModel(setpoint=0.4, output_on=True, voltage_limit=2.0,
                              load_resistance=1.5)
    assert source.measure() == (pytest.approx(0.4), pytest.approx(0.6), False)


def test_source_trips_on_compliance_and_limits_current():
    source = SourceMeterModel(setpoint=0.4, output_on=True, voltage_limit=0.3,
                              load_resistance=1.5)
    amps, volts, tripped = source.measure()
    assert tripped
    assert volts == pytest.approx(0.3)
    assert amps == pytest.approx(0.2)


def test_source_output_off_gives_no_current():
    source = SourceMeterModel(setpoint=0.4, output_on=False)
    assert source.measure() == (0.0, 0.0, False)


def _runaway(limit_input: int, limit: float) -> CryostatModel:
    cryostat = CryostatModel(mode="Open Loop", heater_range="High", manual_output=100.0)
    cryostat.input_limits[limit_input - 1] = limit
    return cryostat


@pytest.mark.parametrize("dt", [0.05, 16.7, 200.0])
def test_input_limit_shuts_the_heater_within_a_substep_whatever_the_step(dt):
    """One call of advance() may cover a tick at 1000x on a busy machine (200 s)."""
    coarse, fine = _runaway(2, 40.0), _runaway(2, 40.0)
    fine_dt = 0.01
    for _ in range(round(400.0 / dt)):
        coarse.advance(dt)
        for _ in range(round(dt / fine_dt)):
            fine.advance(fine_dt, substep=fine_dt)
        # Tripped within one 0.25 s substep of the exact moment: the stage, heating at
        # 2 K/s at most, was then at most 0.5 K warmer, and the sample follows the stage.
        assert coarse.sample_temperature == pytest.approx(fine.sample_temperature, abs=0.5)
    assert coarse.heater_range == fine.heater_range == "Off"
    assert coarse.heater_output == 0.0


def test_input_limit_on_the_stage_and_zero_means_off():
    cryostat = _runaway(1, 30.0)
    cryostat.advance(60.0)
    assert cryostat.heater_range == "Off"
    assert cryostat.stage_temperature < 30.0 + 2.0 * 0.25 + 1e-9
    unlimited = _runaway(1, 0.0)
    unlimited.advance(60.0)
    assert unlimited.heater_range == "High" and unlimited.stage_temperature > 60.0


def test_input_over_limit_names_the_input_and_enforce_turns_the_range_off():
    cryostat = CryostatModel(heater_range="Medium", stage_temperature=50.0,
                             sample_temperature=20.0)
    assert cryostat.input_over_limit() is None
    cryostat.input_limits[:] = [60.0, 10.0]
    assert cryostat.input_over_limit() == 2
    assert cryostat.enforce_input_limits() == 2
    assert cryostat.heater_range == "Off"
