"""Plans against the simulated station IOC: ramps, refusals, cleanup, recovery, safety."""

from __future__ import annotations

import logging
import queue
import threading
import time

import epics
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky.utils import RunEngineInterrupted
from ramp_sampling import (
    assert_curve_sampling,
    bias_curves,
    median_spacing,
)

from tcstation.devices.station import build_station
from tcstation.ioc_sim.sample import SampleModel
from tcstation.plans.adaptive import StepEvidenceRule
from tcstation.plans.maintenance import cool_down, expose_to_room_temperature, mount_sample
from tcstation.plans.policy import RESUME_MARGIN
from tcstation.plans.ramps import (
    RampInterruptedError,
    adaptive_transport_ramp,
    build_transport_ramp,
    susceptibility_ramp,
    transport_grid,
    transport_ramp,
)
from tcstation.plans.safety import (
    CompliancePause,
    InstrumentConnectionGuard,
    SampleTemperatureGuard,
)
from tcstation.plans.validation import PlanArgumentError

pytestmark = pytest.mark.integration


def events(documents, stream: str = "primary") -> list[dict]:
    """Events of the last run in ``documents``."""
    last_start = [doc["uid"] for name, doc in documents if name == "start"][-1]
    descriptors = {doc["uid"] for name, doc in documents
                   if name == "descriptor" and doc["name"] == stream
                   and doc["run_start"] == last_start}
    return [doc for name, doc in documents if name == "event" and doc["descriptor"] in descriptors]


def column(event_list, field: str) -> np.ndarray:
    return np.array([event["data"][field] for event in event_list], dtype=float)


def assert_safe(station):
    """Bias at zero with the output off; the controller holding, not ramping."""
    source = station.bias_source
    assert source.current.get(use_monitor=False) == pytest.approx(0.0)
    assert source.output_enabled.get(use_monitor=False) == "Off"
    assert station.cryostat.ramp_enabled.get(use_monitor=False) == "Off"
    setpoint = station.cryostat.setpoint.get(use_monitor=False)
    sample = station.cryostat.sample_temperature.get(use_monitor=False)
    limit = station.cryostat.sample_temperature_limit.get()
    assert setpoint <= min(sample, limit - 7.0) + 0.5


def test_one_heating_ramp_cycles_every_bias_with_rising_temperature(station, RE):
    RE(transport_ramp(station, start=47.0, stop=57.0, rate=1.5,
                      md={"operator": "test"}))
    (start,) = [doc for name, doc in RE.documents if name == "start"]
    assert start["plan_name"] == "transport_ramp"
    assert start["sample"]["name"] == "mg_mgo"
    assert start["sample"]["contacts"] == "surface"
    assert start["operator"] == "test"
    temperature_field = start["hints"]["dimensions"][0][0][0]
    ramp_events = events(RE.documents)
    biases = column(ramp_events, station.bias_source.measured_current.name)
    cycles = len(biases) // 4
    assert cycles >= 5, (f"{cycles} bias cycles over the 10 K ramp (a slow or busy machine); "
                         "the check needs >= 5 to show the cycling with rising temperature")
    assert np.allclose(biases[: 4 * cycles].reshape(cycles, 4), [0.0, 0.2, 0.3, 0.4], atol=2e-3)
    estimate = column(ramp_events, temperature_field)
    raw_sample = column(ramp_events, station.cryostat.sample_temperature.name)
    assert np.all(np.diff(estimate) > -0.05), "heating: the temperature must not fall"
    # The first reading comes once the ramp is under way: on a busy machine a bias cycle's
    # readings cost more simulated time, so it may lie up to one cycle's rise above the start.
    cycle_rise = float(np.median(np.diff(estimate[: 4 * cycles : 4])))
    assert 47.0 - 0.3 <= estimate[0] <= 47.0 + max(0.3, cycle_rise), (estimate[0], cycle_rise)
    assert estimate[-1] == pytest.approx(57.0, abs=0.5)
    # The lag correction is systematic: without it the estimate would be the stage
    # sensor's, rate x lag = 0.5 K above the sample at every point. The event reads the sensor a few
    # milliseconds after the estimate, which on a busy machine is several simulated
    # seconds (0.025 K/s at 1.5 K/min) now and then: a point's skew, not the device's.
    offset = np.abs(estimate - raw_sample)
    assert np.median(offset) < 0.03 and np.percentile(offset, 90) < 0.1, (
        f"the estimate is off the sample sensor by a median {np.median(offset):.3f} K; "
        f"offsets {np.round(estimate - raw_sample, 3).tolist()}")
    dudi = column(ramp_events, station.transport.dynamic_resistance.name)
    zero_bias = dudi[biases < 0.01]
    assert zero_bias[0] < 3.2e-3 and zero_bias[-1] > 4.9e-3
    assert_safe(station)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"rate": 0.0}, "rate = 0"),
    ({"rate": 50.0}, "rate = 50"),
    ({"stop": 80.0}, "stop = 80"),
    ({"biases": [0.0, 5.0]}, r"biases\[1\] = 5 A is outside the allowed range -1.05 to 1.05 A"),
    ({"biases": []}, "biases is empty"),
    ({"contacts": "side"}, "contacts = 'side'"),
])
def test_refused_arguments_raise_before_any_message_moves_anything(station, RE, arguments,
                                                                    message):
    messages = []
    RE.msg_hook = messages.append
    with pytest.raises(PlanArgumentError, match=message):
        RE(transport_ramp(station, **{"start": 47.0, "stop": 57.0, **arguments}))
    assert [msg for msg in messages if msg.command == "set"] == []


