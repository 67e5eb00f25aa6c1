"""Waiting logic shared by the devices: holds, fresh monitor updates, one-shot statuses.

Every wait here is in wall-clock seconds; devices convert physical seconds with
their clock (:mod:`tcstation.devices.clock`) before they get here.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable

from ophyd.status import StatusBase
from ophyd.utils import InvalidState


def complete(status: StatusBase, exception: BaseException | None = None) -> bool:
    """Finish ``status`` (failed if ``exception`` is given) unless it is already done.

    Returns
    -------
    bool
        True if this call finished it.
    """
    try:
        if exception is None:
            status.set_finished()
        else:
            status.set_exception(exception)
    except InvalidState:
        return False
    return True


class InstrumentOutageError(ConnectionError):
    """The IOC went away during a wait: the wait was abandoned, not failed.

    A RunEngine aborts the run on any failed status issued before a suspension,
    and its rewind replays the cached messages with the same wait groups, so a
    replayed ``wait`` may also wait on the status issued before the outage. A
    device therefore neither fails such a status nor leaves it pending: it waits
    for the IOC (see :func:`wait_connected`) and redoes the action.
    """


class OutageTimeoutError(TimeoutError):
    """The IOC did not come back within a device's ``outage_timeout``."""


OUTAGE_TIMEOUT = 300.0
"""Wall seconds a device waits for its IOC to come back before it fails the interrupted action.

An IOC restart (a crash, a host reboot) takes seconds to a minute; beyond five
minutes the run cannot go on anyway, and a clear error is worth more than a wait.
"""


def wait_connected(signals: Iterable, timeout: float) -> bool:
    """Block until every one of ``signals`` is connected; False after ``timeout`` wall s."""
    signals = tuple(signals)
    condition = threading.Condition()

    def changed(*args, **kwargs):
        with condition:
            condition.notify_all()

    subscriptions = [(signal, signal.subscribe(changed, event_type=signal.SUB_META, run=False))
                     for signal in signals]
    deadline = time.monotonic() + timeout
    try:
        with condition:
            while not all(signal.connected for signal in signals):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # ophyd may update ``connected`` after it ran the callbacks: look again soon
                condition.wait(min(remaining, 0.25))
        return True
    finally:
        for signal, subscription in subscriptions:
            signal.unsubscribe(subscription)


class ToleranceHold:
    """Decide when a reading has stayed within a tolerance of a target for a hold time.

    Parameters
    ----------
    target : float
        The value to hold.
    tolerance : float
        Largest allowed ``|reading - target|``.
    hold : float
        How long (same clock as ``now`` in :meth:`update`) the reading must stay inside.
    """

    def __init__(self, target: float, tolerance: float, hold: float):
        self.target = target
        self.tolerance = tolerance
        self.hold = hold
        self.inside_since: float | None = None
        self.last_value: float | None = None

    def update(self, value: float, now: float) -> bool:
        """Take one reading at time ``now``; return True once the hold is complete."""
        self.last_value = value
        if value is None or not math.isfinite(value) or abs(value - self.target) > self.tolerance:
            self.inside_since = None
            return False
        if self.inside_since is None:
            self.inside_since = now
        return now - self.inside_since >= self.hold


class FreshUpdates:
    """Record when each of some signals last delivered a monitor update, and lost its IOC.

    Subscribes once and keeps the arrival time (``time.monotonic``) of the newest
    update of every signal, so a device can wait for readings that arrived after
    a given moment (the IOC polls its instrument; a value cached before a change
    says nothing about the change). A disconnection wakes every wait.

    Parameters
    ----------
    signals : iterable of ophyd.Signal
        The signals to watch.
    """

    def __init__(self, signals: Iterable):
        self.signals = tuple(signals)
        self._arrivals = {signal.name: -math.inf for signal in self.signals}
        self._lost = {signal.name: -math.inf for signal in self.signals}
        self._condition = threading.Condition()
        for signal in self.signals:
            signal.subscribe(self._updated, run=False)
            signal.subscribe(self._connection_changed, event_type=signal.SUB_META, run=False)

    def _updated(self, *args, obj=None, **kwargs):
        with self._condition:
            self._arrivals[obj.name] = time.monotonic()
            self._condition.notify_all()

    def _connection_changed(self, *args, obj=None, connected=None, **kwargs):
        if connected is None or connected:
            return
        with self._condition:
            self._lost[obj.name] = time.monotonic()
            self._condition.notify_all()

    def stale(self, since: float) -> list[str]:
        """Names of the signals with no update arriving at or after ``since``."""
        with self._condition:
            return [name for name, arrival in self._arrivals.items() if arrival < since]

    def lost_since(self, since: float) -> list[str]:
        """Names of the signals that disconnected at or after ``since``, or are disconnected."""
        with self._condition:
            lost = {name for name, moment in self._lost.items() if moment >= since}
        lost.update(signal.name for signal in self.signals if not signal.connected)
        return [signal.name for signal in self.signals if signal.name in lost]

    def check_connected(self, since: float) -> None:
        """Raise :class:`InstrumentOutageError` if a signal lost its IOC at or after ``since``."""
        lost = self.lost_since(since)
        if lost:
            raise InstrumentOutageError(f"{', '.join(lost)} lost the IOC during the wait")

    def wait_after(self, since: float, timeout: float, *, watch_from: float | None = None) -> None:
        """Block until every signal has delivered an update at or after ``since``.

        Parameters
        ----------
        since : float
            ``time.monotonic`` moment the updates must arrive after.
        timeout : float
            Wall seconds.
        watch_from : float, optional
            A disconnection at or after this moment abandons the wait; default now.

        Raises
        ------
        InstrumentOutageError
            As soon as a signal disconnects (or if one is disconnected at the timeout).
        TimeoutError
            After ``timeout`` wall seconds, naming the signals still waited for.
        """
        started = time.monotonic()
        watch_from = started if watch_from is None else watch_from
        deadline = started + timeout
        with self._condition:
            while True:
                missing = [name for name, arrival in self._arrivals.items() if arrival < since]
                if not missing:
                    return
                if any(moment >= watch_from for moment in self._lost.values()):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
        self.check_connected(watch_from)
        raise TimeoutError(
            f"no fresh reading of {', '.join(missing)} within {timeout:.3g} s "
            f"(is the IOC publishing?)")
