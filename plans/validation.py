"""Checks of plan arguments, made before anything moves.

Every refusal is a :class:`PlanArgumentError` (a ``ValueError``) naming the
argument, the value and what is allowed.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence

from tcstation.instruments.environment import CONTACT_KINDS as CONTACTS  # noqa: F401 - re-exported
from tcstation.instruments.environment import EXPOSURE_RANGE_MINUTES as EXPOSURE_RANGE  # noqa: F401
from tcstation.plans.policy import TARGET_MARGIN  # the guard trips closer to the limit than this

PLAN_RAMP_RATE_RANGE = (0.1, 5.0)
"""K/min, policy: the source experiment heats at 1 to 1.5 K/min; 0.1 is the adaptive ramp's
floor. The controller itself takes 0.1 to 100 K/min (``instruments.lakeshore336``)."""
FAST_SEGMENT_RATE_RANGE = (0.1, 5.0)
"""K/min, policy for the adaptive ramp's fast segments (where no curve shows a developing
transition). Not wider than :data:`PLAN_RAMP_RATE_RANGE`: at 5 K/min the sample trails the
stage by 1.7 K (thermal lag 20 s), which the lag-corrected temperature
(``devices.derived.LagCorrectedTemperature``) takes out only as well as the lag is known (a
10 % error in it is 0.17 K at 5 K/min, 0.05 K at 1.5), its rate fit over the last minute
lags a change of rate (the lock-in's 0.6 s filter delay then errs by at most 0.035 K for a
minute), and each of four bias curves gets a point every 0.8 K at real speed (2.5 s a
reading), 1.7 K on the simulator at 20x: the coarsest at which the developing-step test
still slows the ramp a few kelvin below the transitions. The sample only trails the stage
on heating, so the rate adds nothing above the stage's own limit checks (the guard, the
watchdog and TLIMIT act on the sample input; the stop is 1 K or more below the limit)."""
BASE_TEMPERATURE = 4.2
"""K, the lowest temperature the cryostat reaches."""
EXCITATION_RANGE = (1e-4, 0.1)
"""A (amplitude) of the transport ac excitation."""
SUSCEPTOMETER_FIELD_RANGE = (0.01, 1.0)
"""Oe (amplitude) of the susceptometer drive."""
FREQUENCY_RANGE = (1.0, 100e3)
"""Hz, what the SR830 reference allows for our inserts."""


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
    return number_in_range("rate", rate, *PLAN_RAMP_RATE_RANGE, "K/min")


def adaptive_rates(fast, slow) -> tuple[float, float]:
    """An adaptive ramp's (fast, slow) rates: fast within :data:`FAST_SEGMENT_RATE_RANGE`,
    slow within :data:`PLAN_RAMP_RATE_RANGE` and below fast."""
    fast = number_in_range("fast", fast, *FAST_SEGMENT_RATE_RANGE, "K/min (the adaptive "
                           "ramp's fast-segment policy)")
    slow = number_in_range("slow", slow, *PLAN_RAMP_RATE_RANGE, "K/min")
    if not slow < fast:
        raise PlanArgumentError(f"slow = {slow:g} K/min must be below fast = {fast:g} K/min")
    return fast, slow


LIMIT_CLEARANCE = TARGET_MARGIN
"""Former name of :data:`TARGET_MARGIN`."""


def highest_target(limit: float) -> float:
    """The highest temperature (K) a plan may aim for with the sample's ``limit``."""
    return float(limit) - TARGET_MARGIN


def target_temperature(name: str, value, limit: float) -> float:
    """A temperature target within base and ``limit - TARGET_MARGIN``, as a float."""
    return number_in_range(name, value, BASE_TEMPERATURE, highest_target(limit), "K")


def temperature_span(start, stop, limit: float) -> tuple[float, float]:
    """A heating span from ``start`` to ``stop`` within base and the highest target."""
    start = target_temperature("start", start, limit)
    stop = target_temperature("stop", stop, limit)
    if stop <= start:
        raise PlanArgumentError(f"stop = {stop:g} K must be above start = {start:g} K "
                                "(the ramps heat)")
    return start, stop


def sequence_of(name: str, values, example: str) -> tuple:
    """``values`` as a tuple; a single number or a string is refused, naming the value."""
    if values is None:
        return ()
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise PlanArgumentError(
            f"{name} = {values!r} is not a sequence; give a list of values, e.g. "
            f"{name}=[{example}]")
    return tuple(values)


def bias_currents(biases: Iterable, limit: float) -> tuple[float, ...]:
    """A non-empty sequence of dc biases (A), each within +-limit."""
    values = sequence_of("biases", biases, "0.0, 0.2" if not isinstance(biases, numbers.Real)
                         else f"{float(biases):g}")
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


def temperature_list(temperatures, limit: float) -> list[float]:
    """A non-empty list of targets (K), each within base and the highest target."""
    example = (f"{float(temperatures):g}" if isinstance(temperatures, numbers.Real)
               else "40.0, 55.0")
    values = sequence_of("temperatures", temperatures, example)
    if not values:
        raise PlanArgumentError(
            f"temperatures is empty; give at least one within {BASE_TEMPERATURE:g} to "
            f"{highest_target(limit):g} K")
    return [target_temperature(f"temperatures[{index}]", value, limit)
            for index, value in enumerate(values)]


RESERVED_METADATA = frozenset({"uid", "time"})
"""Start-document keys the RunEngine writes and ``md`` may not."""


def metadata(md) -> dict:
    """``md`` as a dict for a start document: a mapping with string keys, JSON-encodable.

    Checked before anything moves, so a bad ``md`` is refused up front instead of
    by the RunEngine once the plan has moved the station.
    """
    if md is None:
        return {}
    if not isinstance(md, Mapping):
        raise PlanArgumentError(f"md = {md!r} is not a dict; give a dict of metadata, e.g. "
                                "md={'operator': 'name'}")
    bad_keys = [key for key in md if not isinstance(key, str)]
    if bad_keys:
        raise PlanArgumentError(f"md keys {bad_keys!r} are not strings; metadata keys must be "
                                "strings")
    reserved = sorted(RESERVED_METADATA & set(md))
    if reserved:
        raise PlanArgumentError(f"md sets {', '.join(reserved)}, which the RunEngine sets "
                                "itself; leave these keys out")
    if "sample" in md and not isinstance(md["sample"], str | Mapping):
        raise PlanArgumentError(f"md['sample'] = {md['sample']!r} must be a string or a dict")
    if "sample_id" in md:
        from tcstation.ledger import LedgerError, check_sample_id

        try:
            check_sample_id(md["sample_id"])
        except LedgerError as error:
            raise PlanArgumentError(f"md['sample_id']: {error}") from None
    if "scan_id" in md and not (isinstance(md["scan_id"], int)
                                and not isinstance(md["scan_id"], bool)):
        raise PlanArgumentError(f"md['scan_id'] = {md['scan_id']!r} must be a whole number")
    try:
        json.dumps(md, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise PlanArgumentError(f"md = {md!r} cannot be stored in a start document ({err}); "
                                "give numbers, strings, lists and dicts") from None
    return dict(md)