def _after_events(RE, count: int, action):
    """Call ``action`` from another thread once ``count`` primary events were emitted."""
    seen = []

    def watch(name, doc):
        if name == "event":
            seen.append(doc)
            if len(seen) == count:
                threading.Thread(target=action, daemon=True).start()

    return RE.subscribe(watch)


def test_abort_mid_ramp_leaves_the_station_safe(station, RE):
    _after_events(RE, 6, RE.request_pause)
    with pytest.raises(RunEngineInterrupted):
        RE(transport_ramp(station, start=47.0, stop=60.0, rate=1.5))
    assert station.bias_source.output_enabled.get(use_monitor=False) == "On"
    RE.abort("test abort")
    (stop,) = [doc for name, doc in RE.documents if name == "stop"]
    assert stop["exit_status"] == "abort"
    assert_safe(station)


def test_exception_inside_the_ramp_leaves_the_station_safe(station, RE):
    calls = []

    def failing_rule(data):
        calls.append(data)
        if len(calls) == 6:
            raise RuntimeError("injected failure inside the ramp")

    with pytest.raises(RuntimeError, match="injected failure"):
        RE(build_transport_ramp(station, 47.0, 60.0, 1.5, (0.0, 0.4), "surface", 0.024, 13.0,
                                None, rate_rule=failing_rule))
    (stop,) = [doc for name, doc in RE.documents if name == "stop"]
    assert stop["exit_status"] == "fail"
    assert_safe(station)


def test_compliance_trip_pauses_with_a_message(station, RE):
    pause = CompliancePause(station)
    pause.install(RE)
    station.bias_source.voltage_limit.set(0.3).wait(5)
    try:
        with pytest.raises(RunEngineInterrupted):
            RE(transport_ramp(station, start=47.0, stop=52.0, rate=1.5, biases=(0.0, 0.4)))
        assert RE.state == "paused"
        assert "compliance" in pause.message and "0.3 V" in pause.message
        RE.abort("compliance")
    finally:
        pause.remove()
        station.bias_source.voltage_limit.set(2.0).wait(5)
    assert_safe(station)


def test_temperature_guard_stops_a_runaway_heater_before_the_limit(station, ioc, RE):
    controller = station.cryostat
    limit = controller.sample_temperature_limit
    RE(cool_down(station, 30.0))
    guard = SampleTemperatureGuard(controller)
    RE.install_suspender(guard)
    limit.put(40.0)
    runaway = threading.Event()

    def heater_runs_away():
        # an operator's slip mid-run: open loop, full heater power
        assert epics.caput(f"{ioc.prefix}TC:OUT1:MOUT", 100.0, wait=True) == 1
        assert epics.caput(f"{ioc.prefix}TC:OUT1:Mode", "Open Loop", wait=True) == 1
        runaway.set()

    _after_events(RE, 4, heater_runs_away)
    try:
        with pytest.raises(RampInterruptedError, match="temperature guard"):
            RE(transport_ramp(station, start=30.0, stop=37.0, rate=1.5, biases=(0.0,)))
    finally:
        RE.remove_suspender(guard)
        limit.put(77.0)
    assert runaway.is_set()
    assert guard.trips == 1
    assert controller.control_mode.get(use_monitor=False) == "Closed Loop"
    sample = column(events(RE.documents), controller.sample_temperature.name)
    assert sample.max() < 40.0
    peak = station.simulation.sample_temperature.get(use_monitor=False)
    assert peak < 40.0
    assert_safe(station)


