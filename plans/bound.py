"""The station's plans bound to one station, as the IPython session and the queueserver use them.

Every public plan takes the station as its first argument, which a queue item
cannot carry. :func:`bind_plans` makes, for one connected station, the same
plans without that argument: ``transport_ramp(start=45, stop=60)``. Each bound
plan keeps the plan's name, typed signature (less ``station``) and numpy
docstring, which the queueserver reads, and carries its argument ranges and
choices as a queueserver parameter annotation, so that a queued item with a
wrong type, an out-of-range number or an unknown choice is refused when it is
added, with the reason, before it can run.

The ranges here are the instruments' own, except temperatures: a queued target
may be at most ``LOWEST_SAMPLE_LIMIT - TARGET_MARGIN`` (76 K), what the station can
hold for the most delicate sample it measures (Mg/MgO, whose limit is 77 K) with the
temperature guard tripping only above it. The mounted sample's own limit is
checked again by the plan when it starts, before anything moves. A NaN passes the
queueserver's range check (it compares false); the plan refuses it when it starts,
before anything moves.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from types import SimpleNamespace

from bluesky_queueserver import parameter_annotation_decorator

from tcstation.devices.station import Station
from tcstation.instruments.lakeshore336 import SETPOINT_RANGE
from tcstation.instruments.sourcemeter import CURRENT_RANGE
from tcstation.plans import validation
from tcstation.plans.maintenance import (
    SAMPLE_KINDS,
    calibrate_susceptometer,
    check_thermometry,
    cool_down,
    expose_to_room_temperature,
    mount_sample,
)
from tcstation.plans.policy import LOWEST_SAMPLE_LIMIT
from tcstation.plans.protocol import source_protocol
from tcstation.plans.ramps import (
    adaptive_transport_ramp,
    susceptibility_ramp,
    transport_grid,
    transport_ramp,
)

MEASUREMENT_PLANS = (transport_ramp, adaptive_transport_ramp, susceptibility_ramp, transport_grid,
                     check_thermometry, cool_down, mount_sample)
"""Plans an operator runs: they heat within the sample's limit, or only cool."""
MAINTENANCE_PLANS = (expose_to_room_temperature, calibrate_susceptometer, source_protocol)
"""Plans that warm the sample on purpose or overwrite the calibration (the protocol does both)."""

TEMPERATURE_RANGE = (validation.BASE_TEMPERATURE,
                     min(SETPOINT_RANGE[1], LOWEST_SAMPLE_LIMIT) - validation.TARGET_MARGIN)
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "start": TEMPERATURE_RANGE,
    "stop": TEMPERATURE_RANGE,
    "transport_start": TEMPERATURE_RANGE,
    "temperature": TEMPERATURE_RANGE,
    "temperatures": TEMPERATURE_RANGE,
    "rate": validation.PLAN_RAMP_RATE_RANGE,
    "transport_rate": validation.PLAN_RAMP_RATE_RANGE,
    "fast": validation.PLAN_RAMP_RATE_RANGE,
    "slow": validation.PLAN_RAMP_RATE_RANGE,
    "biases": CURRENT_RANGE,
    "excitation": validation.EXCITATION_RANGE,
    "frequency": validation.FREQUENCY_RANGE,
    "field": validation.SUSCEPTOMETER_FIELD_RANGE,
    "minutes": validation.EXPOSURE_RANGE,
    "exposure_minutes": validation.EXPOSURE_RANGE,
    "readings": (1, 100),
}
"""Queue-time range of each numeric parameter (of each element, for sequences), by name."""
PARAMETER_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "contacts": ("Contacts", validation.CONTACTS),
    "kind": ("SampleKind", SAMPLE_KINDS),
    "reference": ("CalibrationReference", ("pb", "nb")),
}
"""Queue-time choices of each string parameter: (enum type name, allowed values)."""


def docstring_without_parameter(docstring: str | None, name: str) -> str | None:
    """A numpy docstring with the entry of parameter ``name`` left out."""
    if not docstring:
        return docstring
    lines = docstring.splitlines()
    kept: list[str] = []
    skipping = False
    entry_indent = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith(f"{name} :") or stripped == name:
            skipping, entry_indent = True, indent
            continue
        if skipping:
            if stripped and indent <= entry_indent:
                skipping = False
            else:
                continue
        kept.append(line)
    return "\n".join(kept)


def queue_annotation(signature: inspect.Signature) -> dict:
    """The queueserver parameter annotation (ranges and choices) for a bound signature."""
    parameters = {}
    for name in signature.parameters:
        if name in PARAMETER_RANGES:
            low, high = PARAMETER_RANGES[name]
            parameters[name] = {"min": low, "max": high}
        elif name in PARAMETER_CHOICES:
            type_name, allowed = PARAMETER_CHOICES[name]
            parameters[name] = {"annotation": type_name, "enums": {type_name: list(allowed)}}
    return {"parameters": parameters}


def bind_plan(plan: Callable[..., Generator], station: Station) -> Callable[..., Generator]:
    """``plan`` with ``station`` given: same name, signature less ``station``, and docstring.

    Raises
    ------
    TypeError
        If ``plan``'s first parameter is not ``station``.
    """
    signature = inspect.signature(plan, eval_str=True)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].name != "station":
        raise TypeError(f"{plan.__name__} does not take the station as its first parameter")
    bound_signature = signature.replace(parameters=parameters[1:])

    def bound(*args, **kwargs):
        return (yield from plan(station, *args, **kwargs))

    bound.__name__ = bound.__qualname__ = plan.__name__
    bound.__module__ = plan.__module__
    bound.__doc__ = docstring_without_parameter(plan.__doc__, "station")
    bound.__signature__ = bound_signature
    return parameter_annotation_decorator(queue_annotation(bound_signature))(bound)


def bind_plans(station: Station) -> SimpleNamespace:
    """Every public plan bound to ``station``, as attributes named like the plans."""
    return SimpleNamespace(**{plan.__name__: bind_plan(plan, station)
                              for plan in MEASUREMENT_PLANS + MAINTENANCE_PLANS})
