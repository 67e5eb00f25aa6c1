"""Validation of Channel Access puts: refuse bad values, flag them, keep serving.

A refused put raises in the putter, so the client's put fails (ECA_PUTFAIL)
and the value does not change; caproto then gives the PV a WRITE / MAJOR alarm,
which stays until the next accepted put, so an operator panel shows that
something was refused.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence

from caproto import AlarmSeverity, AlarmStatus
from caproto.server import pvproperty

logger = logging.getLogger(__name__)


class RefusedPutError(ValueError):
    """A put whose value is outside what the instrument accepts."""


def finite_in_range(value, low: float, high: float, what: str, units: str = "") -> float:
    """Return ``value`` as a float if finite and within [low, high], else refuse."""
    unit_text = f" {units}" if units else ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RefusedPutError(
            f"{what}: {value!r} is not a number; allowed {low:g} to {high:g}{unit_text}"
        ) from None
    if not math.isfinite(number):
        raise RefusedPutError(
            f"{what}: {number} is not finite; allowed {low:g} to {high:g}{unit_text}"
        )
    if not low <= number <= high:
        raise RefusedPutError(
            f"{what} = {number:g}{unit_text} is outside the allowed range "
            f"{low:g} to {high:g}{unit_text}"
        )
    return number


def index_in_range(value, choices: Sequence, what: str) -> int:
    """Return ``value`` as an index into ``choices``, else refuse."""
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise RefusedPutError(
            f"{what}: {value!r} is not an index 0 to {len(choices) - 1}"
        ) from None
    if index != value and not isinstance(value, str | bytes):
        raise RefusedPutError(f"{what}: {value!r} is not a whole number")
    if not 0 <= index < len(choices):
        raise RefusedPutError(
            f"{what} = {index} is outside the allowed indices 0 to {len(choices) - 1}"
        )
    return index


def enum_choice(value, choices: Sequence[str], what: str) -> str:
    """Return the enum string for a put given as the string or as its index."""
    if isinstance(value, str) and value in choices:
        return value
    return choices[index_in_range(value, choices, what)]


def guarded(putter):
    """Wrap a putter: log a refused put; clear the alarm once a put is accepted.

    caproto itself marks a PV whose putter raised with a WRITE / MAJOR alarm.
    """

    @functools.wraps(putter)
    async def wrapped(group, instance, value):
        try:
            result = await putter(group, instance, value)
        except RefusedPutError as err:
            logger.warning("refused put to %s: %s", instance.pvname, err)
            raise
        if instance.alarm.severity != AlarmSeverity.NO_ALARM:
            await instance.alarm.write(
                status=AlarmStatus.NO_ALARM, severity=AlarmSeverity.NO_ALARM
            )
        return result

    return wrapped


def setting(name: str, value, doc: str, **kwargs) -> pvproperty:
    """A writable PV with its own alarm, so a refused put flags only itself."""
    return pvproperty(name=name, value=value, doc=doc, alarm_group=name, **kwargs)


def readback(name: str, value, doc: str, **kwargs) -> pvproperty:
    """A read-only PV."""
    return pvproperty(name=name, value=value, doc=doc, read_only=True, **kwargs)