def test_an_ioc_restart_suspends_and_the_ramp_resumes_without_lost_events(
        station_factory, tmp_path, caplog, channel_renewal):
    """kill -9 the IOC three times mid-settle of a lock-in reading, restart it on its state.

    With the session's channel renewal on, as ``open_session`` has it: the suspension's
    ``stop()`` of the cryostat must write nothing while the IOC is away (a queued put
    would land on its return and hold the ramp), and each resume comes from a renewal.
    """
    renewals_before = channel_renewal.renewals
    ioc = station_factory(speedup=60.0, noise=True)
    ioc.stop()
    ioc.state_file = tmp_path / "state.json"
    ioc.start()
    station = build_station(ioc.prefix).connect(timeout=10.0)
    lockin = station.transport
    RE = RunEngine({}, call_returns_result=False)
    documents = []
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    guard = InstrumentConnectionGuard([station.cryostat.stage_temperature, station.transport.x])
    RE.install_suspender(guard)
    transitions = []  # the guard suspends while its signal is False and resumes when True
    guard.connection.subscribe(
        lambda value=None, **kwargs: transitions.append((bool(value), time.monotonic())),
        run=False)
    kills, first_kill_after, kills_apart = 3, 3, 3  # events
    seen = []
    RE.subscribe(lambda name, doc: seen.append(doc) if name == "event" else None)
    arm_at = [first_kill_after]
    killed = queue.Queue()
    original_trigger = lockin.trigger

    def saved_during_the_run() -> bool:
        # kill -9 loses what the IOC has not saved yet: first let it save the ramp's setpoint
        return bool(seen) and ioc.state_file.stat().st_mtime > seen[0]["time"]

    def trigger():
        status = original_trigger()
        if arm_at[0] is not None and len(seen) >= arm_at[0] and saved_during_the_run():
            arm_at[0] = None
            ioc.process.kill()  # no clean shutdown, no last save: the settle has just begun
            killed.put((status, status.done, time.monotonic()))
        return status

    lockin.trigger = trigger
    interrupted, outages, failures = [], [], []

    def interruptions() -> int:
        return caplog.text.count(f"{lockin.name}: the IOC is back; the trigger settles again")

    def restart_after_kills():
        try:
            while len(interrupted) < kills:
                status, done_at_kill, killed_at = killed.get(timeout=60.0)
                ioc.process.wait(10.0)
                if not done_at_kill:
                    interrupted.append(status)
                ioc.start()  # same port, same state file
                outages.append(time.monotonic() - killed_at)
                if len(interrupted) < kills:
                    arm_at[0] = len(seen) + kills_apart
        except Exception as err:  # noqa: BLE001 - reported by the test's thread
            failures.append(err)

    killer = threading.Thread(target=restart_after_kills, daemon=True)
    with caplog.at_level("WARNING", logger="tcstation.devices"):
        killer.start()
        # The cryostat heats on while the run is suspended (the restarted IOC also catches up
        # the time it was away): at 0.5 K/min and 60x a 10 s suspension costs 5 K of the 17 K.
        RE(transport_ramp(station, start=45.0, stop=62.0, rate=0.5, biases=(0.0, 0.4)))
    RE.remove_suspender(guard)
    killer.join(1.0)
    assert failures == []
    assert len(interrupted) == kills, (
        f"{len(interrupted)} of {len(outages)} kills landed mid-settle; the ramp ended first")
    assert all(status.done and status.success for status in interrupted), (
        "an interrupted trigger must finish after the reconnection")
    assert interruptions() >= kills
    (stop,) = [doc for name, doc in documents if name == "stop"]
    assert stop["exit_status"] == "success"
    ramp_events = events(documents)
    sequence = [event["seq_num"] for event in ramp_events]
    assert sequence == list(range(1, len(sequence) + 1)), "no lost or doubled events"
    biases = column(ramp_events, station.bias_source.measured_current.name)
    expected = np.resize([0.0, 0.4], len(biases))
    assert np.allclose(biases, expected, atol=2e-3), "every bias read once per cycle, in order"
    intervals = np.diff([event["time"] for event in ramp_events])
    # an outage lasts at least the IOC's restart: many readings' worth of time
    gaps = np.flatnonzero(intervals > 5.0 * np.median(intervals))
    assert len(gaps) >= kills, "each outage shows as a gap in the data"
    for gap in gaps:
        after = ramp_events[gap + 1]["timestamps"][lockin.x.name]
        assert after > ramp_events[gap]["time"], "the reading after an outage is a fresh one"
    temperature = column(ramp_events, station.transport_temperature.temperature.name)
    steps = np.diff(temperature)
    worst = int(np.argmin(steps))
    assert steps[worst] > -0.05, (
        f"the temperature fell by {-steps[worst]:.3f} K from event {worst + 1} to {worst + 2} "
        f"(outages after events {(gaps + 1).tolist()}); around it: "
        f"{np.round(temperature[max(worst - 3, 0):worst + 5], 3).tolist()}")
    assert temperature[-1] == pytest.approx(62.0, abs=0.5)
    suspended = [later - earlier for (connected, earlier), (back, later)
                 in zip(transitions, transitions[1:], strict=False) if not connected and back]
    assert len(suspended) == len(outages)
    assert channel_renewal.renewals - renewals_before >= kills, (
        "the channels came back without a renewal (libca's own, late re-search)")
    assert caplog.text.count("cryostat: stop() wrote nothing") >= kills
    print(f"outages (kill to serving) {np.round(outages, 2)} s, suspensions "
          f"{np.round(suspended, 2)} s, {len(ramp_events)} events")


