"""The whole simulated station in-process (no Channel Access), noise off."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tcstation.ioc_sim.physics import lockin_filter_delay
from tcstation.ioc_sim.simulation import (
    PICKUP_VOLTS_PER_HZ_OE,
    StationSimulation,
    restore_simulation,
    simulation_state,
)


def _sweep(simulation: StationSimulation, target: float, rate: float, step: float = 1.0):
    """Ramp loop 1 to ``target`` at ``rate`` K/min; record stage T and lock-in X."""
    cryostat = simulation.cryostat
    cryostat.heater_range = "High"
    cryostat.ramp_rate = rate
    cryostat.ramp_enabled = True
    cryostat.change_setpoint(target)
    stage, signal = [], []
    while abs(cryostat.sample_temperature - target) > 0.05:
        simulation.advance(step)
        stage.append(cryostat.stage_temperature)
        signal.append(simulation.susceptometer_lockin.output()[0].real)
    return np.array(stage), np.array(signal)


def _crossing(temperature: np.ndarray, signal: np.ndarray, level: float) -> float:
    """Stage temperature at which the signal crosses ``level`` (first crossing)."""
    above = signal > level
    index = np.flatnonzero(above[1:] != above[:-1])[0]
    t0, t1, s0, s1 = temperature[index], temperature[index + 1], signal[index], signal[index + 1]
    return t0 + (level - s0) * (t1 - t0) / (s1 - s0)


def test_warming_and_cooling_sweeps_differ_by_twice_rate_times_delays():
    rate = 1.5
    simulation = StationSimulation("mg_mgo", noise=False)
    lockin = simulation.susceptometer_lockin
    lockin.time_constant_index = 10  # 1 s, so the filter delay is visible
    simulation.cryostat.change_setpoint(40.0)
    simulation.cryostat.heater_range = "High"
    for _ in range(900):
        simulation.advance(1.0)
    warm_t, warm_x = _sweep(simulation, 58.0, rate)
    cool_t, cool_x = _sweep(simulation, 40.0, rate)
    level = 0.5 * (warm_x.min() + warm_x.max())
    shift = _crossing(warm_t, warm_x, level) - _crossing(cool_t, cool_x, level)
    delays = simulation.cryostat.sample_lag + lockin_filter_delay(
        lockin.time_constant, lockin.slope_db
    )
    expected = 2.0 * rate / 60.0 * delays
    assert shift == pytest.approx(expected, rel=0.15)


def test_susceptometer_reads_chi_times_pickup_scale_at_base():
    simulation = StationSimulation("mg_mgo", noise=False)
    for _ in range(60):
        simulation.advance(1.0)
    chi = simulation.sample.susceptibility(simulation.cryostat.sample_temperature)
    reading, _ = simulation.susceptometer_lockin.output()
    scale = PICKUP_VOLTS_PER_HZ_OE * 1550.0 * 0.2
    assert abs(reading) == pytest.approx(scale * abs(chi), rel=1e-3)
    assert scale == pytest.approx(0.3e-3)


def test_transport_reading_follows_physics_note_normalisation():
    simulation = StationSimulation("mg_mgo", noise=False)
    simulation.environment.insert = "transport"
    for _ in range(60):
        simulation.advance(1.0)
    x = simulation.transport_lockin.output()[0].real
    excitation = simulation.excitation_amplitude
    assert excitation == pytest.approx(0.024, rel=2e-3)
    # physics note: dU/dI = sqrt(2) X_rms / Iac
    assert math.sqrt(2) * x / excitation == pytest.approx(simulation.dudi, rel=1e-3)


def test_exposure_holds_sample_warm_then_releases_it():
    simulation = StationSimulation("mg_mgo", noise=False)
    simulation.start_exposure(30.0)
    for _ in range(30 * 60 // 5):
        simulation.advance(5.0)
    assert simulation.exposure_remaining == 0.0
    assert simulation.sample.warm_seconds > 25 * 60
    assert simulation.sample.superconducting_fraction < 0.1
    for _ in range(60):
        simulation.advance(5.0)
    assert simulation.cryostat.sample_temperature < 10.0


def test_saved_state_restores_and_catches_up_on_the_downtime():
    simulation = StationSimulation("mg_mgo", noise=False)
    simulation.cryostat.heater_range = "High"
    simulation.cryostat.ramp_rate = 1.5
    simulation.cryostat.ramp_enabled = True
    simulation.cryostat.change_setpoint(60.0)
    simulation.environment.insert = "transport"
    simulation.source.setpoint = 0.3
    simulation.source.output_on = True
    simulation.transport_lockin.time_constant_index = 10
    for _ in range(600):
        simulation.advance(1.0)
    saved = json.loads(json.dumps(simulation_state(simulation)))
    stage_at_save = simulation.cryostat.stage_temperature

    restored = StationSimulation("pure_mg", noise=False)
    restore_simulation(restored, saved, downtime=120.0)
    assert restored.sample.kind == "mg_mgo"
    assert restored.environment.insert == "transport"
    assert restored.source.measure()[0] == pytest.approx(0.3)
    assert restored.transport_lockin.time_constant_index == 10
    assert restored.cryostat.ramping
    # two minutes at 1.5 K/min passed while the IOC was down
    assert restored.cryostat.stage_temperature == pytest.approx(stage_at_save + 3.0, abs=0.1)
    assert restored.time == pytest.approx(simulation.time + 120.0)


def test_a_bias_step_reaches_the_lockin_as_a_step_not_a_ramp_over_the_tick():
    simulation = StationSimulation("mg_mgo", noise=False)
    simulation.environment.insert = "transport"
    simulation.source.output_on = True
    simulation.transport_lockin.time_constant_index = 8  # 100 ms: settled within 1 s
    for _ in range(30):
        simulation.advance(1.0)
    simulation.source.setpoint = 0.4
    simulation.advance(6.0)  # one tick at a 60x speed-up
    settled = math.sqrt(2) * simulation.transport_lockin.output()[0].real
    assert settled / simulation.excitation_amplitude == pytest.approx(simulation.dudi, rel=1e-3)


def test_saved_state_keeps_the_input_temperature_limits():
    simulation = StationSimulation(noise=False)
    simulation.cryostat.input_limits[1] = 77.0
    state = json.loads(json.dumps(simulation_state(simulation)))
    restored = StationSimulation(noise=False)
    restore_simulation(restored, state, downtime=0.0)
    assert restored.cryostat.input_limits == [0.0, 77.0, 0.0, 0.0]
    # A state file of the two-input simulator restores inputs C and D with their limits off.
    state["cryostat"]["input_limits"] = [0.0, 77.0]
    two_inputs = StationSimulation(noise=False)
    restore_simulation(two_inputs, state, downtime=0.0)
    assert two_inputs.cryostat.input_limits == [0.0, 77.0, 0.0, 0.0]
    # A state file written before the limits existed restores with the limits off.
    del state["cryostat"]["input_limits"]
    older = StationSimulation(noise=False)
    restore_simulation(older, state, downtime=0.0)
    assert older.cryostat.input_limits == [0.0, 0.0, 0.0, 0.0]


def test_the_ioc_command_line_is_caproto_s_with_the_station_s_options():
    from tcstation.ioc_sim.station import DEFAULT_PORT, DEFAULT_PREFIX, build_parser

    parser = build_parser()
    defaults = parser.parse_args([])
    assert (defaults.prefix, defaults.port, defaults.interfaces) == (
        DEFAULT_PREFIX, DEFAULT_PORT, ["127.0.0.1"])
    assert defaults.async_lib == "asyncio" and not defaults.list_pvs
    options = parser.parse_args(["-vv", "--prefix", "P:", "--speedup", "60", "--sample", "pb",
                                 "--interfaces", "127.0.0.1", "::1", "--list-pvs"])
    assert options.verbose == 2 and options.prefix == "P:" and options.speedup == 60.0
    assert options.sample == "pb" and options.interfaces == ["127.0.0.1", "::1"]
    assert "caproto version" in parser.format_help()
