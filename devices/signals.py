"""Signal classes shared by the station's devices.

Three small behaviours on top of ophyd's EPICS signals, written as mixins so
that ``devices.fakes`` can put the same behaviour on ophyd's fake signals:

* a setting served as ``NAME`` with its readback ``NAME_RBV``, checked against
  the instrument's allowed values *before* anything is written, whose ``set``
  finishes once the IOC has completed the put and the readback shows the value
  (no set thread; a newer set supersedes an older one);
* default engineering units for PVs that serve none, so that every descriptor
  carries units a plot can use;
* a bi-style flag (0 = no, 1 = yes) read as a Python bool and described as
  ``boolean``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence

from ophyd import EpicsSignal, EpicsSignalRO, Signal
from ophyd.status import Status

from tcstation.devices.waiting import complete

logger = logging.getLogger(__name__)

SETTING_WRITE_TIMEOUT = 10.0
"""Wall seconds a setting's readback may take to follow a put before the set fails."""
READBACK_MATCH = 1e-9
"""Relative difference (of max(|value|, 1)) below which a numeric readback shows the value."""


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
    ``parent_check`` names a method of the parent device that takes the number
    and raises if the device refuses it (a limit that depends on the device's state).
    """

    def __init__(self, *args, allowed: tuple[float, float] | None = None,
                 choices: Sequence[str] | None = None, whole: bool = False,
                 parent_check: str | None = None, **kwargs):
        self.allowed = allowed
        self.choices = tuple(choices) if choices is not None else None
        self.whole = whole
        self.parent_check = parent_check
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
            number = int(number)
        if self.parent_check is not None and self.parent is not None:
            getattr(self.parent, self.parent_check)(number)
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


class SettingTimeoutError(TimeoutError):
    """A setting's put did not complete, or its readback did not show the value, in time."""


class PutCompletionSetMixin:
    """``set`` by put completion and readback: no thread, and a newer set supersedes.

    ``set(value)`` puts with completion (``use_complete``) and returns a status
    that finishes once the IOC has completed the put *and* the readback shows
    ``value`` (in either order: an EPICS database posts the readback first, but
    the two arrive on different client threads). A second ``set`` while one is
    pending supersedes it: the older status finishes (it does not fail) and only
    the newer value is waited for. After ``timeout`` wall seconds the status
    fails with :class:`SettingTimeoutError` naming the setting, the value and the
    readback, unless the IOC went away meanwhile: then the status stays pending
    (a RunEngine aborts a run on a failed status issued before a suspension)
    and finishes if the readback later shows the value.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_lock = threading.Lock()
        self._pending_set: Status | None = None

    def readback_shows(self, value) -> bool:
        """True if the readback shows ``value`` (the string, or the number within rounding)."""
        try:
            readback = self.get()
        except Exception:  # noqa: BLE001 - disconnected: it does not show anything
            return False
        if readback is None:
            return False
        if isinstance(value, str) or isinstance(readback, str):
            return str(readback) == str(value)
        try:
            readback, value = float(readback), float(value)
        except (TypeError, ValueError):
            return False
        return abs(readback - value) <= READBACK_MATCH * max(abs(value), 1.0)

    def set(self, value, *, timeout: float | None = None, settle_time: float | None = None):
        """Put ``value`` with completion; see the class docstring.

        Parameters
        ----------
        value
            The value to write (already checked by the setting's own checks).
        timeout : float, optional
            Wall seconds; default the signal's ``write_timeout``.
        settle_time : float, optional
            Wall seconds added after completion.

        Returns
        -------
        ophyd.status.Status
        """
        if timeout is None:
            timeout = getattr(self, "write_timeout", None) or SETTING_WRITE_TIMEOUT
        status = Status(self, settle_time=settle_time)
        state = {"put_done": False, "outage": False}
        lock = threading.Lock()

        def evaluate(*args, **kwargs):
            with lock:
                ready = state["put_done"] or state["outage"]
            if ready and not status.done and self.readback_shows(value):
                complete(status)

        def put_completed(*args, **kwargs):
            with lock:
                state["put_done"] = True
            evaluate()

        def connection_changed(*args, connected=None, **kwargs):
            if connected is False:
                with lock:
                    state["outage"] = True

        def time_out():
            if status.done:
                return
            with lock:
                outage = state["outage"] or not self.connected
                state["outage"] = outage
                put_done = state["put_done"]
            if outage:
                logger.warning("%s: the IOC went away during the set to %r; the set is left "
                               "pending until the readback shows it", self.name, value)
                return
            what = ("the readback did not show it" if put_done
                    else "the IOC did not complete the put")
            complete(status, SettingTimeoutError(
                f"{self.name}: set to {value!r} not done within {timeout:g} s: {what} "
                f"(readback {self._readback_text()})"))

        timer = threading.Timer(timeout, time_out)
        timer.daemon = True
        value_subscription = self.subscribe(evaluate, run=False)
        meta_subscription = self.subscribe(connection_changed, event_type=self.SUB_META,
                                           run=False)

        def clean_up(finished):
            timer.cancel()
            self.unsubscribe(value_subscription)
            self.unsubscribe(meta_subscription)
            with self._set_lock:
                if self._pending_set is finished:
                    self._pending_set = None

        status.add_callback(clean_up)
        try:
            self.put(value, use_complete=True, callback=put_completed)
        except Exception as err:
            complete(status, err)
            raise
        with self._set_lock:
            previous, self._pending_set = self._pending_set, status
        if previous is not None:
            complete(previous)  # superseded: the newer set is the one to wait for
        timer.start()
        return status

    def _readback_text(self) -> str:
        try:
            return repr(self.get())
        except Exception as err:  # noqa: BLE001 - disconnected, timed out: a message must not raise
            return f"unknown ({type(err).__name__}: {err})"


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


class EpicsSetting(RbvPairMixin, CheckedSettingMixin, PutCompletionSetMixin, DefaultUnitsMixin,
                   EpicsSignal):
    """A checked setting ``NAME`` with readback ``NAME_RBV``, monitored, set by put completion.

    ``set`` checks the value, then finishes once the IOC completed the put and the
    readback shows it (see :class:`PutCompletionSetMixin`).

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