def test_stepped_grid_settles_at_each_temperature_then_steps_the_bias(station, RE):
    RE(transport_grid(station, temperatures=[40.0, 55.0], biases=(0.0, 0.4)))
    grid = events(RE.documents)
    assert len(grid) == 4
    sample = column(grid, station.cryostat.sample_temperature.name)
    assert sample[:2] == pytest.approx([40.0, 40.0], abs=0.15)
    assert sample[2:] == pytest.approx([55.0, 55.0], abs=0.15)
    biases = column(grid, station.bias_source.measured_current.name)
    assert biases == pytest.approx([0.0, 0.4, 0.0, 0.4], abs=2e-3)
    dudi = column(grid, station.transport.dynamic_resistance.name)
    assert dudi[0] < dudi[1], "at 40 K the bias drives weak links normal"
    assert dudi[2] == pytest.approx(5.0e-3, rel=0.01), "normal state above every Tc"
    assert_safe(station)


def test_susceptibility_ramp_reads_chi_with_the_source_drive(station, RE):
    RE(susceptibility_ramp(station, start=45.0, stop=54.0, rate=1.5))
    (start,) = [doc for name, doc in RE.documents if name == "start"]
    assert start["measurement"] == "susceptibility"
    estimate = station.susceptometer_temperature.temperature.name
    assert start["hints"]["dimensions"][0][0] == [estimate]
    ramp = events(RE.documents)
    chi = column(ramp, station.susceptometer.chi_real.name)
    temperature = column(ramp, station.susceptometer_temperature.temperature.name)
    for name, where in (("below 47 K", temperature < 47.0), ("above 52 K", temperature > 52.0)):
        assert where.sum() >= 3, (f"{where.sum()} readings {name} (median spacing "
                                  f"{median_spacing(temperature):.2f} K); the check needs >= 3")
    assert chi[temperature < 47.0].mean() < -0.7, "shielded below the 50 K interface Tc"
    assert chi[temperature > 52.0].mean() > -0.6, "normal above it"
    (descriptor,) = [doc for name, doc in RE.documents if name == "descriptor"]
    configuration = descriptor["configuration"]["susceptometer"]["data"]
    assert configuration["susceptometer_frequency"] == pytest.approx(1550.0)
    drive = configuration["susceptometer_sine_amplitude"] * 0.2 / 1.0
    assert drive == pytest.approx(0.2, rel=1e-3), "0.2 Oe from the 0.2 Oe/V coil"


