"""Checks of plan arguments, made before anything moves.

Every refusal is a :class:`PlanArgumentError` (a ``ValueError``) naming the
argument, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

RAMP_RATE_RANGE = (0.1, 5.0)
"""K/min. The source experiment heats at 1 to 1.5 K/min; 0.1 is the adaptive ramp's floor."""
BASE_TEMPERATURE = 4.2
"""K, the lowest temperature the cryostat reaches."""
EXCITATION_RANGE = (1e-4, 0.1)
"""A (amplitude) of the transport ac excitation."""
SUSCEPTOMETER_FIELD_RANGE = (0.01, 1.0)
"""Oe (amplitude) of the susceptometer drive."""
FREQUENCY_RANGE = (1.0, 100e3)
"""Hz, what the SR830 reference allows for our inserts."""
EXPOSURE_RANGE = (0.0, 600.0)
"""Minutes at room temperature."""
CONTACTS = ("core", "surface")


class PlanArgumentError(ValueError):
    """A plan argument outside what the station allows; nothing was moved."""


def number_in_range(name: str, value, low: float, high: float, units: str = "") -> float:
    """Return ``value`` as a float if finite and within [low, high]."""
    unit_text = f" {units}" if units else ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlanArgumentError(
            f"{name} = {value!r} is not a number; allowed {low:g} to {high:g}{unit_text}"
        ) from None
    if not (math.isfinite(number) and low <= number <= high):
        raise PlanArgumentError(
            f"{name} = {number:g}{unit_text} is outside the allowed range "
            f"{low:g} to {high:g}{unit_text}"
        )
    return number


def ramp_rate(rate) -> float:
    return number_in_range("rate", rate, *RAMP_RATE_RANGE, "K/min")


LIMIT_CLEARANCE = 1.0
"""K a ramp ends below the sample's limit, clear of the temperature guard."""


def temperature_span(start, stop, limit: float) -> tuple[float, float]:
    """A heating span from ``start`` to ``stop`` within base and 1 K below the sample's limit."""
    highest = limit - LIMIT_CLEARANCE
    start = number_in_range("start", start, BASE_TEMPERATURE, highest, "K")
    stop = number_in_range("stop", stop, BASE_TEMPERATURE, highest, "K")
    if stop <= start:
        raise PlanArgumentError(f"stop = {stop:g} K must be above start = {start:g} K "
                                "(the ramps heat)")
    return start, stop


def bias_currents(biases: Iterable, limit: float) -> tuple[float, ...]:
    """A non-empty sequence of dc biases (A), each within +-limit."""
    values = tuple(biases) if biases is not None else ()
    if not values:
        raise PlanArgumentError(f"biases is empty; give at least one current within "
                                f"+-{limit:g} A")
    return tuple(number_in_range(f"biases[{index}]", value, -limit, limit, "A")
                 for index, value in enumerate(values))


def choice(name: str, value, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise PlanArgumentError(f"{name} = {value!r} is not one of {', '.join(allowed)}")
    return value


def whole_number(name: str, value, low: int, high: int) -> int:
    number = number_in_range(name, value, low, high)
    if number != int(number):
        raise PlanArgumentError(f"{name} = {value!r} is not a whole number")
    return int(number)
