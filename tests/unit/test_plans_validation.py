"""Plan arguments refused before anything moves, each message naming the value and the range."""

import math
from types import SimpleNamespace

import pytest
from bluesky.utils import Msg

from tcstation.plans import safety, validation
from tcstation.plans.validation import PlanArgumentError


def test_targets_stop_one_target_margin_below_the_limit_and_below_the_guard():
    assert validation.highest_target(77.0) == 76.0
    assert validation.highest_target(77.0) < 77.0 - safety.GUARD_MARGIN
    assert validation.target_temperature("temperature", 76.0, 77.0) == 76.0
    for value in (76.8, 77.0):
        with pytest.raises(PlanArgumentError,
                           match=rf"temperature = {value:g} K is outside the allowed range "
                                 r"4.2 to 76 K"):
            validation.target_temperature("temperature", value, 77.0)


@pytest.mark.parametrize("value", [math.nan, math.inf, "fast", None])
def test_a_rate_that_is_not_a_finite_number_is_refused_with_the_value(value):
    with pytest.raises(PlanArgumentError, match=r"rate = .* (not a number|outside)"):
        validation.ramp_rate(value)


def test_a_scalar_where_a_sequence_is_needed_names_the_value():
    with pytest.raises(PlanArgumentError, match=r"biases = 0.2 is not a sequence.*\[0.2\]"):
        validation.bias_currents(0.2, 1.05)
    with pytest.raises(PlanArgumentError,
                       match=r"temperatures = 50.0 is not a sequence.*\[50\]"):
        validation.temperature_list(50.0, 77.0)
    with pytest.raises(PlanArgumentError, match=r"biases = '0.2' is not a sequence"):
        validation.bias_currents("0.2", 1.05)
    with pytest.raises(PlanArgumentError, match=r"temperatures\[0\] = 76.8 K .* 4.2 to 76 K"):
        validation.temperature_list([76.8], 77.0)


@pytest.mark.parametrize(("md", "message"), [
    ("operator", r"md = 'operator' is not a dict"),
    ({1: "a"}, r"md keys \[1\] are not strings"),
    ({"uid": "x"}, r"md sets uid"),
    ({"sample": [1, 2]}, r"md\['sample'\] = \[1, 2\] must be a string or a dict"),
    ({"scan_id": 1.5}, r"md\['scan_id'\] = 1.5 must be a whole number"),
    ({"when": object()}, r"cannot be stored in a start document"),
])
def test_bad_metadata_is_refused_with_the_value(md, message):
    with pytest.raises(PlanArgumentError, match=message):
        validation.metadata(md)


def test_good_metadata_passes():
    assert validation.metadata(None) == {}
    assert validation.metadata({"operator": "a", "sample": {"name": "x"}}) == {
        "operator": "a", "sample": {"name": "x"}}


class _FakeStation:
    """Enough of a station for the plans' checks, recording any write."""

    def __init__(self):
        self.writes = []
        limit = SimpleNamespace(get=lambda: 77.0)
        self.cryostat = SimpleNamespace(sample_temperature_limit=limit, time_scale=1.0,
                                        set=self.writes.append)
        self.bias_source = SimpleNamespace(current_limit=SimpleNamespace(get=lambda: 1.05))


@pytest.mark.parametrize(("plan_name", "kwargs", "message"), [
    ("transport_grid", {"temperatures": [76.8]}, r"temperatures\[0\] = 76.8 K"),
    ("transport_grid", {"temperatures": 50.0}, r"temperatures = 50.0 is not a sequence"),
    ("transport_grid", {"temperatures": [50.0], "biases": 0.2}, r"biases = 0.2"),
    ("transport_ramp", {"biases": 0.2}, r"biases = 0.2 is not a sequence"),
    ("transport_ramp", {"stop": 76.5}, r"stop = 76.5 K is outside the allowed range 4.2 to 76"),
    ("transport_ramp", {"rate": math.nan}, r"rate = nan K/min is outside"),
    ("transport_ramp", {"md": "x"}, r"md = 'x' is not a dict"),
    ("susceptibility_ramp", {"md": {"uid": 1}}, r"md sets uid"),
    ("cool_down", {"temperature": 77.0}, r"temperature = 77 K is outside .* 4.2 to 76 K"),
    ("cool_down", {"md": ["x"]}, r"md = \['x'\] is not a dict"),
])
def test_plans_refuse_before_their_first_message(plan_name, kwargs, message):
    from tcstation.plans import maintenance, ramps

    plan = getattr(ramps, plan_name, None) or getattr(maintenance, plan_name)
    station = _FakeStation()
    with pytest.raises(PlanArgumentError, match=message):
        next(plan(station, **kwargs))
    assert station.writes == []