ADAPTIVE_SPEEDUP = 10.0
"""The adaptive ramp's IOC runs at 10x, not the module's 60x: every wall second a reading
takes is that many simulated seconds of ramp. At 60x, load 8 on two cores (a busy core and
a second copy of the test beside it) put 2.2 to 2.7 K between the points of a curve at
5 K/min (readings 13 to 16 simulated s apart) and the test failed its spacing condition;
at 20x, load 11 gave 0.9 to 1.5 K and 9 points below the rise. At 10x load 7 to 11 gave
0.35 to 0.6 K and 21 points or more, the ramp 37 to 77 wall s (the conditions below print
what it got)."""
ADAPTIVE_LATEST_FAST_SPACING = 1.6
"""K per curve at the fast rate beyond which this check cannot hold the rule to slowing
before the 400 mA onset: the 400 mA dU/dI rises 17 noise widths above its plateau by 44 K
and the developing-step test needs two or three points of the rise (the rule itself caps the
fast rate at a point every 1.5 K per curve at the cadence it measures). The ramp starts at
30 K: the test needs a stretch of flat curve below the rise to see it depart (from 40 K a
gradual rise is all the quadratic background sees)."""
ADAPTIVE_RISE_SEEN = 44.0
"""K by which the 400 mA dU/dI has risen 17 noise widths above its plateau."""
ADAPTIVE_FLAT_POINTS = 10
"""Points of each curve between the start and :data:`ADAPTIVE_RISE_SEEN` that the
developing-step test needs: five for the point noise below its hinges, plus the hinges' two
to four."""
ADAPTIVE_SLOW_SPACING = 0.5
"""K per curve through the transitions (first slow-down to 1 K above the 400 mA onset) that
the speed-up check needs to see the 3.5 K above the zero-bias onset flatten on enough points
(the rule aims at 0.25 K, lowering its slow rate as readings come slower)."""


@pytest.fixture
def adaptive_station(station_factory):
    """The station on an IOC of its own at :data:`ADAPTIVE_SPEEDUP`."""
    ioc = station_factory(speedup=ADAPTIVE_SPEEDUP, sample="mg_mgo", noise=True)
    station = build_station(ioc.prefix).connect(timeout=20.0)
    yield station
    for device in station.devices:
        device.destroy()


def test_adaptive_ramp_slows_where_dudi_changes(adaptive_station, RE, caplog):
    station = adaptive_station
    start, stop, biases = 30.0, 60.0, (0.0, 0.4)
    temperature_field = station.transport_temperature.temperature.name
    caplog.set_level(logging.INFO, logger=StepEvidenceRule.__module__)
    RE(adaptive_transport_ramp(station, start=start, stop=stop, biases=biases))
    # The rule logs every change of rate: (rate K/min, temperature K, reason). A slow-down
    # is a reason naming a developing step; the fast rate may be capped as low as the slow.
    decisions = [(float(record.args[0]), float(record.args[1]), str(record.args[2]))
                 for record in caplog.records
                 if record.name == StepEvidenceRule.__module__
                 and record.msg.startswith("adaptive ramp:")]
    ramp = events(RE.documents)
    temperature = column(ramp, temperature_field)
    bias = column(ramp, station.bias_source.measured_current.name)
    model = SampleModel("mg_mgo")
    onsets = {value: model.true_onsets(bias_current=value)["dudi_onset"] for value in biases}
    slowed = [at for _, at, reason in decisions if "developing step" in reason]
    sped_up = [(rate, at) for rate, at, reason in decisions
               if slowed and at > slowed[0] and "developing step" not in reason]
    first_slow = slowed[0] if slowed else stop
    fast_part = temperature < first_slow
    slow_part = (temperature >= first_slow) & (temperature <= max(onsets.values()) + 1.0)
    fast_spacing = {value: median_spacing(curve) for value, curve in
                    bias_curves(temperature[fast_part], bias[fast_part], biases).items()}
    below_rise = temperature < ADAPTIVE_RISE_SEEN
    flat_points = {value: curve.size for value, curve in
                   bias_curves(temperature[below_rise], bias[below_rise], biases).items()}
    slow_spacing = {value: median_spacing(curve) for value, curve in
                    bias_curves(temperature[slow_part], bias[slow_part], biases).items()}
    wall = ramp[-1]["time"] - ramp[0]["time"]
    conditions = (f"{len(ramp)} readings in {wall:.1f} wall s at {ADAPTIVE_SPEEDUP:g}x; "
                  f"fast-part spacing {fast_spacing} K and points {flat_points} per curve, "
                  f"slow-part spacing {slow_spacing} K per curve; decisions (K/min, K, why) "
                  f"{decisions}")
    print(conditions)

    # The conditions first: the sampling the rule had to see a step develop and the check
    # needs to tell slow from fast, each failing with its figures, not as physics.
    assert_curve_sampling(temperature[fast_part], bias[fast_part], biases,
                          spacing_needed=ADAPTIVE_LATEST_FAST_SPACING,
                          needed_by="slowing before the 400 mA onset")
    assert min(flat_points.values()) >= ADAPTIVE_FLAT_POINTS, (
        f"condition not met: fewer than {ADAPTIVE_FLAT_POINTS} points per curve below "
        f"{ADAPTIVE_RISE_SEEN:g} K (a busy machine); {conditions}")
    assert slowed, f"the ramp never slowed; {conditions}"
    assert all(value <= ADAPTIVE_SLOW_SPACING for value in slow_spacing.values()), (
        f"condition not met: the transitions sampled coarser than {ADAPTIVE_SLOW_SPACING} K "
        f"per curve (a busy machine); {conditions}")

    # The physics: slow before the 400 mA onset, slow through both onsets (no faster rate
    # set between the first slow-down and the zero-bias onset, the transitions sampled
    # more finely than the flat part), fast again only once the 3.5 K above the zero-bias
    # onset are flat.
    assert start < first_slow < onsets[0.4], (
        f"first slowed at {first_slow:.2f} K, not below the 400 mA onset "
        f"{onsets[0.4]:.2f} K; {conditions}")
    assert not [at for _, at in sped_up if at < onsets[0.0]], (
        f"sped up inside the transitions; {conditions}")
    assert all(value < fast_spacing[key] for key, value in slow_spacing.items()), (
        f"the transitions are not sampled more finely than the flat part; {conditions}")
    later = [at for _, at in sped_up if at > onsets[0.0]]
    assert later or temperature[-1] < onsets[0.0] + 3.5 + 2 * max(fast_spacing.values()), (
        f"never fast again after the zero-bias onset; {conditions}")
    if later:
        assert later[0] >= onsets[0.0] + 3.0, (
            f"fast again at {later[0]:.2f} K, before the 3.5 K above the zero-bias onset "
            f"{onsets[0.0]:.2f} K were flat; {conditions}")


