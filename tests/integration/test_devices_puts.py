"""Settings, the controller's ceilings and limit, the bias confirmation, against the station IOC."""

from __future__ import annotations

import threading

import bluesky.plan_stubs as bps
import pytest
from caproto.sync.client import read as ca_read
from polling import wait_for

from tcstation.devices import TemperatureLimitError
from tcstation.devices.signals import SettingTimeoutError

pytestmark = pytest.mark.integration


def read_pv(name: str):
    # no repeater: a spawned one would inherit, and hold open, the test run's stdout
    return ca_read(name, data_type="time", repeater=False)


def test_a_second_set_supersedes_the_first_instead_of_raising(station):
    setpoint = station.cryostat.setpoint
    first = setpoint.set(30.0)
    second = setpoint.set(31.0)  # ophyd's set thread raised "Another set() ... in progress"
    first.wait(10.0)
    second.wait(10.0)
    assert first.success and second.success
    assert setpoint.get() == pytest.approx(31.0)
    assert read_pv(setpoint.pvname).data[0] == pytest.approx(31.0)


def test_a_set_is_done_when_the_readback_shows_it(station, RE):
    rate = station.cryostat.ramp_rate
    for value in (2.5, 7.0, 7.0):
        status = rate.set(value)
        status.wait(10.0)
        assert rate.get() == pytest.approx(value), "done before the readback showed the value"


def test_a_put_the_ioc_refuses_fails_naming_the_setting_value_and_readback(station, RE):
    lockin = station.transport
    RE(bps.mv(lockin.harmonic, 2))
    try:
        before = lockin.frequency.get()
        status = lockin.frequency.set(60_000.0, timeout=1.0)  # 2 x 60 kHz > 102 kHz
        with pytest.raises(SettingTimeoutError) as raised:
            status.wait(10.0)
        message = str(raised.value)
        assert "transport_frequency: set to 60000.0 not done within 1 s" in message
        assert f"(readback {before!r})" in message
    finally:
        RE(bps.mv(lockin.harmonic, 1))


def test_a_raw_setpoint_above_max_target_is_refused_before_any_put(station, RE):
    cryostat = station.cryostat
    before = read_pv(cryostat.setpoint.setpoint_pvname)
    with pytest.raises(TemperatureLimitError, match="76.5 K is above the highest target 76 K"):
        RE(bps.mv(cryostat.setpoint, 76.5))
    with pytest.raises(TemperatureLimitError, match="100 K is above the highest target 76 K"):
        cryostat.setpoint.put(100.0)
    after = read_pv(cryostat.setpoint.setpoint_pvname)
    assert after.data[0] == before.data[0]
    assert after.metadata.timestamp == before.metadata.timestamp
    assert cryostat.max_target() == pytest.approx(76.0)
    # (A refused bps.mv(cryostat, ...) is refused too, but the RunEngine then calls
    # cryostat.stop(), which may hold the stage: that one is not "nothing written".)
    with pytest.raises(TemperatureLimitError, match="76.5 K is above the highest target"):
        RE(bps.mv(cryostat, 76.5))
    assert read_pv(cryostat.setpoint.pvname).data[0] <= 72.0  # 77 K less the hold margin


@pytest.fixture
def low_sample_limit(station):
    """A sample limit of 26 K: max_target 25 K, the stop() ceiling 21 K."""
    limit = station.cryostat.sample_temperature_limit
    limit.put(26.0)
    yield
    limit.put(float(station.environment.max_safe_temperature.get()))


def test_the_end_of_a_plan_brings_an_idle_setpoint_down_to_the_ceiling(station, RE,
                                                                      low_sample_limit):
    cryostat = station.cryostat
    RE(bps.mv(cryostat.heater_range, "High", cryostat.ramp_enabled, "Off"))
    RE(bps.mv(cryostat, 25.0))  # the RunEngine calls cryostat.stop(success=True) at the end
    assert read_pv(cryostat.setpoint.pvname).data[0] == pytest.approx(21.0)
    assert cryostat.hold_ceiling() == pytest.approx(21.0)


