"""Signal classes shared by the station's devices.

Three small behaviours on top of ophyd's EPICS signals, written as mixins so
that ``devices.fakes`` can put the same behaviour on ophyd's fake signals:

* a setting served as ``NAME`` with its readback ``NAME_RBV``, checked against
  the instrument's allowed values *before* anything is written;
* default engineering units for PVs that serve none, so that every descriptor
  carries units a plot can use;
* a bi-style flag (0 = no, 1 = yes) read as a Python bool and described as
  ``boolean``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ophyd import EpicsSignal, EpicsSignalRO, Signal

SETTING_WRITE_TIMEOUT = 10.0
"""Wall seconds a setting's readback may take to follow a put before the set fails."""


class SettingRangeError(ValueError):
    """A value outside what a setting accepts; nothing was written."""


class DefaultUnitsMixin:
    """Describe with ``units`` when the PV itself serves none."""

    def __init__(self, *args, units: str = "", **kwargs):
        self.default_units = units
        super().__init__(*args, **kwargs)

    def describe(self):
        description = super().describe()
        entry = description[self.name]
        if not entry.get("units") and self.default_units:
            entry["units"] = self.default_units
        return description


class CheckedSettingMixin:
    """Refuse a value outside ``allowed`` (a closed range) or ``choices`` before writing.

    ``choices`` are enum strings; an integer is taken as an index into them. A
    string setting without ``choices`` takes the enum strings the IOC serves.
    """

    def __init__(self, *args, allowed: tuple[float, float] | None = None,
                 choices: Sequence[str] | None = None, whole: bool = False, **kwargs):
        self.allowed = allowed
        self.choices = tuple(choices) if choices is not None else None
        self.whole = whole
        super().__init__(*args, **kwargs)

    def normalise(self, value):
        """The value to write: enum choices as their string, whole numbers as int."""
        choices = self.choices
        if choices is None and getattr(self, "as_string", False):
            choices = tuple(self.enum_strs or ()) or None  # the IOC's own enum strings
        if choices is not None:
            if isinstance(value, str) and value in choices:
                return value
            if isinstance(value, int | float) and float(value).is_integer() and (
                    0 <= int(value) < len(choices)):
                return choices[int(value)]
            raise SettingRangeError(
                f"{self.name}: {value!r} is not one of {', '.join(choices)}")
        if self.allowed is None:
            return value
        low, high = self.allowed
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingRangeError(
                f"{self.name}: {value!r} is not a number; allowed {low:g} to {high:g}"
                f"{self._unit_text}") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise SettingRangeError(
                f"{self.name} = {number:g}{self._unit_text} is outside the allowed range "
                f"{low:g} to {high:g}{self._unit_text}")
        if self.whole:
            if not number.is_integer():
                raise SettingRangeError(f"{self.name}: {value!r} is not a whole number")
            return int(number)
        return number

    @property
    def _unit_text(self) -> str:
        units = getattr(self, "default_units", "")
        return f" {units}" if units else ""

    def check_value(self, value):
        self.normalise(value)
        super().check_value(value)

    def set(self, value, **kwargs):
        """Check and normalise ``value``, then set it (raises before any put)."""
        return super().set(self.normalise(value), **kwargs)


class RbvPairMixin:
    """Read ``prefix + '_RBV'``, write ``prefix``: the IOC's setting/readback pairs."""

    def __init__(self, prefix: str, **kwargs):
        kwargs.setdefault("write_timeout", SETTING_WRITE_TIMEOUT)
        kwargs.setdefault("auto_monitor", True)
        super().__init__(prefix + "_RBV", write_pv=prefix, **kwargs)


class FlagMixin:
    """A bi-style flag: index 0 reads False, anything else True."""

    def get(self, **kwargs):
        value = super().get(**kwargs)
        if value is None:
            return None
        if isinstance(value, str):
            enum_strs = self.enum_strs or ()
            return value in enum_strs[1:] if enum_strs else value not in ("", "0", "No")
        return bool(value)

    def describe(self):
        description = super().describe()
        entry = description[self.name]
        entry.update(dtype="boolean", dtype_numpy="|b1")
        entry.setdefault("units", "")
        return description


class EpicsSetting(RbvPairMixin, CheckedSettingMixin, DefaultUnitsMixin, EpicsSignal):
    """A checked setting ``NAME`` with readback ``NAME_RBV``, monitored.

    Parameters
    ----------
    prefix : str
        The setting PV; the readback is ``prefix + '_RBV'``.
    allowed : tuple of float, optional
        Closed range the instrument accepts.
    choices : sequence of str, optional
        Enum strings the instrument accepts (write with ``string=True``).
    whole : bool
        The setting is an integer index.
    units : str
        Units when the PV serves none.
    """


class EpicsMeasurement(DefaultUnitsMixin, EpicsSignalRO):
    """A monitored read-only PV, with default units.

    Parameters
    ----------
    read_pv : str
        The PV.
    units : str
        Units when the PV serves none.
    """

    def __init__(self, read_pv: str, **kwargs):
        kwargs.setdefault("auto_monitor", True)
        super().__init__(read_pv, **kwargs)


class EpicsFlag(FlagMixin, EpicsSignalRO):
    """A monitored read-only bi-style flag, read as bool."""

    def __init__(self, read_pv: str, **kwargs):
        kwargs.setdefault("auto_monitor", True)
        super().__init__(read_pv, **kwargs)


class Quantity(Signal):
    """A soft signal with units (and optional precision) in its description.

    Used for settings a device keeps itself (limits, calibration) and for values
    it derives from PVs (4 pi chi, dU/dI).

    Parameters
    ----------
    units : str
        Engineering units.
    precision : int, optional
        Digits a display should show.
    """

    def __init__(self, *, units: str = "", precision: int | None = None, **kwargs):
        self.units = units
        self.precision = precision
        super().__init__(**kwargs)

    def describe(self):
        description = super().describe()
        entry = description[self.name]
        entry["units"] = self.units
        if self.precision is not None:
            entry["precision"] = self.precision
        return description


class BooleanQuantity(FlagMixin, Signal):
    """A soft boolean signal, described as ``boolean``."""

    enum_strs = None


class ActionSignal(Signal):
    """A signal whose ``set`` starts an action of its parent device and returns its status.

    Lets a plan run a device action with ``bps.mv(device.action_signal, 1)``; the
    value is ignored.

    Parameters
    ----------
    action : str
        Name of the parent's method that starts the action and returns a status.
    """

    def __init__(self, *, action: str, **kwargs):
        self.action = action
        kwargs.setdefault("value", 0)
        super().__init__(**kwargs)

    def set(self, value, **kwargs):
        return getattr(self.parent, self.action)()