def test_progress_bar_follows_the_ramp_temperature():
    import io

    from tcstation.plans.progress import RampProgress

    stream = io.StringIO()
    progress = RampProgress(stream=stream, quiet=False)
    progress("start", {"uid": "u", "plan_name": "transport_ramp",
                       "ramp": {"start": 10.0, "stop": 20.0, "rate": 1.5},
                       "hints": {"dimensions": [(["t_sample"], "primary")]}})
    progress("descriptor", {"uid": "d", "name": "primary"})
    for value in (10.0, 12.5, 15.0):
        progress("event", {"descriptor": "d", "data": {"t_sample": value}})
    assert progress.reached == pytest.approx(5.0)
    assert progress.bar.n == pytest.approx(5.0)
    progress("stop", {})
    assert "50%" in stream.getvalue() and "transport_ramp" in stream.getvalue()
    quiet = RampProgress(stream=io.StringIO())
    assert quiet.quiet, "not a terminal: quiet"


def test_room_temperature_exposure_records_the_warm_time(station, RE):
    RE(expose_to_room_temperature(station, minutes=5.0))
    exposure = events(RE.documents)
    warm = column(exposure, station.environment.warm_time.name)
    assert warm[0] == pytest.approx(0.0, abs=1.0) or warm[0] < warm[-1]
    # Above 77 K for the exposure, less the ~6 s the sample takes to warm past 77 K
    # through its 20 s thermal lag, plus its cool-back (under a minute for a stage
    # below 60 K; the last reading may come before the cool-back ends).
    assert 5 * 60 - 15 <= warm[-1] - warm[0] <= 5 * 60 + 75
    assert len(exposure) >= 4, "progress readings during the exposure"
    assert station.environment.exposing.get(use_monitor=False) is False
    # The run ends once the sample is back below its limit less the resume margin, so the
    # controller's input limit no longer holds the heater off for the next plan.
    limit = float(station.cryostat.sample_temperature_limit.get())
    assert column(exposure, station.cryostat.sample_temperature.name)[-1] < limit - RESUME_MARGIN
    RE(bps.mv(station.cryostat.heater_range, "High"))
    RE(mount_sample(station, "mg_mgo"))
