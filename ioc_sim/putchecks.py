"""Validation of Channel Access puts: refuse bad values, flag them, keep serving.

A refused put raises in the putter, so the client's put fails (ECA_PUTFAIL)
and the value does not change; caproto then gives the PV a WRITE / MAJOR alarm,
which stays until the next accepted put, so an operator panel shows that
something was refused.

caproto converts a put's wire value to the PV's type before any putter sees
it: a text put to a number fails with Python's bare conversion error, 2.5 put
to an integer PV becomes 2, and an enum index outside the list fails without
naming the choices. The PV classes here (``CHECKED_TYPE_MAP``, a group's
``type_map``) hand such values to the putter as sent, so the putter's check
names the value and what is allowed.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence

from caproto import AlarmSeverity, AlarmStatus, ChannelType, native_type
from caproto.server import PVGroup, pvproperty
from caproto.server.server import (
    PvpropertyDouble,
    PvpropertyEnum,
    PvpropertyInteger,
    pvspec_type_map,
)

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


def whole_in_range(value, low: int, high: int, what: str) -> int:
    """Return ``value`` as an int if it is a whole number within [low, high], else refuse."""
    allowed = f"allowed whole numbers {low} to {high}"
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RefusedPutError(f"{what}: {value!r} is not a number; {allowed}") from None
    if not math.isfinite(number) or number != int(number):
        raise RefusedPutError(f"{what}: {value!r} is not a whole number; {allowed}")
    if not low <= number <= high:
        raise RefusedPutError(f"{what} = {int(number)} is outside the {allowed}")
    return int(number)


def index_in_range(value, choices: Sequence, what: str) -> int:
    """Return ``value`` as an index into ``choices``, else refuse (fractions included)."""
    return whole_in_range(value, 0, len(choices) - 1, what)


def enum_choice(value, choices: Sequence[str], what: str) -> str:
    """Return the enum string for a put given as the string or as its index."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str) and value in choices:
        return value
    allowed = ", ".join(repr(choice) for choice in choices)
    try:
        return choices[index_in_range(value, choices, what)]
    except RefusedPutError:
        raise RefusedPutError(
            f"{what}: {value!r} is not one of {allowed} (or their indices 0 to "
            f"{len(choices) - 1})"
        ) from None


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


class _RawPutMixin:
    """Hand a put the putter must judge (see the module docstring) to it unconverted."""

    async def write_from_dbr(self, data, data_type, metadata, *, flags=0):
        wire = native_type(data_type)
        if self.putter is None or wire not in _VALUE_TYPES or len(data) != 1:
            return await super().write_from_dbr(data, data_type, metadata, flags=flags)
        value = data[0]
        if wire == ChannelType.STRING:
            text = value.decode(self.string_encoding, errors="replace") if isinstance(
                value, bytes) else str(value)
            return await self.write(text.strip("\x00 "), flags=flags)
        if self._raw_numbers(wire):
            return await self.write(value.item() if hasattr(value, "item") else value,
                                    flags=flags)
        return await super().write_from_dbr(data, data_type, metadata, flags=flags)

    def _raw_numbers(self, wire) -> bool:
        return False


_VALUE_TYPES = (ChannelType.STRING, ChannelType.INT, ChannelType.FLOAT, ChannelType.ENUM,
                ChannelType.CHAR, ChannelType.LONG, ChannelType.DOUBLE)


class CheckedDouble(_RawPutMixin, PvpropertyDouble):
    """A float setting: a text put reaches the putter as text."""


class CheckedInteger(_RawPutMixin, PvpropertyInteger):
    """An integer setting: a fractional put reaches the putter unrounded."""

    def _raw_numbers(self, wire) -> bool:
        return wire in (ChannelType.FLOAT, ChannelType.DOUBLE)


class CheckedEnum(_RawPutMixin, PvpropertyEnum):
    """An enum setting: any index or text reaches the putter, which names the choices."""

    def _raw_numbers(self, wire) -> bool:
        return True

    async def verify_value(self, value):
        # caproto's own mapping would take index -1 as the last choice.
        if self.putter is not None:
            return await self.putter(self, value)
        return await super().verify_value(value)


CHECKED_TYPE_MAP = {
    **pvspec_type_map,
    float: CheckedDouble,
    ChannelType.DOUBLE: CheckedDouble,
    int: CheckedInteger,
    ChannelType.LONG: CheckedInteger,
    ChannelType.ENUM: CheckedEnum,
}


class CheckedGroup(PVGroup):
    """A PVGroup whose settings hand unconvertible puts to their putters."""

    type_map = CHECKED_TYPE_MAP