def test_stop_during_a_ramp_holds_at_most_the_ceiling(station, RE, low_sample_limit):
    cryostat = station.cryostat
    RE(bps.mv(cryostat.heater_range, "High", cryostat.ramp_enabled, "Off"))
    RE(bps.mv(cryostat, 18.0))
    RE(bps.mv(cryostat.ramp_rate, 20.0, cryostat.ramp_enabled, "On"))
    status = cryostat.set(25.0)
    wait_for(lambda: cryostat.stage_temperature.get() > 22.0, 30.0, "the stage to pass 22 K")
    cryostat.stop()
    assert status.done and not status.success
    assert read_pv(cryostat.setpoint.pvname).data[0] <= 21.0 + 1e-9
    assert cryostat.ramp_enabled.get() == "Off"
    wait_for(lambda: station.simulation.sample_temperature.get() < 21.5, 30.0,
             "the sample to come down to the ceiling")


def test_connect_arms_the_sample_input_limit_and_a_mount_rearms_it(station, RE, ioc):
    limit_pv = f"{ioc.prefix}TC:IN2:TLimit_RBV"
    stage_limit_pv = f"{ioc.prefix}TC:IN1:TLimit_RBV"
    assert read_pv(limit_pv).data[0] == pytest.approx(77.0)
    assert read_pv(stage_limit_pv).data[0] == pytest.approx(77.0)
    RE(bps.mv(station.environment.sample, "pb"))
    try:
        wait_for(lambda: read_pv(limit_pv).data[0] == pytest.approx(400.0), 5.0,
                 "the Pb limit on the controller")
        wait_for(lambda: read_pv(stage_limit_pv).data[0] == pytest.approx(400.0), 5.0,
                 "the Pb limit on the controller's stage input")
    finally:
        RE(bps.mv(station.environment.sample, "mg_mgo"))
    wait_for(lambda: read_pv(limit_pv).data[0] == pytest.approx(77.0), 5.0,
             "the Mg/MgO limit on the controller")
    wait_for(lambda: read_pv(stage_limit_pv).data[0] == pytest.approx(77.0), 5.0,
             "the Mg/MgO limit on the controller's stage input")
    armed_at = read_pv(limit_pv).metadata.timestamp
    station.arm_sample_input_limit().wait(5.0)  # idempotent: nothing written again
    assert read_pv(limit_pv).metadata.timestamp == armed_at


def test_a_bias_move_needs_only_the_measurement_the_put_posted(station, RE):
    """The IOC posts the new measurement before it completes the put, so one is enough.

    The earlier rule (two measurements after the readback) always saw two at the
    moment the move finished; a tick may land between the put's measurement and
    its completion, so not every move sees exactly one: at least one must.
    """
    bias = station.bias_source
    RE(bps.mv(station.environment.insert, "transport", bias.output_enabled, "On"))
    RE(bps.mv(bias, 0.0))
    fresh_counts = []
    try:
        for target in (0.3, -0.2, 0.1, 0.25, 0.05, 0.0):  # each a change: the put posts anew
            lock = threading.Lock()
            seen = {"readback": None, "measured": []}

            def readback(value=None, timestamp=None, _seen=seen, _lock=lock, _target=target,
                         **kwargs):
                with _lock:
                    if _seen["readback"] is None and value == pytest.approx(_target):
                        _seen["readback"] = timestamp

            def measurement(timestamp=None, _seen=seen, _lock=lock, **kwargs):
                with _lock:
                    _seen["measured"].append(timestamp)

            # subscribed before the device's own: the monitor thread calls them first
            subscriptions = [(bias.current, bias.current.subscribe(readback, run=False)),
                             (bias.measured_current,
                              bias.measured_current.subscribe(measurement, run=False))]
            status = bias.set(target)

            def done(finished, _seen=seen, _lock=lock):
                with _lock:
                    since = _seen["readback"]
                    fresh_counts.append(sum(1 for stamp in _seen["measured"] if stamp >= since))

            status.add_callback(done)
            status.wait(10.0)
            for signal, subscription in subscriptions:
                signal.unsubscribe(subscription)
            assert status.success
            assert bias.measured_current.get() == pytest.approx(
                target, abs=bias.current_tolerance.get())
    finally:
        RE(bps.mv(bias, 0.0))
    assert min(fresh_counts) >= 1
    assert 1 in fresh_counts, f"measurements after the put when each move finished: {fresh_counts}"
