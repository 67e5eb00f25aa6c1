"""The temperature controller and the station factory against the simulated station IOC."""

from __future__ import annotations

import threading
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky.plans import count
from caproto.sync.client import read as ca_read
from polling import wait_for

from tcstation.devices import (
    StationConnectionError,
    TemperatureLimitError,
    TemperatureMoveInterruptedError,
    build_station,
)
from tcstation.devices.clock import SimulationClock
from tcstation.devices.signals import SettingRangeError

pytestmark = pytest.mark.integration


def destroy(station) -> None:
    for device in station.devices:
        device.destroy()


class Trace:
    """Monitor updates of a signal with their arrival times on ``clock`` (default wall)."""

    def __init__(self, signal, clock=None):
        self.signal = signal
        self.now = clock.now if clock is not None else time.monotonic
        self.points: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._subscription = signal.subscribe(self._record, run=False)

    def _record(self, value=None, **kwargs):
        with self._lock:
            self.points.append((self.now(), value))

    def close(self) -> list[tuple[float, float]]:
        self.signal.unsubscribe(self._subscription)
        with self._lock:
            return list(self.points)


def test_connect_sets_the_station_up_from_the_environment(station):
    assert station.simulation is not None
    assert station.cryostat.time_scale == pytest.approx(1 / 60.0)
    assert station.susceptometer.time_scale == pytest.approx(1 / 60.0)
    assert isinstance(station.clock, SimulationClock)
    assert all(device.clock is station.clock for device in station.timed_devices)
    assert station.cryostat.sample_temperature_limit.get() == pytest.approx(77.0)
    assert station.cryostat.limits == (0.0, 76.0)
    assert station.cryostat.sample_input_limit.get() == pytest.approx(77.0)
    assert station.transport.excitation_gain.get() == pytest.approx(0.01)
    assert station.susceptometer.calibration_source.get().startswith("nominal")


def test_mv_completes_only_after_the_sample_held_the_target(station, RE):
    cryostat, clock = station.cryostat, station.clock
    RE(bps.mv(cryostat.heater_range, "High", cryostat.ramp_enabled, "Off"))
    tolerance = cryostat.tolerance.get()
    hold = cryostat.hold_time.get()
    trace = Trace(cryostat.sample_temperature, clock)
    started = clock.now()
    RE(bps.mv(cryostat, 20.0))
    done = clock.now()
    points = trace.close()

    assert abs(points[0][1] - 20.0) > tolerance, "the move should start away from 20 K"
    inside_since = None
    for arrival, value in points:
        if arrival > done:
            break
        inside_since = (inside_since or arrival) if abs(value - 20.0) <= tolerance else None
    assert inside_since is not None
    assert done - inside_since >= hold, (
        f"finished {done - inside_since:.3f} simulated s after the sample came within "
        f"tolerance; the hold is {hold:g} s")
    assert done - started > hold
    assert station.simulation.sample_temperature.get() == pytest.approx(20.0, abs=tolerance)


def test_the_same_setpoint_twice_completes(station, RE):
    cryostat, clock = station.cryostat, station.clock
    RE(bps.mv(cryostat, 20.0))
    started = clock.now()
    RE(bps.mv(cryostat, 20.0))
    elapsed = clock.now() - started
    hold = cryostat.hold_time.get()
    assert hold <= elapsed < hold + 120.0


def test_a_setpoint_above_the_sample_limit_is_refused_before_any_put(station, RE):
    cryostat = station.cryostat
    setpoint_pv = cryostat.setpoint.setpoint_pvname
    # no repeater: a spawned one would inherit, and hold open, the test run's stdout
    before = ca_read(setpoint_pv, data_type="time", repeater=False)
    with pytest.raises(TemperatureLimitError) as raised:
        RE(bps.mv(cryostat, 80.0))
    assert "80 K" in str(raised.value) and "77 K" in str(raised.value)
    after = ca_read(setpoint_pv, data_type="time", repeater=False)
    assert after.data[0] == before.data[0]
    assert after.metadata.timestamp == before.metadata.timestamp


def test_stop_holds_the_present_temperature_during_a_ramp(station, RE):
    cryostat = station.cryostat
    RE(bps.mv(cryostat.heater_range, "High", cryostat.ramp_rate, 10.0,
              cryostat.ramp_enabled, "On"))
    status = cryostat.set(40.0)
    wait_for(lambda: cryostat.stage_temperature.get() > 24.0, 10.0, "the stage to pass 24 K")
    cryostat.stop()
    with pytest.raises(TemperatureMoveInterruptedError, match="holding the stage"):
        status.wait(2.0)
    wait_for(lambda: cryostat.setpoint.get() < 30.0, 2.0, "the setpoint readback to follow")
    held = cryostat.setpoint.get()
    assert held > 24.0
    assert cryostat.ramp_enabled.get() == "Off"
    wait_for(lambda: abs(station.simulation.sample_temperature.get() - held) < 0.2, 10.0,
             "the sample to settle at the held temperature")


