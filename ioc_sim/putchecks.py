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
    PvpropertyDoubleRO,
    PvpropertyEnum,
    PvpropertyInteger,
    PvpropertyIntegerRO,
    pvspec_type_map,
    pvspec_type_map_read_only,
)

from tcstation.instruments.signal import ENUM, FLOAT, INT, SETTING, STRING, Signal

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


def checked(signal: Signal, value, what: str):
    """``value`` as the contract's ``signal`` accepts it (its limits, its choices), else refuse."""
    if signal.type == ENUM:
        return enum_choice(value, signal.choices, what)
    if signal.type == STRING:
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    low, high = signal.limits if signal.limits is not None else (-math.inf, math.inf)
    if signal.type == INT:
        return whole_in_range(value, low, high, what)
    return finite_in_range(value, low, high, what, signal.units)


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


RECORDS = {
    (FLOAT, True): "ao", (FLOAT, False): "ai",
    (INT, True): "longout", (INT, False): "longin",
    (ENUM, True): "mbbo", (ENUM, False): "mbbi",
    (STRING, True): "stringout", (STRING, False): "stringin",
}
"""The EPICS record each kind of PV is served as (its fields: ``.DESC``, ``.EGU``, ...)."""


def _contract_kwargs(signal: Signal, writable: bool) -> dict:
    kwargs = {"doc": signal.description,
              "record": signal.record or RECORDS[signal.type, writable]}
    if signal.type == ENUM:
        kwargs.update(dtype=ChannelType.ENUM, enum_strings=signal.choices)
    elif signal.type == STRING:
        kwargs["dtype"] = ChannelType.STRING
    else:
        kwargs["units"] = signal.units
        if signal.type == FLOAT and signal.precision is not None:
            kwargs["precision"] = signal.precision
        if signal.limits is not None:
            low, high = signal.limits
            kwargs.update(lower_ctrl_limit=low, upper_ctrl_limit=high,
                          lower_disp_limit=low, upper_disp_limit=high)
    return kwargs


def _initial(signal: Signal, value):
    return int(value) if signal.type == INT else float(value) if signal.type == FLOAT else value


def served(signal: Signal, value, prefix: str = "") -> pvproperty:
    """The PV of a contract signal that is not a setting (a setting: :func:`served_setting`).

    Units, precision, limits, enum strings and description come from the contract;
    ``value`` is the simulator's initial value; ``prefix`` goes before the suffix.
    """
    if signal.role == SETTING:
        raise ValueError(f"{signal.suffix} is a setting: serve it with served_setting")
    kwargs = _contract_kwargs(signal, signal.writable)
    if signal.writable:
        return setting(prefix + signal.suffix, _initial(signal, value), **kwargs)
    return readback(prefix + signal.suffix, _initial(signal, value), **kwargs)


def served_action(signal: Signal, value, prefix: str = "") -> pvproperty:
    """A contract action whose putter takes what the contract allows, and does nothing else."""

    @guarded
    async def putter(group, instance, value):
        return checked(signal, value, instance.pvname)

    return served(signal, value, prefix).putter(putter)


def served_setting(signal: Signal, value) -> tuple[pvproperty, pvproperty]:
    """A contract setting's PV and its ``_RBV``, both starting at ``value``."""
    if signal.role != SETTING:
        raise ValueError(f"{signal.suffix} is not a setting")
    value = _initial(signal, value)
    return (setting(signal.suffix, value, **_contract_kwargs(signal, True)),
            readback(signal.readback_suffix, value, **_contract_kwargs(signal, False)))


class _ContractFieldsMixin:
    """Serve a numeric PV's limits as metadata and record fields; the putter enforces them.

    caproto's own check of the control limits would refuse a put outside them
    before the putter could name the allowed range, and fail a reading written
    outside them. caproto links ``.HOPR``/``.LOPR`` and ``.PREC`` to the PV; the
    units (``.EGU``) and the drive limits (``.DRVH``/``.DRVL``) are copied here.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fields = self.fields
        if "EGU" in fields:
            fields["EGU"]._data["value"] = self.units
        if "DRVH" in fields and self.lower_ctrl_limit != self.upper_ctrl_limit:
            fields["DRVH"]._data["value"] = self.upper_ctrl_limit
            fields["DRVL"]._data["value"] = self.lower_ctrl_limit

    async def verify_value(self, value):
        if self.putter is not None:
            return await self.putter(self, value)
        return value


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


class CheckedDouble(_RawPutMixin, _ContractFieldsMixin, PvpropertyDouble):
    """A float setting: a text put reaches the putter as text."""


class CheckedDoubleRO(_ContractFieldsMixin, PvpropertyDoubleRO):
    """A float readback with the contract's limits and units."""


class CheckedIntegerRO(_ContractFieldsMixin, PvpropertyIntegerRO):
    """An integer readback with the contract's limits and units."""


class CheckedInteger(_RawPutMixin, _ContractFieldsMixin, PvpropertyInteger):
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
CHECKED_TYPE_MAP_READ_ONLY = {
    **pvspec_type_map_read_only,
    float: CheckedDoubleRO,
    ChannelType.DOUBLE: CheckedDoubleRO,
    int: CheckedIntegerRO,
    ChannelType.LONG: CheckedIntegerRO,
}


class CheckedGroup(PVGroup):
    """A PVGroup whose settings hand unconvertible puts to their putters.

    A ``{key}`` of the group's macros in a PV's description is filled in, as in
    its name (``Input {letter}`` of a sensor input).
    """

    type_map = CHECKED_TYPE_MAP
    type_map_read_only = CHECKED_TYPE_MAP_READ_ONLY

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for instance in self.attr_pvdb.values():
            doc = instance.__doc__ or ""
            for key, value in self.macros.items():
                doc = doc.replace("{" + key + "}", str(value))
            instance.__doc__ = doc
