"""Settings set by put completion, the controller's ceilings, the clocks and outages (no IOC)."""

from __future__ import annotations

import threading
import time

import pytest
from ophyd import Signal
from ophyd.signal import ConnectionTimeoutError

from tcstation.devices import (
    CurrentSource,
    LockIn,
    TemperatureController,
    TemperatureLimitError,
    TemperatureMoveInterruptedError,
)
from tcstation.devices.clock import SimulationClock, WallClock
from tcstation.devices.derived import LagCorrectedTemperature
from tcstation.devices.fakes import fake_device
from tcstation.devices.signals import SettingRangeError, SettingTimeoutError
from tcstation.devices.waiting import OutageTimeoutError

TIME_SCALE = 0.01


def disconnect(signal) -> None:
    signal._metadata["connected"] = False
    signal._run_subs(sub_type=signal.SUB_META, connected=False, read_access=False,
                     write_access=False, timestamp=time.time())


def reconnect(signal) -> None:
    signal._metadata["connected"] = True
    signal._run_subs(sub_type=signal.SUB_META, connected=True, read_access=True,
                     write_access=True, timestamp=time.time())


def wait_until(predicate, timeout: float = 5.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cryostat():
    device = fake_device(TemperatureController, name="cryostat", time_scale=TIME_SCALE)
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


# --- EpicsSetting.set -----------------------------------------------------------------------

def test_a_newer_set_supersedes_an_older_one(cryostat):
    setpoint = cryostat.setpoint
    setpoint.sim_hold_completions = True
    first = setpoint.set(30.0)
    second = setpoint.set(31.0)  # ophyd raised "Another set() call is still in progress"
    first.wait(1.0)
    assert first.success
    assert not second.done, "the put of 31 K has not completed yet"
    setpoint.sim_complete_puts()
    second.wait(1.0)
    assert second.success and setpoint.get() == 31.0


def test_set_waits_for_the_put_completion_and_for_the_readback(cryostat):
    rate = cryostat.ramp_rate
    rate.sim_hold_completions = True
    rate.sim_set_putter(lambda value, *args, **kwargs: None)  # the readback has not moved yet
    status = rate.set(2.5)
    rate.sim_complete_puts()
    assert not status.done, "the put completed but the readback still shows 1 K/min"
    rate.sim_put(2.5)
    status.wait(1.0)
    assert status.success


def test_setting_the_present_value_again_completes_at_once(cryostat):
    cryostat.ramp_rate.set(1.0).wait(1.0)


def test_a_set_times_out_naming_the_setting_the_value_and_the_readback(cryostat):
    rate = cryostat.ramp_rate
    rate.sim_set_putter(lambda value, *args, **kwargs: None)
    status = rate.set(2.5, timeout=0.05)
    with pytest.raises(SettingTimeoutError) as raised:
        status.wait(2.0)
    message = str(raised.value)
    assert "cryostat_ramp_rate: set to 2.5 not done within 0.05 s" in message
    assert "the readback did not show it (readback 1.0)" in message


def test_a_set_the_ioc_outage_interrupted_stays_pending_then_finishes_on_the_readback(
        cryostat, caplog):
    rate = cryostat.ramp_rate
    rate.sim_hold_completions = True
    rate.sim_set_putter(lambda value, *args, **kwargs: None)
    with caplog.at_level("WARNING", logger="tcstation.devices.signals"):
        status = rate.set(2.5, timeout=0.05)
        disconnect(rate)
        wait_until(lambda: "left pending" in caplog.text, what="the outage warning")
    assert not status.done
    reconnect(rate)
    rate.sim_put(2.5)  # the restarted IOC restored the value that was put
    status.wait(1.0)
    assert status.success


def test_a_refused_value_writes_nothing(cryostat):
    puts = recorded_puts(cryostat.ramp_rate)
    with pytest.raises(SettingRangeError, match="500 K/min is outside the allowed range"):
        cryostat.ramp_rate.set(500.0)
    assert puts == []


# --- TemperatureController: max_target, stop() ceiling, input limit -------------------------

def test_max_target_is_the_sample_limit_less_the_target_margin(cryostat):
    assert cryostat.max_target() == 76.0
    assert cryostat.limits == (0.0, 76.0)
    cryostat.target_margin.put(2.5)
    assert cryostat.max_target() == 74.5


@pytest.mark.parametrize("write", ["set", "put"])
def test_a_raw_setpoint_above_max_target_is_refused_before_any_put(cryostat, write):
    puts = recorded_puts(cryostat.setpoint)
    with pytest.raises(TemperatureLimitError,
                       match=r"cryostat_setpoint: 100 K is above the highest target 76 K "
                             r"\(the mounted sample's maximum safe temperature 77 K"):
        getattr(cryostat.setpoint, write)(100.0)
    assert puts == []
    cryostat.setpoint.set(76.0).wait(1.0)
    assert puts == [76.0]


def test_stop_of_an_idle_controller_above_the_ceiling_lowers_the_setpoint(cryostat):
    setpoint_puts = recorded_puts(cryostat.setpoint)
    for signal in (cryostat.stage_temperature, cryostat.setpoint):
        signal.sim_put(76.0)
    cryostat.stop(success=True)
    assert setpoint_puts == [72.0]


def test_stop_during_a_ramp_never_holds_above_the_ceiling(cryostat):
    setpoint_puts = recorded_puts(cryostat.setpoint)
    cryostat.setpoint.sim_put(76.0)
    cryostat.stage_temperature.sim_put(74.3)
    cryostat.stop()
    assert setpoint_puts == [72.0]
    cryostat.hold_margin.put(10.0)
    cryostat.setpoint.sim_put(76.0)
    cryostat.stop()
    assert setpoint_puts == [72.0, 67.0]


def test_stop_clean_up_supersedes_a_setpoint_set_still_in_progress(cryostat):
    setpoint = cryostat.setpoint
    setpoint.sim_hold_completions = True
    ramp = setpoint.set(60.0)  # a ramp's abs_set whose put has not completed
    cryostat.stage_temperature.sim_put(30.0)
    setpoint.sim_hold_completions = False
    cryostat.stop()
    assert ramp.done and ramp.success
    assert setpoint.get() == 30.0


def test_the_input_limits_are_written_once(cryostat):
    puts = recorded_puts(cryostat.sample_input_limit)
    stage_puts = recorded_puts(cryostat.stage_input_limit)
    cryostat.sample_input_limit.sim_put(0.0)
    cryostat.stage_input_limit.sim_put(0.0)
    cryostat.apply_sample_input_limit(77.0).wait(1.0)
    cryostat.apply_sample_input_limit(77.0).wait(1.0)
    assert puts == [77.0]
    assert stage_puts == [77.0]
    assert cryostat.sample_input_limit.get() == 77.0
    assert cryostat.stage_input_limit.get() == 77.0


# --- Clocks ---------------------------------------------------------------------------------

def simulation_clock(speedup: float = 100.0):
    time_signal = Signal(name="simulation_simulated_time", value=1000.0)
    time_signal._metadata["connected"] = True
    return time_signal, SimulationClock(time_signal, speedup=speedup)


def test_the_simulation_clock_waits_for_the_simulated_time():
    time_signal, clock = simulation_clock()
    assert clock.now() == 1000.0 and clock.time_scale == pytest.approx(0.01)
    publisher = threading.Timer(0.02, time_signal.put, args=(1002.5,))
    publisher.start()
    assert clock.wait_until(1002.0, timeout=5.0)
    assert not clock.wait_until(2000.0, timeout=0.01)


def test_the_simulation_clock_gives_up_when_its_ioc_goes_away():
    time_signal, clock = simulation_clock()
    threading.Timer(0.02, disconnect, args=(time_signal,)).start()
    started = time.monotonic()
    assert not clock.wait_until(2000.0, timeout=30.0)
    assert time.monotonic() - started < 10.0
    assert not clock.connected


def lag_corrected_on(clock):
    controller = fake_device(TemperatureController, name="cryostat")
    controller.clock = clock
    lockin = fake_device(LockIn, name="lockin")
    lockin.time_constant.sim_put(0)
    lockin.slope.sim_put(0)
    controller.stage_temperature.sim_put(50.0)
    return controller, LagCorrectedTemperature(controller=controller, lockin=lockin,
                                                name="estimate")


def test_a_stage_reading_takes_the_simulated_time_of_the_tick_that_follows_it():
    """The IOC publishes a tick's readings, then the clock: at the reading's callback the
    clock still shows the previous tick, which is a whole stall's worth of seconds earlier."""
    time_signal, clock = simulation_clock()
    controller, estimate = lag_corrected_on(clock)
    for tick in range(1, 4):
        controller.stage_temperature.sim_put(50.0 + 0.5 * tick)
        time_signal.put(1000.0 + 20.0 * tick)
    assert [when for when, _ in estimate._history] == [1020.0, 1040.0, 1060.0]
    temperature, rate = estimate.estimate()
    assert rate == pytest.approx(0.5 / 20.0)


def test_a_restarted_clock_drops_the_history_of_another_timeline():
    time_signal, clock = simulation_clock()
    controller, estimate = lag_corrected_on(clock)
    for tick in range(1, 30):
        controller.stage_temperature.sim_put(4.2 + 0.001 * (tick % 2))
        time_signal.put(1000.0 + tick)
    time_signal.put(900.0)  # a new IOC, its simulation started afresh
    for tick in range(1, 40):
        controller.stage_temperature.sim_put(60.0 + 0.025 * tick)
        time_signal.put(900.0 + tick)
    assert max(when for when, _ in estimate._history) == 939.0
    temperature, rate = estimate.estimate()
    assert rate == pytest.approx(0.025)


def test_a_wall_clock_scales_physical_seconds():
    clock = WallClock(0.5)
    assert clock.wall_seconds(3.0) == 1.5
    with pytest.raises(ValueError, match="time_scale 0 is not a positive number"):
        WallClock(0)


# --- LockIn: settle on the simulation clock, outages ----------------------------------------

def publish(device, x=1e-4):
    for signal, value in ((device.x, x), (device.y, 0.0), (device.r, x), (device.theta, 0.0),
                          (device.overload, 0)):
        signal.sim_put(value)


@pytest.fixture
def lockin():
    device = fake_device(LockIn, name="lockin", time_scale=TIME_SCALE)
    device.time_constant.sim_put(9)  # 300 ms
    device.slope.sim_put(1)  # 12 dB/oct: 7 tau = 2.1 s
    device.sensitivity.sim_put(17)
    publish(device)
    return device


def test_a_trigger_on_the_simulation_clock_ends_when_the_settle_time_has_passed(lockin):
    time_signal, clock = simulation_clock()
    lockin.clock = clock
    status = lockin.trigger()
    time_signal.put(1001.0)
    time_signal.put(1002.0)
    assert not status.done  # 2 s of 2.1 s
    time_signal.put(1002.1)
    status.wait(2.0)  # no fresh lock-in reading needed: the clock comes after the readings
    assert status.success


def test_a_trigger_outage_mid_settle_on_the_simulation_clock_settles_again_after_it(
        lockin, caplog):
    time_signal, clock = simulation_clock()
    lockin.clock = clock
    with caplog.at_level("WARNING", logger="tcstation.devices.lockin"):
        status = lockin.trigger()
        time_signal.put(1002.0)
        disconnect(time_signal)
        wait_until(lambda: "the trigger waits up to 300 s for the IOC" in caplog.text,
                   what="the outage warning")
        time_signal.put(1003.0)  # a stale tick while away does not count
        assert not status.done
        reconnect(time_signal)
        time_signal.put(900.0)  # the restarted IOC resumed from an older saved state
        wait_until(lambda: "the IOC is back; the trigger settles again" in caplog.text,
                   what="the settle to start again")
    time_signal.put(902.0)
    assert not status.done, "2 s of the 2.1 s settle since the reconnection"
    time_signal.put(902.1)
    status.wait(2.0)
    assert status.success


def test_a_trigger_that_finds_its_settle_settings_unreadable_waits_for_the_ioc_then_settles(
        lockin, caplog, monkeypatch):
    """The IOC gone just as a trigger starts: the time constant cannot be read (ophyd's
    ConnectionTimeoutError), which is an outage, not a failed reading."""
    time_signal, clock = simulation_clock()
    lockin.clock = clock
    readable_settle_time = lockin.settle_time

    def settle_time():
        if not lockin.time_constant.connected:
            raise ConnectionTimeoutError("Failed to connect to LIA2:OFLT_RBV within 1.00 sec")
        return readable_settle_time()

    monkeypatch.setattr(lockin, "settle_time", settle_time)
    disconnect(lockin.time_constant)
    with caplog.at_level("WARNING", logger="tcstation.devices.lockin"):
        status = lockin.trigger()
        wait_until(lambda: "the time constant and slope are unreadable" in caplog.text,
                   what="the outage warning")
        assert not status.done
        reconnect(lockin.time_constant)
        wait_until(lambda: "the IOC is back; the trigger settles again" in caplog.text,
                   what="the settle to start again")
    time_signal.put(1002.0)
    assert not status.done, "2 s of the 2.1 s settle since the reconnection"
    time_signal.put(1002.1)
    status.wait(2.0)
    assert status.success


def test_a_trigger_outage_mid_settle_on_the_wall_clock_finishes_on_a_reading_after_it(
        lockin, caplog):
    lockin.time_constant.sim_put(12)  # 10 s x 7 = 0.7 s wall: an outage lands mid-settle
    settle_wall = lockin.settle_time() * TIME_SCALE
    with caplog.at_level("WARNING", logger="tcstation.devices.lockin"):
        status = lockin.trigger()
        disconnect(lockin.x)
        wait_until(lambda: "the trigger waits" in caplog.text, what="the outage warning")
    assert "lockin_x lost the IOC during the wait" in caplog.text
    assert not status.done
    back = time.monotonic()
    reconnect(lockin.x)
    deadline = back + 10.0
    while not status.done and time.monotonic() < deadline:
        publish(lockin)
        time.sleep(0.01)
    assert status.success
    assert time.monotonic() - back >= settle_wall, "a full settle after the reconnection"


def test_a_trigger_fails_clearly_when_the_ioc_does_not_come_back(lockin):
    lockin.time_constant.sim_put(12)
    lockin.outage_timeout = 0.2
    status = lockin.trigger()
    disconnect(lockin.x)
    with pytest.raises(OutageTimeoutError, match=r"lockin: the IOC did not come back within "
                                                 r"0.2 s of the outage \(still disconnected: "
                                                 r"lockin_x\)"):
        status.wait(5.0)


def test_a_trigger_with_no_outage_still_fails_when_nothing_arrives(lockin):
    lockin.fresh_reading_timeout = 0.05
    status = lockin.trigger()
    with pytest.raises(TimeoutError, match="no fresh reading of lockin_x"):
        status.wait(2.0)


# --- CurrentSource: one confirmation --------------------------------------------------------

@pytest.fixture
def source():
    device = fake_device(CurrentSource, name="bias")
    device.output_enabled.sim_put("On")
    device.voltage_limit.sim_put(2.0)
    device.measured_current.sim_put(0.0)
    device.compliance_tripped.sim_put(0)
    device.fresh_reading_timeout = 2.0
    return device


def ioc_with_database_semantics(source, measured=None, tripped=False):
    """The put posts the readback, then the measurement, then completes."""
    source.current.sim_hold_completions = True

    def putter(value, *args, **kwargs):
        source.current.sim_put(value)
        source.measured_current.sim_put(value if measured is None else measured)
        source.compliance_tripped.sim_put(int(tripped))

    source.current.sim_set_putter(putter)


def test_one_measurement_posted_before_the_put_completed_confirms_the_bias(source):
    ioc_with_database_semantics(source)
    status = source.set(0.4)
    assert not status.done, "the put has not completed"
    source.current.sim_complete_puts()
    status.wait(1.0)
    assert status.success


def test_a_measurement_from_before_the_readback_does_not_confirm(source):
    source.current.sim_hold_completions = True
    source.current.sim_set_putter(lambda value, *args, **kwargs: source.current.sim_put(value))
    status = source.set(0.4)
    source.measured_current.sim_put(0.0)
    source.current.sim_complete_puts()
    assert not status.done
    source.measured_current.sim_put(0.4)  # a later measurement, as a polled instrument sends
    source.compliance_tripped.sim_put(0)
    status.wait(1.0)
    assert status.success


def test_a_compliance_posted_with_the_put_fails_the_set(source):
    ioc_with_database_semantics(source, measured=0.2, tripped=True)
    status = source.set(0.4)
    source.current.sim_complete_puts()
    with pytest.raises(Exception, match="in compliance at 2 V: 0.2 A measured of 0.4 A"):
        status.wait(1.0)


def test_stop_writes_nothing_when_the_controller_does_not_answer(cryostat):
    setpoint_puts = recorded_puts(cryostat.setpoint)
    move = cryostat.set(20.0)
    setpoint_puts.clear()

    def no_answer(*args, **kwargs):
        raise TimeoutError("FAKE:TC:IN1:Kelvin could not connect")

    cryostat.stage_temperature.get = no_answer
    cryostat.setpoint.get = no_answer
    with pytest.raises(TemperatureMoveInterruptedError, match="cannot stop"):
        cryostat.stop()
    assert setpoint_puts == []
    with pytest.raises(TemperatureMoveInterruptedError, match="nothing written"):
        move.wait(1.0)


def test_stop_never_raises_a_setpoint_held_below_the_stage(cryostat):
    """A guard or a finalizer held the sample; the end-of-plan stop() must not undo it."""
    setpoint_puts = recorded_puts(cryostat.setpoint)
    cryostat.setpoint.sim_put(33.48)  # held at the sample, which lags the stage
    cryostat.stage_temperature.sim_put(34.0)
    cryostat.stop(success=True)
    assert all(put <= 33.48 for put in setpoint_puts)
    assert cryostat.setpoint.get() == pytest.approx(33.48)


# --- CurrentSource: outages -----------------------------------------------------------------

def test_a_move_an_outage_interrupted_puts_again_and_finishes_after_the_reconnection(
        source, caplog):
    ioc_with_database_semantics(source)
    puts = []
    source.current.subscribe(lambda value=None, **kwargs: puts.append(value), run=False)
    with caplog.at_level("WARNING", logger="tcstation.devices.source"):
        status = source.set(0.4)
        disconnect(source.measured_current)
        wait_until(lambda: "the move waits up to" in caplog.text, what="the outage warning")
        source.current.sim_complete_puts()  # the old IOC's late completion does not count
        assert not status.done
        source.current.sim_put(0.0)  # the restarted IOC restored a state saved before the put
        source.measured_current.sim_put(0.0)
        reconnect(source.measured_current)
        wait_until(lambda: "putting 0.4 A again" in caplog.text, what="the new put")
    assert puts[-1] == pytest.approx(0.4), "put again after the reconnection"
    source.current.sim_complete_puts()
    status.wait(1.0)
    assert status.success
    assert source.measured_current.get() == pytest.approx(0.4)


def test_a_move_fails_clearly_when_the_ioc_does_not_come_back(source):
    source.outage_timeout = 0.2
    status = source.set(0.4)
    disconnect(source.measured_current)
    with pytest.raises(OutageTimeoutError, match=r"bias: the IOC did not come back within 0.2 s "
                                                 r"of the outage during the move to 0.4 A"):
        status.wait(5.0)


def test_a_move_superseded_during_the_outage_ends_and_the_newer_one_finishes(source, caplog):
    ioc_with_database_semantics(source)
    with caplog.at_level("WARNING", logger="tcstation.devices.source"):
        older = source.set(0.4)
        disconnect(source.measured_current)
        newer = source.set(0.2)
        reconnect(source.measured_current)
        wait_until(lambda: "putting 0.2 A again" in caplog.text, what="the newer put")
    older.wait(1.0)
    assert older.success
    assert "superseded" in caplog.text
    source.current.sim_complete_puts()
    newer.wait(1.0)
    assert newer.success and source.current.get() == pytest.approx(0.2)