def test_descriptors_of_a_count_carry_units_and_hints(station, RE):
    expected_hints = {
        "cryostat": ["cryostat_sample_temperature"],
        "susceptometer": ["susceptometer_chi_real", "susceptometer_chi_imag"],
        "transport": ["transport_dynamic_resistance"],
        "transport_bias": ["transport_bias_measured_current"],
        "environment": ["environment_warm_time"],
        "simulation": ["simulation_sample_temperature"],
    }
    devices = [station.cryostat, station.susceptometer, station.transport,
               station.bias_source, station.environment, station.simulation]
    for device in devices:
        descriptors = []
        RE(count([device]), {"descriptor": lambda name, doc, found=descriptors: found.append(doc)})
        (descriptor,) = descriptors
        assert descriptor["hints"][device.name]["fields"] == expected_hints[device.name]
        for key, data_key in descriptor["data_keys"].items():
            assert "units" in data_key, f"{key} has no units"
            if data_key["dtype"] == "number":
                assert data_key["units"], f"{key} has empty units"
        configuration = descriptor["configuration"][device.name]["data_keys"]
        for key, data_key in configuration.items():
            if data_key["dtype"] == "number":
                assert "units" in data_key, f"configuration {key} has no units"


def configuration_file(tmp_path, prefix: str, **overrides) -> str:
    prefixes = {"cryostat": f"{prefix}TC:", "susceptometer": f"{prefix}LIA1:",
                "transport": f"{prefix}LIA2:", "bias_source": f"{prefix}SRC:",
                "environment": f"{prefix}ENV:", **overrides}
    path = tmp_path / "station.toml"
    path.write_text("[prefixes]\n" + "".join(f'{key} = "{value}"\n'
                                             for key, value in prefixes.items()))
    return path


def test_connect_names_every_missing_pv_of_a_wrong_prefix(ioc, tmp_path):
    path = configuration_file(tmp_path, ioc.prefix, transport="NOPE:LIA2:")
    station = build_station(config_path=path)
    try:
        started = time.monotonic()
        with pytest.raises(StationConnectionError) as raised:
            station.connect(timeout=2.0)
        assert time.monotonic() - started < 4.0
        missing = raised.value.missing
        assert list(missing) == ["transport"]
        lockin_pvs = {pv for walk in station.transport.walk_signals()
                      for pv in (getattr(walk.item, "pvname", None),
                                 getattr(walk.item, "setpoint_pvname", None))
                      if pv and pv.startswith("NOPE:")}
        assert set(missing["transport"]) == lockin_pvs
        assert "NOPE:LIA2:X" in str(raised.value)
        assert "NOPE:LIA2:OFSL_RBV" in str(raised.value)
    finally:
        destroy(station)


def test_a_configuration_without_simulation_runs_in_real_time(ioc, tmp_path):
    station = build_station(config_path=configuration_file(tmp_path, ioc.prefix))
    try:
        station.connect(timeout=5.0)
        assert station.simulation is None
        assert all(device.time_scale == 1.0 for device in station.timed_devices)
        assert station.cryostat.sample_temperature_limit.get() == pytest.approx(77.0)
    finally:
        destroy(station)


def test_an_exposure_warms_the_sample_and_ends(station):
    environment = station.environment
    warm_before = environment.warm_time.get()
    status = environment.expose(0.5)
    status.wait(10.0)
    assert environment.exposing.get() is False
    assert environment.warm_time.get() > warm_before
    assert station.simulation.degradation.get() > 0.0


def test_the_sample_limit_follows_a_newly_mounted_sample(station, RE):
    cryostat, environment = station.cryostat, station.environment
    RE(bps.mv(environment.sample, "pb"))
    wait_for(lambda: cryostat.sample_temperature_limit.get() == 400.0, 5.0, "the Pb limit")
    RE(bps.mv(environment.sample, "mg_mgo"))
    wait_for(lambda: cryostat.sample_temperature_limit.get() == 77.0, 5.0, "the Mg/MgO limit")
    with pytest.raises(SettingRangeError, match="not one of"):
        environment.sample.set("unobtainium")
