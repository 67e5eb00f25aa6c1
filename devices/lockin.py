"""SR830 dual-phase lock-in amplifier, triggered by waiting for its filter to settle."""

from __future__ import annotations

import logging
import threading
import time

from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus
from ophyd.signal import ConnectionTimeoutError

from tcstation.devices import sr830_tables
from tcstation.devices.clock import ClockedDevice
from tcstation.devices.signals import (
    ActionSignal,
    BooleanQuantity,
    EpicsFlag,
    EpicsMeasurement,
    EpicsSetting,
    Quantity,
)
from tcstation.devices.waiting import (
    OUTAGE_TIMEOUT,
    FreshUpdates,
    InstrumentOutageError,
    OutageTimeoutError,
    complete,
    wait_connected,
)

logger = logging.getLogger(__name__)

AUTORANGE_LOWER = 0.2
"""Autorange accepts a magnitude down to this fraction of full scale ..."""
AUTORANGE_UPPER = 0.9
"""... and up to this fraction."""
AUTORANGE_AIM = 0.7
"""When it changes the sensitivity, autorange aims the magnitude at this fraction."""
OVERLOAD_DECADE_STEPS = 3
"""Sensitivity indices per decade (1-2-5): an overloaded reading says only 'too big'."""


class LockInOverloadError(RuntimeError):
    """A reading taken while the lock-in was overloaded."""


class AutorangeError(RuntimeError):
    """Autorange could not bring the signal into range."""


def next_sensitivity_index(index: int, magnitude: float, overloaded: bool,
                           lower: float = AUTORANGE_LOWER, upper: float = AUTORANGE_UPPER,
                           aim: float = AUTORANGE_AIM) -> int | None:
    """One autorange step: the next ``SENS`` index, or None if the signal sits in range.

    In range means no overload and ``lower <= magnitude / full_scale <= upper`` (or
    the most sensitive index, where a smaller signal cannot do better). Out of range,
    the new index puts the magnitude at or below ``aim`` of full scale on the most
    sensitive index that can hold it; an overloaded reading (saturated, so its
    magnitude is unknown) moves up a decade.

    Parameters
    ----------
    index : int
        Present ``SENS`` index.
    magnitude : float
        R, V rms.
    overloaded : bool
        The overload flag of the same reading.
    lower, upper, aim : float
        Fractions of full scale.

    Returns
    -------
    int or None

    Raises
    ------
    AutorangeError
        When the signal overloads the least sensitive setting (1 V).
    """
    last = len(sr830_tables.SENSITIVITIES) - 1
    full_scale = sr830_tables.SENSITIVITIES[index]
    if overloaded or magnitude > upper * full_scale:
        if index == last:
            raise AutorangeError(f"the signal ({magnitude:.3g} V) overloads the least "
                                 f"sensitive setting, {sr830_tables.format_sensitivity(last)}")
        if overloaded:
            return min(index + OVERLOAD_DECADE_STEPS, last)
        return max(index + 1, sr830_tables.sensitivity_index_for(magnitude, aim))
    if magnitude < lower * full_scale and index > 0:
        better = sr830_tables.sensitivity_index_for(magnitude, aim)
        return better if better < index else None
    return None


