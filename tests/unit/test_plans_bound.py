"""Station-bound plans: signatures, docstrings, and what the queueserver accepts or refuses."""

import inspect
from types import SimpleNamespace

import pytest
from bluesky_queueserver.manager.profile_ops import (
    _process_plan,
    load_allowed_plans_and_devices,
    validate_plan,
)

from tcstation.plans import bound
from tcstation.queueserver import EXISTING_PLANS_FILE, PERMISSIONS_FILE

ALL_PLANS = bound.MEASUREMENT_PLANS + bound.MAINTENANCE_PLANS


@pytest.fixture(scope="module")
def described_plans():
    plans = bound.bind_plans(object())
    return {name: _process_plan(plan, existing_devices={}, existing_plans={})
            for name, plan in vars(plans).items()}


def validate(described_plans, name, **kwargs):
    return validate_plan({"name": name, "kwargs": kwargs}, allowed_plans=described_plans,
                         allowed_devices={})


def test_bound_plans_drop_the_station_and_keep_everything_else():
    plans = bound.bind_plans(object())
    for plan in ALL_PLANS:
        bound_plan = getattr(plans, plan.__name__)
        original = list(inspect.signature(plan, eval_str=True).parameters.values())
        assert list(inspect.signature(bound_plan).parameters.values()) == original[1:]
        assert inspect.isgeneratorfunction(bound_plan)
        assert "station :" not in bound_plan.__doc__
        assert bound_plan.__doc__.splitlines()[0] == plan.__doc__.splitlines()[0]


def test_bound_plan_passes_its_station_and_arguments_through():
    calls = []

    def plan(station, start: float = 1.0, md: dict | None = None):
        """A plan.

        Parameters
        ----------
        station : Station
            The station.
        start : float
            Where.
        """
        calls.append((station, start, md))
        return (yield "message")

    station = object()
    bound_plan = bound.bind_plan(plan, station)
    generator = bound_plan(2.5, md={"a": 1})
    assert next(generator) == "message"
    assert calls == [(station, 2.5, {"a": 1})]
    assert "Where." in bound_plan.__doc__ and "The station." not in bound_plan.__doc__


def test_a_plan_without_a_station_first_is_refused():
    def plan(start: float):
        yield from ()

    with pytest.raises(TypeError, match="station"):
        bound.bind_plan(plan, object())


@pytest.mark.parametrize("kwargs", [
    {"start": 45, "stop": 60},
    {"start": 45.0, "stop": 60.0, "rate": 1.0, "biases": [0, 0.2, 0.3, 0.4], "contacts": "core"},
])
def test_queue_accepts_good_transport_ramps(described_plans, kwargs):
    assert validate(described_plans, "transport_ramp", **kwargs) == (True, "")


@pytest.mark.parametrize("kwargs, reason", [
    ({"rate": 10}, "Value 10 is out of range [0.1, 5]"),
    ({"rate": "fast"}, "valid number"),
    ({"contacts": "edge"}, "'core' or 'surface'"),
    ({"biases": [0, 2.0]}, "Value 2.0 is out of range [-1.05, 1.05]"),
    ({"biases": [0, "a"]}, "valid number"),
    ({"start": 1.0}, "out of range [4.2, 76]"),
    ({"stop": 76.8}, "Value 76.8 is out of range [4.2, 76]"),
    ({"excitation": 1.0}, "out of range [0.0001, 0.1]"),
    ({"sample": "mg"}, "unexpected keyword argument 'sample'"),
])
def test_queue_refuses_bad_transport_ramps_with_the_reason(described_plans, kwargs, reason):
    accepted, message = validate(described_plans, "transport_ramp", **kwargs)
    assert not accepted
    assert reason in message


def test_queue_refuses_unknown_samples_and_references(described_plans):
    assert validate(described_plans, "mount_sample", kind="nb") == (True, "")
    accepted, message = validate(described_plans, "mount_sample", kind="tin")
    assert not accepted and "'pure_mg', 'mg_mgo', 'pb', 'nb' or 'mgb2'" in message
    accepted, message = validate(described_plans, "calibrate_susceptometer", reference="mgb2")
    assert not accepted and "'pb' or 'nb'" in message
    accepted, message = validate(described_plans, "expose_to_room_temperature", minutes=900)
    assert not accepted and "out of range [0, 600]" in message


def test_sample_limit_is_checked_when_the_plan_starts_before_anything_moves():
    moved = []
    limit = SimpleNamespace(get=lambda: 77.0)
    station = SimpleNamespace(cryostat=SimpleNamespace(sample_temperature_limit=limit,
                                                       set=moved.append))
    plans = bound.bind_plans(station)
    with pytest.raises(ValueError, match="stop = 80 K is outside the allowed range 4.2 to 76 K"):
        next(plans.transport_ramp(start=45, stop=80))
    assert moved == []


def test_operators_run_measurements_and_only_admins_maintenance():
    allowed, _ = load_allowed_plans_and_devices(
        path_existing_plans_and_devices=str(EXISTING_PLANS_FILE),
        path_user_group_permissions=str(PERMISSIONS_FILE))
    measurement = {plan.__name__ for plan in bound.MEASUREMENT_PLANS}
    maintenance = {plan.__name__ for plan in bound.MAINTENANCE_PLANS}
    assert set(allowed["primary"]) == measurement
    assert set(allowed["admin"]) == measurement | maintenance


def test_queue_refuses_targets_the_station_cannot_hold(described_plans):
    accepted, message = validate(described_plans, "transport_grid", temperatures=[76.8])
    assert not accepted and "Value 76.8 is out of range [4.2, 76]" in message
    accepted, message = validate(described_plans, "cool_down", temperature=77)
    assert not accepted and "Value 77 is out of range [4.2, 76]" in message
    assert validate(described_plans, "cool_down", temperature=76) == (True, "")