def _controller(limit=77.0):
    setpoint = SimpleNamespace(name="cryostat_setpoint", setpoint_pvname="P:TC:OUT1:SP")
    controller = SimpleNamespace(
        name="cryostat", setpoint=setpoint,
        sample_temperature_limit=SimpleNamespace(get=lambda: limit),
        lower_limit=SimpleNamespace(get=lambda: 0.0))
    controller.max_target = lambda: limit - 1.0
    return controller


def _run_through(preprocessor, messages):
    """Drive a preprocessed list of messages; return those let through and the error."""
    passed = []

    def plan():
        yield from messages

    generator = preprocessor(plan())
    try:
        msg = next(generator)
        while True:
            passed.append(msg)
            msg = generator.send(None)
    except StopIteration:
        return passed, None
    except Exception as err:
        return passed, err


def test_the_preprocessor_refuses_an_unsafe_setpoint_whatever_carries_it():
    controller = _controller()
    raw = SimpleNamespace(name="raw_sp", pvname="P:TC:OUT1:SP")
    other = SimpleNamespace(name="ramp_rate", pvname="P:TC:RampR1")
    preprocessor = safety.refuse_unsafe_setpoints(controller)
    passed, error = _run_through(preprocessor, [Msg("set", controller.setpoint, 70.0),
                                                Msg("set", other, 100.0)])
    assert error is None and len(passed) == 2
    for obj in (controller, controller.setpoint, raw):
        passed, error = _run_through(preprocessor, [Msg("set", obj, 100.0)])
        assert passed == []
        assert isinstance(error, safety.UnsafeSetpointError)
        assert "setpoint 100 K" in str(error) and "0 to 76 K" in str(error)
    passed, error = _run_through(preprocessor, [Msg("set", controller, math.nan)])
    assert isinstance(error, safety.UnsafeSetpointError)


def test_the_rise_predictor_looks_one_reaction_time_ahead_within_the_controllers_bound():
    predictor = safety.RisePredictor()
    for step in range(5):
        predictor.update(100.0 + 0.1 * step, 70.0 + 2.0 * step)  # 20 K per wall second
    assert predictor.rate == pytest.approx(20.0)
    assert predictor.predicted(0.1) == pytest.approx(78.0 + 20.0 * 0.2)
    assert predictor.predicted(0.1, bound=79.0) == pytest.approx(79.0)
    assert predictor.predicted(0.1, bound=-math.inf) == pytest.approx(78.0)
    assert safety.heating_bound("Open Loop", "High", 10.0) == math.inf
    assert safety.heating_bound("Closed Loop", "High", 60.0) == pytest.approx(60.2)
    assert safety.heating_bound("Closed Loop", "Off", 60.0) == -math.inf


def test_a_ramp_too_coarse_for_the_analysis_is_warned_about_with_the_numbers(caplog):
    from tcstation.plans import ramps

    lockin = SimpleNamespace(slope=SimpleNamespace(get=lambda: 1), reading_overhead=0.095)
    station = SimpleNamespace(cryostat=SimpleNamespace(time_scale=1 / 120.0))
    estimate = ramps.expected_spacing(station, lockin, 1.5, 4)
    assert estimate.settle == pytest.approx(2.1, abs=0.05)
    assert estimate.overhead == pytest.approx(11.4)
    assert estimate.spacing == pytest.approx(1.5 / 60 * 4 * (estimate.settle + 11.4))
    assert estimate.coarse and ramps.REQUIRED_SPACING == pytest.approx(1 / 3)
    with caplog.at_level("WARNING", logger="tcstation.plans.ramps"):
        ramps.check_spacing(estimate)
    assert "too coarse" in caplog.text and "1.5 K/min x 4 curve(s)" in caplog.text
    real = ramps.expected_spacing(SimpleNamespace(cryostat=SimpleNamespace(time_scale=1.0)),
                                  lockin, 1.5, 4)
    assert not real.coarse


def test_the_progress_line_shows_the_spacing_each_curve_gets():
    import io

    from tcstation.plans.progress import RampProgress

    progress = RampProgress(stream=io.StringIO(), quiet=False)
    progress("start", {"uid": "u", "plan_name": "transport_ramp",
                       "ramp": {"start": 10.0, "stop": 20.0, "rate": 1.5},
                       "fields": {"bias": "i"}, "expected_spacing": {"spacing": 0.25},
                       "hints": {"dimensions": [(["t"], "primary")]}})
    progress("descriptor", {"uid": "d", "name": "primary"})
    for index, temperature in enumerate((10.0, 10.1, 10.3, 10.4, 10.6)):
        progress("event", {"descriptor": "d", "data": {"t": temperature, "i": index % 2 * 0.2}})
    assert progress.achieved_spacing == pytest.approx(0.3)
    assert "0.30 K/point (expected 0.25)" in progress.postfix(10.6)
    progress("stop", {})