class LockIn(ClockedDevice, Device):
    """An SR830 lock-in amplifier.

    ``trigger()`` waits for the output filter to settle for the present time
    constant and slope (5, 7, 9 or 10 time constants for 6 to 24 dB/oct), so
    that a plan never sleeps by hand. On the simulation clock the wait ends when
    the simulator's time has advanced by the settle time (its readings of that
    time are in by then); on the wall clock it ends with a reading that the IOC
    delivered after the settle time. An overloaded reading is flagged in
    ``overload`` and logged; with ``raise_on_overload`` set, the trigger fails
    instead. A trigger whose IOC goes away during the wait stays pending while
    the IOC is away, then settles again from the reconnection and finishes on a
    reading taken after it (a RunEngine's rewind may wait on it again); it fails
    with :class:`~tcstation.devices.waiting.OutageTimeoutError` only if the IOC is not back
    within ``outage_timeout`` wall seconds of the outage.

    Settle times are physical seconds, measured on the device's clock
    (:mod:`tcstation.devices.clock`).

    Parameters
    ----------
    prefix : str
        PV prefix of the lock-in, e.g. ``"TCS:LIA1:"``.
    name : str
        Device name.
    time_scale : float
        Wall seconds per physical second of the default wall clock.
    clock : WallClock or SimulationClock, optional
        The clock to measure the settle time on.
    """

    x = Cpt(EpicsMeasurement, "X", units="V", kind="hinted", doc="In-phase output, OUTP? 1")
    y = Cpt(EpicsMeasurement, "Y", units="V", kind="hinted", doc="Quadrature output, OUTP? 2")
    r = Cpt(EpicsMeasurement, "R", units="V", kind="normal", doc="Magnitude, OUTP? 3")
    theta = Cpt(EpicsMeasurement, "THETA", units="deg", kind="normal", doc="Phase, OUTP? 4")
    overload = Cpt(EpicsFlag, "OVLD", kind="normal", doc="Input or output overload, LIAS?")

    frequency = Cpt(EpicsSetting, "FREQ", allowed=sr830_tables.FREQUENCY_RANGE, units="Hz",
                    kind="config", doc="Reference frequency")
    sine_amplitude = Cpt(EpicsSetting, "SLVL", allowed=sr830_tables.AMPLITUDE_RANGE, units="V",
                         kind="config", doc="Sine-out amplitude, V rms")
    reference_phase = Cpt(EpicsSetting, "PHAS", allowed=sr830_tables.PHASE_RANGE, units="deg",
                          kind="config", doc="Reference phase")
    harmonic = Cpt(EpicsSetting, "HARM", allowed=sr830_tables.HARMONIC_RANGE, whole=True,
                   kind="config", doc="Detection harmonic")
    sensitivity = Cpt(EpicsSetting, "SENS",
                      allowed=(0, len(sr830_tables.SENSITIVITIES) - 1), whole=True,
                      kind="config", doc="Sensitivity index, 0 = 2 nV ... 26 = 1 V")
    time_constant = Cpt(EpicsSetting, "OFLT",
                        allowed=(0, len(sr830_tables.TIME_CONSTANTS) - 1), whole=True,
                        kind="config", doc="Time-constant index, 0 = 10 us ... 19 = 30 ks")
    slope = Cpt(EpicsSetting, "OFSL", allowed=(0, len(sr830_tables.SLOPES_DB) - 1), whole=True,
                kind="config", doc="Filter slope index, 0 = 6 ... 3 = 24 dB/oct")

    full_scale = Cpt(Quantity, value=float("nan"), units="V", kind="config",
                     doc="Full scale of the present sensitivity")
    time_constant_seconds = Cpt(Quantity, value=float("nan"), units="s", kind="config",
                                doc="The present time constant")
    slope_db = Cpt(Quantity, value=0, units="dB/oct", kind="config",
                   doc="The present filter slope")
    raise_on_overload = Cpt(BooleanQuantity, value=False, kind="config",
                            doc="Fail the trigger on an overloaded reading instead of flagging it")
    autorange = Cpt(ActionSignal, action="start_autorange", kind="omitted",
                    doc="Set (any value) to step the sensitivity until the signal sits in range")

    fresh_reading_timeout = 60.0
    """Wall seconds beyond the expected settle time before a trigger fails (IOC connected).

    It only fires on an IOC that stays connected but stops publishing (a lost
    connection is an outage, handled apart), so it costs a healthy run nothing:
    a loaded machine delays a reading by a few seconds (5 s fired under load), a
    hung IOC by forever.
    """
    outage_timeout = OUTAGE_TIMEOUT
    """Wall seconds from an outage for the IOC to come back before an interrupted action fails."""
    autorange_max_steps = 12

    def __init__(self, prefix: str = "", *, name: str, **kwargs):
        super().__init__(prefix, name=name, **kwargs)
        self._outputs = FreshUpdates((self.x, self.y, self.r, self.theta, self.overload))
        self.sensitivity.subscribe(self._sensitivity_changed, run=False)
        self.time_constant.subscribe(self._time_constant_changed, run=False)
        self.slope.subscribe(self._slope_changed, run=False)

    def _sensitivity_changed(self, value=None, **kwargs):
        if value is not None and 0 <= int(value) < len(sr830_tables.SENSITIVITIES):
            self.full_scale.put(sr830_tables.SENSITIVITIES[int(value)])

    def _time_constant_changed(self, value=None, **kwargs):
        if value is not None and 0 <= int(value) < len(sr830_tables.TIME_CONSTANTS):
            self.time_constant_seconds.put(sr830_tables.TIME_CONSTANTS[int(value)])

    def _slope_changed(self, value=None, **kwargs):
        if value is not None and 0 <= int(value) < len(sr830_tables.SLOPES_DB):
            self.slope_db.put(sr830_tables.SLOPES_DB[int(value)])

    def settle_time(self) -> float:
        """Physical seconds for the output to settle after a step, at the present settings."""
        return sr830_tables.settle_time(int(self.time_constant.get()), int(self.slope.get()))

    def settle_start(self) -> tuple[float, float]:
        """The moment a settle starts: (``time.monotonic()``, the clock's time)."""
        return time.monotonic(), self.clock.now()

    def wait_settled(self, start: tuple[float, float] | None = None) -> None:
        """Block for the settle time from ``start``, until the outputs hold a reading after it.

        Parameters
        ----------
        start : tuple of float, optional
            :meth:`settle_start` at the moment the input changed; default now.

        Raises
        ------
        InstrumentOutageError
            As soon as the IOC goes away during the wait (the caller leaves its
            status pending).
        TimeoutError
            If the readings (or the simulation clock) do not arrive in time.
        """
        started, since = start if start is not None else self.settle_start()
        try:
            settle = self.settle_time()
        except ConnectionTimeoutError as err:
            raise InstrumentOutageError(
                f"{self.name}: the time constant and slope are unreadable ({err})") from err
        clock = self.clock
        timeout = clock.wall_seconds(settle) + self.fresh_reading_timeout
        if clock.simulated:
            reached = clock.wait_until(since + settle, timeout)
            self._outputs.check_connected(started)
            if not clock.connected:
                raise InstrumentOutageError(f"{self.name}: the simulation clock lost its IOC")
            if not reached:
                raise TimeoutError(
                    f"{self.name}: the simulation clock did not advance {settle:g} s from "
                    f"{since:g} s within {timeout:.3g} s (it reads {clock.now():g} s)")
            return
        settled_at = started + clock.wall_seconds(settle)
        self._outputs.wait_after(settled_at, timeout, watch_from=started)

    def overload_message(self) -> str:
        index = int(self.sensitivity.get())
        return (f"{self.name}: overload at sensitivity {sr830_tables.format_sensitivity(index)} "
                f"(SENS {index}): X = {self.x.get():.4g} V, Y = {self.y.get():.4g} V")

    def wait_reconnected(self, deadline: float) -> None:
        """Block until the outputs and the clock are back after an outage.

        Parameters
        ----------
        deadline : float
            ``time.monotonic`` moment to give up at.

        Raises
        ------
        OutageTimeoutError
            If they are not back by ``deadline``.
        """
        signals = (*self._outputs.signals, self.time_constant, self.slope)
        if not (wait_connected(signals, deadline - time.monotonic())
                and self.clock.wait_ticking(max(deadline - time.monotonic(), 0.0))):
            missing = [signal.name for signal in signals if not signal.connected]
            if getattr(self.clock, "connected", True) is False:
                missing.append("the simulation clock")
            raise OutageTimeoutError(
                f"{self.name}: the IOC did not come back within {self.outage_timeout:g} s of "
                f"the outage (still disconnected: {', '.join(missing) or 'none; no clock tick'})")

    def settle_through_outages(self, action: str, start: tuple[float, float] | None = None
                               ) -> None:
        """:meth:`wait_settled`, settling again from the reconnection after each outage.

        Raises
        ------
        OutageTimeoutError
            If the IOC is not back within ``outage_timeout`` of the first outage.
        TimeoutError
            As :meth:`wait_settled`.
        """
        deadline = None
        while True:
            try:
                self.wait_settled(start)
                return
            except InstrumentOutageError as err:
                if deadline is None:
                    deadline = time.monotonic() + self.outage_timeout
                logger.warning("%s: %s; the %s waits up to %g s for the IOC, then settles "
                               "again", self.name, err, action, self.outage_timeout)
                self.wait_reconnected(deadline)
                start = self.settle_start()
                logger.warning("%s: the IOC is back; the %s settles again", self.name, action)

    def trigger(self) -> DeviceStatus:
        """Wait for a settled reading; see the class docstring."""
        status = DeviceStatus(self)
        start = self.settle_start()

        def acquire():
            try:
                self.settle_through_outages("trigger", start)
            except Exception as err:
                complete(status, err)
                return
            if self.overload.get():
                message = self.overload_message()
                if self.raise_on_overload.get():
                    complete(status, LockInOverloadError(message))
                    return
                logger.warning("%s; the reading is flagged", message)
            complete(status)

        threading.Thread(target=acquire, name=f"{self.name}-trigger", daemon=True).start()
        return status

    def start_autorange(self) -> DeviceStatus:
        """Step the sensitivity until a settled reading sits in range.

        Returns
        -------
        DeviceStatus
            Finishes when the signal is in range (see :func:`next_sensitivity_index`);
            fails with :class:`AutorangeError` if it cannot be.
        """
        status = DeviceStatus(self)

        def run():
            try:
                for _ in range(self.autorange_max_steps):
                    self.settle_through_outages("autorange")
                    index = int(self.sensitivity.get())
                    new_index = next_sensitivity_index(index, float(self.r.get()),
                                                       bool(self.overload.get()))
                    if new_index is None:
                        complete(status)
                        return
                    self.sensitivity.set(new_index).wait()
                raise AutorangeError(f"{self.name}: the signal was not in range after "
                                     f"{self.autorange_max_steps} sensitivity steps")
            except OutageTimeoutError as err:
                complete(status, err)
            except Exception as err:
                complete(status, err if isinstance(err, AutorangeError) else AutorangeError(
                    f"{self.name}: autorange failed: {err}"))

        threading.Thread(target=run, name=f"{self.name}-autorange", daemon=True).start()
        return status
