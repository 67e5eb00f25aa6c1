"""Waiting logic shared by the devices: holds, fresh monitor updates, one-shot statuses.

Every wait here is in wall-clock seconds; devices convert physical seconds with
their ``time_scale`` (wall seconds per physical second) before they get here.
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
    """Record when each of some signals last delivered a monitor update.

    Subscribes once and keeps the arrival time (``time.monotonic``) of the newest
    update of every signal, so a device can wait for readings that arrived after
    a given moment (the IOC polls its instrument; a value cached before a change
    says nothing about the change).

    Parameters
    ----------
    signals : iterable of ophyd.Signal
        The signals to watch.
    """

    def __init__(self, signals: Iterable):
        self.signals = tuple(signals)
        self._arrivals = {signal.name: -math.inf for signal in self.signals}
        self._condition = threading.Condition()
        for signal in self.signals:
            signal.subscribe(self._updated, run=False)

    def _updated(self, *args, obj=None, **kwargs):
        with self._condition:
            self._arrivals[obj.name] = time.monotonic()
            self._condition.notify_all()

    def stale(self, since: float) -> list[str]:
        """Names of the signals with no update arriving at or after ``since``."""
        with self._condition:
            return [name for name, arrival in self._arrivals.items() if arrival < since]

    def wait_after(self, since: float, timeout: float) -> None:
        """Block until every signal has delivered an update at or after ``since``.

        Raises
        ------
        TimeoutError
            After ``timeout`` wall seconds, naming the signals still waited for.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                missing = [name for name, arrival in self._arrivals.items() if arrival < since]
                if not missing:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no fresh reading of {', '.join(missing)} within {timeout:.3g} s "
                        f"(is the IOC publishing?)")
                self._condition.wait(remaining)
