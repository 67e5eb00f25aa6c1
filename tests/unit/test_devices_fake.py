"""Device logic on fake signals (no IOC): limits, holds, settle waits, overload, derived values."""

from __future__ import annotations

import math
import threading
import time

import pytest

from tcstation.devices import (
    ComplianceError,
    CurrentLimitError,
    CurrentSource,
    LockIn,
    LockInOverloadError,
    Susceptometer,
    TemperatureController,
    TemperatureLimitError,
    TemperatureMoveInterruptedError,
    TemperatureTimeoutError,
    TransportProbe,
)
from tcstation.devices.fakes import fake_device
from tcstation.devices.signals import SettingRangeError

TIME_SCALE = 0.01  # wall seconds per physical second: a 30 s hold takes 0.3 s


def wait_until(predicate, timeout: float = 5.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def feed_until_done(signal, value, status, timeout: float = 5.0, period: float = 0.01):
    """Deliver ``value`` to ``signal`` every ``period`` s, as an IOC's monitor would."""
    deadline = time.monotonic() + timeout
    while not status.done and time.monotonic() < deadline:
        signal.sim_put(value)
        time.sleep(period)


@pytest.fixture
def cryostat():
    device = fake_device(TemperatureController, name="cryostat", time_scale=TIME_SCALE)
    device.sample_sensor_units.sim_put("K")
    device.control_mode.sim_put("Closed Loop")
    device.heater_range.sim_put("High")
    device.ramp_enabled.sim_put("Off")
    device.ramp_rate.sim_put(1.0)
    for signal in (device.stage_temperature, device.sample_temperature, device.setpoint):
        signal.sim_put(4.2)
    device.sample_temperature_limit.put(77.0)
    return device


def recorded_puts(signal) -> list:
    puts = []

    def putter(value, *args, **kwargs):
        puts.append(value)
        signal.sim_put(value)

    signal.sim_set_putter(putter)
    return puts


@pytest.mark.parametrize(("target", "message"), [
    (80.0, "80 K is above the highest target 76 K \\(the mounted sample's maximum safe "
           "temperature 77 K less the target margin 1 K\\)"),
    (76.5, "76.5 K is above the highest target 76 K"),
    (400.0, "400 K is outside the allowed range 0 to 325 K"),
    (-1.0, "-1 K is outside the allowed range 0 to 325 K"),
    (math.nan, "not finite"),
    ("warm", "'warm' is not a temperature"),
])
def test_a_target_beyond_a_limit_is_refused_before_any_put(cryostat, target, message):
    puts = recorded_puts(cryostat.setpoint)
    with pytest.raises(TemperatureLimitError, match=message):
        cryostat.set(target)
    assert puts == []


def test_a_narrower_configured_range_is_enforced(cryostat):
    cryostat.upper_limit.put(50.0)
    with pytest.raises(TemperatureLimitError, match="60 K is outside the allowed range 0 to 50 K"):
        cryostat.set(60.0)
    assert cryostat.limits == (0.0, 50.0)


def test_a_warming_target_needs_the_heater(cryostat):
    cryostat.heater_range.sim_put("Off")
    puts = recorded_puts(cryostat.setpoint)
    with pytest.raises(ValueError, match="heater range is Off"):
        cryostat.set(20.0)
    assert puts == []


def test_set_finishes_after_the_sample_holds_the_target(cryostat):
    status = cryostat.set(20.0)
    wait_until(lambda: cryostat.setpoint.get() == 20.0, what="the setpoint put")
    started = time.monotonic()
    feed_until_done(cryostat.sample_temperature, 20.05, status)
    assert status.success
    assert time.monotonic() - started >= 30.0 * TIME_SCALE


def test_set_is_not_done_while_only_the_stage_is_there(cryostat):
    # A timeout far beyond the loop below: on a busy machine its 60 sleeps take longer.
    status = cryostat.set(20.0, timeout=10_000.0)
    for _ in range(60):  # 0.6 s wall = 60 physical s: twice the hold time
        cryostat.stage_temperature.sim_put(20.0)
        cryostat.sample_temperature.sim_put(19.5)
        time.sleep(0.01)
    assert not status.done
    feed_until_done(cryostat.sample_temperature, 20.0, status)
    assert status.success


def test_setting_the_present_setpoint_again_completes(cryostat):
    cryostat.setpoint.sim_put(4.2)
    status = cryostat.set(4.2)
    feed_until_done(cryostat.sample_temperature, 4.2, status)
    assert status.success


def test_set_times_out_with_a_clear_message(cryostat):
    status = cryostat.set(20.0, timeout=20.0)
    feed_until_done(cryostat.sample_temperature, 12.0, status)
    with pytest.raises(TemperatureTimeoutError) as raised:
        status.wait(1.0)
    message = str(raised.value)
    assert "within 0.1 K of 20 K for 30 s within 20 s" in message
    assert "sample now 12.000 K" in message


def test_default_timeout_counts_the_ramp_from_the_present_setpoint(cryostat):
    cryostat.ramp_enabled.sim_put("On")
    cryostat.ramp_rate.sim_put(1.5)
    cryostat.setpoint.sim_put(10.0)
    expected = 1.2 * (70.0 - 10.0) / 1.5 * 60.0 + 30.0 + cryostat.approach_margin
    assert cryostat.expected_timeout(70.0) == pytest.approx(expected)
    cryostat.ramp_enabled.sim_put("Off")
    assert cryostat.expected_timeout(70.0) == pytest.approx(30.0 + cryostat.approach_margin)


def test_stop_holds_the_stage_temperature_and_ends_the_move(cryostat):
    ramp_puts = recorded_puts(cryostat.ramp_enabled)
    status = cryostat.set(50.0)
    cryostat.stage_temperature.sim_put(31.5)
    cryostat.stop()
    assert ramp_puts == ["Off"]
    assert cryostat.setpoint.get() == pytest.approx(31.5)
    with pytest.raises(TemperatureMoveInterruptedError, match="holding the stage at 31.500 K"):
        status.wait(1.0)


def test_a_new_set_replaces_a_pending_one(cryostat):
    first = cryostat.set(30.0)
    second = cryostat.set(40.0)
    with pytest.raises(TemperatureMoveInterruptedError, match="replaced by a move to 40 K"):
        first.wait(1.0)
    feed_until_done(cryostat.sample_temperature, 40.0, second)
    assert second.success


def test_settings_are_checked_before_the_put(cryostat):
    puts = recorded_puts(cryostat.ramp_rate)
    with pytest.raises(SettingRangeError, match="outside the allowed range 0.1 to 100 K/min"):
        cryostat.ramp_rate.set(500.0)
    with pytest.raises(SettingRangeError, match="not one of Off, Low, Medium, High"):
        cryostat.heater_range.set("Maximum")
    assert puts == []
    cryostat.heater_range.set(2).wait(1.0)
    assert cryostat.heater_range.get() == "Medium"


@pytest.fixture
def lockin():
    device = fake_device(LockIn, name="lockin", time_scale=TIME_SCALE)
    device.time_constant.sim_put(9)  # 300 ms
    device.slope.sim_put(1)  # 12 dB/oct: 7 tau = 2.1 s
    device.sensitivity.sim_put(17)
    return device


def publish(device, x=1e-4, y=0.0, overload=False):
    for signal, value in ((device.x, x), (device.y, y), (device.r, math.hypot(x, y)),
                          (device.theta, math.degrees(math.atan2(y, x))),
                          (device.overload, int(overload))):
        signal.sim_put(value)


def publish_until_done(device, status, timeout: float = 5.0, **values):
    deadline = time.monotonic() + timeout
    while not status.done and time.monotonic() < deadline:
        publish(device, **values)
        time.sleep(0.005)


def test_derived_settings_follow_the_indices(lockin):
    assert lockin.full_scale.get() == pytest.approx(1e-3)
    assert lockin.time_constant_seconds.get() == pytest.approx(0.3)
    assert lockin.slope_db.get() == 12
    assert lockin.settle_time() == pytest.approx(2.1)


def test_trigger_waits_for_the_settle_time_then_for_a_fresh_reading(lockin):
    started = time.monotonic()
    status = lockin.trigger()
    publish_until_done(lockin, status)
    elapsed = time.monotonic() - started
    assert status.success
    assert elapsed >= 2.1 * TIME_SCALE


def test_trigger_does_not_finish_on_readings_from_before_the_settle_time(lockin):
    lockin.time_constant.sim_put(10)  # 1 s x 7 = 7 s physical = 70 ms wall
    status = lockin.trigger()
    publish(lockin)
    time.sleep(0.1)  # past the settle time, but no reading since
    assert not status.done
    publish(lockin)
    status.wait(1.0)


def test_trigger_fails_when_the_ioc_publishes_nothing(lockin):
    lockin.fresh_reading_timeout = 0.05
    status = lockin.trigger()
    with pytest.raises(TimeoutError, match="no fresh reading of lockin_x"):
        status.wait(2.0)


def test_an_overload_is_flagged_in_the_reading(lockin):
    status = lockin.trigger()
    publish_until_done(lockin, status, x=1e-3, overload=True)
    assert status.success
    reading = lockin.read()
    assert reading["lockin_overload"]["value"] is True
    assert lockin.describe()["lockin_overload"]["dtype"] == "boolean"


def test_an_overload_fails_the_trigger_when_asked(lockin):
    lockin.raise_on_overload.put(True)
    status = lockin.trigger()
    publish_until_done(lockin, status, x=1e-3, overload=True)
    expected = r"lockin: overload at sensitivity 1 mV \(SENS 17\)"
    with pytest.raises(LockInOverloadError, match=expected):
        status.wait(1.0)


def test_autorange_steps_up_until_the_signal_fits(lockin):
    magnitude = 3.3e-3  # overloads 1 mV

    def respond():
        full_scale = lockin.full_scale.get()
        publish(lockin, x=min(magnitude, full_scale), overload=magnitude > full_scale)

    for start in (lockin.start_autorange, lambda: lockin.autorange.set(1)):
        lockin.sensitivity.sim_put(17)
        status = start()
        deadline = time.monotonic() + 5.0
        while not status.done and time.monotonic() < deadline:
            respond()
            time.sleep(0.005)
        assert status.success
        assert 0.2 <= magnitude / lockin.full_scale.get() <= 0.9
        assert not lockin.overload.get()


def test_susceptometer_reading_carries_chi_computed_from_its_own_x_and_y():
    device = fake_device(Susceptometer, name="susceptometer", time_scale=TIME_SCALE)
    device.frequency.sim_put(1550.0)
    device.sine_amplitude.sim_put(1.0)
    device.reference_phase.sim_put(0.0)
    publish(device, x=-0.3e-3, y=0.0)
    scale, phase = device.calibrate(-0.3e-3, 0.0, source="unit test")
    assert (scale, phase) == (pytest.approx(0.3e-3), pytest.approx(0.0))
    publish(device, x=-0.15e-3, y=0.03e-3)
    reading = device.read()
    assert reading["susceptometer_chi_real"]["value"] == pytest.approx(-0.5)
    assert reading["susceptometer_chi_imag"]["value"] == pytest.approx(0.1)
    assert reading["susceptometer_x"]["value"] == pytest.approx(-0.15e-3)
    configuration = device.read_configuration()
    assert configuration["susceptometer_calibration_source"]["value"] == "unit test"
    assert device.hints == {"fields": ["susceptometer_chi_real", "susceptometer_chi_imag"]}


def test_transport_reading_carries_dudi_and_hints_only_dudi():
    device = fake_device(TransportProbe, name="transport", bias_source_prefix="FAKE:SRC:",
                         time_scale=TIME_SCALE)
    device.sine_amplitude.sim_put(1.697)
    device.excitation_gain.put(0.01)
    publish(device, x=5e-3 * 0.01697)
    reading = device.read()
    assert reading["transport_dynamic_resistance"]["value"] == pytest.approx(5e-3)
    assert reading["transport_excitation_amplitude"]["value"] == pytest.approx(0.024, rel=1e-3)
    assert "transport_bias_measured_current" in reading
    assert device.hints == {"fields": ["transport_dynamic_resistance"]}
    assert device.bias.hints == {"fields": ["transport_bias_measured_current"]}


@pytest.fixture
def source():
    device = fake_device(CurrentSource, name="bias")
    device.output_enabled.sim_put("On")
    device.voltage_limit.sim_put(2.0)
    device.measured_current.sim_put(0.0)
    device.compliance_tripped.sim_put(0)
    device.fresh_reading_timeout = 2.0
    return device


def test_a_current_beyond_the_limit_is_refused_before_any_put(source):
    puts = recorded_puts(source.current)
    source.current_limit.put(0.5)
    with pytest.raises(CurrentLimitError, match="0.6 A is outside the allowed range -0.5 to 0.5 A"):
        source.set(0.6)
    with pytest.raises(CurrentLimitError, match="outside"):
        source.set(math.nan)
    assert puts == []


def publish_source(source, status, measured, tripped):
    deadline = time.monotonic() + 5.0
    while not status.done and time.monotonic() < deadline:
        source.measured_current.sim_put(measured)
        source.compliance_tripped.sim_put(int(tripped))
        time.sleep(0.005)


def test_set_finishes_when_the_measured_current_arrives(source):
    status = source.set(0.4)
    publish_source(source, status, measured=0.4, tripped=False)
    assert status.success
    assert source.current.get() == pytest.approx(0.4)


def test_a_compliance_trip_fails_the_set(source):
    status = source.set(0.4)
    publish_source(source, status, measured=0.2, tripped=True)
    with pytest.raises(ComplianceError, match="in compliance at 2 V: 0.2 A measured of 0.4 A"):
        status.wait(1.0)


def test_the_timeout_fails_the_set_even_when_the_ioc_no_longer_answers(source):
    def disconnected(*args, **kwargs):
        raise TimeoutError("FAKE:SRC:CurrMeas could not connect")

    source.fresh_reading_timeout = 0.1
    source.measured_current.get = disconnected
    status = source.set(0.4)
    with pytest.raises(TimeoutError, match=r"no measured current .* \(measured unknown "
                                           r"\(TimeoutError: FAKE:SRC:CurrMeas could not"):
        status.wait(2.0)


def test_a_move_an_ioc_outage_interrupted_is_not_failed_but_redone(source, caplog):
    status = source.set(0.4)
    signal = source.measured_current
    with caplog.at_level("WARNING", logger="tcstation.devices.source"):
        signal._run_subs(sub_type=signal.SUB_META, connected=False, read_access=False,
                         write_access=False, timestamp=time.time())
        signal._run_subs(sub_type=signal.SUB_META, connected=True, read_access=True,
                         write_access=True, timestamp=time.time())
        publish_source(source, status, measured=0.4, tripped=False)
    assert "the IOC went away during the move to 0.4 A" in caplog.text
    assert status.success  # put again after the reconnection (devices/source.py)


def test_with_the_output_off_set_only_writes_the_setpoint(source):
    source.output_enabled.sim_put("Off")
    source.set(0.3).wait(1.0)
    assert source.current.get() == pytest.approx(0.3)


def test_fake_devices_run_in_parallel_threads_without_interference(lockin, cryostat):
    statuses = [lockin.trigger(), cryostat.set(10.0)]
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            publish(lockin)
            cryostat.sample_temperature.sim_put(10.0)
            time.sleep(0.005)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        for status in statuses:
            status.wait(5.0)
    finally:
        stop.set()
        feeder.join()


def test_stop_leaves_an_idle_controller_alone(cryostat):
    ramp_puts = recorded_puts(cryostat.ramp_enabled)
    setpoint_puts = recorded_puts(cryostat.setpoint)
    cryostat.stage_temperature.sim_put(4.25)
    cryostat.stop(success=True)
    cryostat.stop()
    assert ramp_puts == setpoint_puts == []


def test_stop_holds_a_ramp_started_without_set(cryostat):
    setpoint_puts = recorded_puts(cryostat.setpoint)
    cryostat.setpoint.sim_put(70.0)
    cryostat.stage_temperature.sim_put(12.0)
    cryostat.stop()
    assert setpoint_puts == [12.0]
