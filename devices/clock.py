"""The clocks the devices measure physical waits on: lock-in settling, temperature holds.

A device never sleeps for a physical time by hand; it asks its clock.

* :class:`WallClock`: physical seconds are wall seconds times ``1 / time_scale``
  (1 for real instruments; fake devices in unit tests run faster).
* :class:`SimulationClock`: physical seconds are the simulator's own
  ``SIM:Time_RBV``. The simulated IOC publishes it after every tick's
  readings, so once a client has seen ``SIM:Time_RBV >= T`` it holds readings
  computed at a simulated time of at least ``T``: a wait measured on it costs the
  physical time however slow the machine is, with no fresh reading to wait for.
  A wait also asks the simulator for that time (``SIM:WakeAt``), and the
  simulator runs to it at full speed: a physical wait costs next to no wall time.

:meth:`tcstation.devices.station.Station.connect` gives every timed device the same clock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

HURRY_STEP = 5.0
"""Simulated seconds asked for at a time by :meth:`SimulationClock.run_fast_while`."""


class WallClock:
    """Physical time read off the wall clock.

    Parameters
    ----------
    time_scale : float
        Wall seconds per physical second (1 for a real station).
    """

    simulated = False
    """Readings are not tied to this clock: a settled reading must still arrive after the wait."""

    def __init__(self, time_scale: float = 1.0):
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"time_scale {time_scale!r} is not a positive number of wall "
                             f"seconds per physical second")
        self.time_scale = float(time_scale)

    def now(self) -> float:
        """Physical seconds on an arbitrary origin."""
        return time.monotonic() / self.time_scale

    def wall_seconds(self, physical: float) -> float:
        """Wall seconds that ``physical`` seconds are expected to take."""
        return physical * self.time_scale

    def wait_until(self, when: float, timeout: float | None = None) -> bool:
        """Block until :meth:`now` reaches ``when``; False if ``timeout`` wall seconds run out."""
        remaining = (when - self.now()) * self.time_scale
        if timeout is not None and remaining > timeout:
            threading.Event().wait(timeout)
            return False
        if remaining > 0:
            threading.Event().wait(remaining)
        return True

    def wait_ticking(self, timeout: float) -> bool:
        """Always True at once: the wall clock needs no IOC."""
        return True

    def run_fast_while(self, pending: Callable[[], bool]) -> None:
        """Nothing to hurry: physical time is the wall's."""

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"WallClock(time_scale={self.time_scale:g})"


class SimulationClock:
    """Physical time as the simulator counts it: the ``SIM:Time_RBV`` monitor.

    Parameters
    ----------
    time_signal : ophyd.Signal
        The simulator's clock (simulated seconds), monitored.
    speedup : float
        Simulated seconds per wall second, for wall-time estimates (timeouts).
    wake_signal : ophyd.Signal, optional
        ``SIM:WakeAt``: each wait puts the time it waits for, and the simulator
        runs to it at full speed. Without it a wait runs at the speed-up.
    """

    simulated = True
    """Readings published before the clock: once it reads ``T``, readings of ``T`` are in."""

    def __init__(self, time_signal, speedup: float, wake_signal=None):
        if not (math.isfinite(speedup) and speedup > 0):
            raise ValueError(f"speedup {speedup!r} is not a positive number")
        self.time_signal = time_signal
        self.wake_signal = wake_signal
        self.time_scale = 1.0 / float(speedup)
        self._condition = threading.Condition()
        value = time_signal.get() if time_signal.connected else None
        self._now = float(value) if value is not None else -math.inf
        self._connected = bool(time_signal.connected)
        self._ticks_since_connect = int(self._connected and value is not None)
        self._tick_callbacks: list[Callable[[float], None]] = []
        self._subscriptions = (
            time_signal.subscribe(self._ticked, run=False),
            time_signal.subscribe(self._connection_changed, event_type=time_signal.SUB_META,
                                  run=False),
        )

    def _ticked(self, value=None, **kwargs) -> None:
        if value is None:
            return
        with self._condition:
            callbacks = list(self._tick_callbacks)
        # Before the waiters wake: a wait that ends at this tick sees its readings.
        for callback in callbacks:
            callback(float(value))
        with self._condition:
            self._now = float(value)
            self._ticks_since_connect += 1
            self._condition.notify_all()

    def add_tick_callback(self, callback: Callable[[float], None]) -> None:
        """Call ``callback(time)`` on each tick, once the tick's readings have arrived.

        A reading's monitor update arrives before the clock's of the same tick, so
        :meth:`now` at a reading's callback is the previous tick's time: one tick late,
        and a tick is tens of simulated seconds when the machine stalls. A device that
        needs the simulated time of a reading keeps it until this callback gives it.
        """
        with self._condition:
            self._tick_callbacks.append(callback)

    def _connection_changed(self, connected=None, **kwargs) -> None:
        if connected is None:
            return
        with self._condition:
            if connected and not self._connected:
                self._ticks_since_connect = 0
            self._connected = bool(connected)
            self._condition.notify_all()

    @property
    def connected(self) -> bool:
        with self._condition:
            return self._connected

    def now(self) -> float:
        """The latest simulated time received, s (-inf before the first)."""
        with self._condition:
            return self._now

    def wall_seconds(self, physical: float) -> float:
        """Wall seconds that ``physical`` simulated seconds are expected to take."""
        return physical * self.time_scale

    def wait_until(self, when: float, timeout: float | None = None) -> bool:
        """Block until the simulated time reaches ``when``.

        Returns
        -------
        bool
            True once reached; False after ``timeout`` wall seconds, or as soon as
            the clock's IOC disconnects (the caller decides what an outage means).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.now() < when:
            self.request(when)
        with self._condition:
            while self._now < when:
                if not self._connected:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def request(self, when: float) -> None:
        """Ask the simulator to run to ``when`` at full speed (no wait; a no-op offline)."""
        if self.wake_signal is None or not self.wake_signal.connected:
            return
        try:
            self.wake_signal.put(when)
        except Exception as err:  # noqa: BLE001 - a refused wake leaves the speed-up
            logger.debug("wake request for %g s not sent: %s", when, err)

    def run_fast_while(self, pending: Callable[[], bool]) -> None:
        """Keep the simulator at full speed, ``HURRY_STEP`` at a time, while ``pending()``.

        For waits on physics rather than on a known time (a temperature hold): a
        daemon thread waits ``HURRY_STEP`` simulated seconds at a time, asking for
        each, until ``pending()`` is false. During an outage it waits for the IOC.
        """
        if self.wake_signal is None:
            return

        def hurry() -> None:
            while pending():
                if not self.connected:
                    with self._condition:
                        self._condition.wait(0.5)
                    continue
                self.wait_until(self.now() + HURRY_STEP,
                                timeout=self.wall_seconds(HURRY_STEP) + 5.0)

        threading.Thread(target=hurry, name="simulation-hurry", daemon=True).start()

    def wait_ticking(self, timeout: float) -> bool:
        """Block until the clock is connected and has ticked since it (re)connected.

        After an IOC restart the clock may still hold the time from before the
        outage; a tick received after the reconnection is the restarted IOC's.

        Returns
        -------
        bool
            False after ``timeout`` wall seconds.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while not (self._connected and self._ticks_since_connect > 0):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def close(self) -> None:
        """Stop following the clock PV."""
        for subscription in self._subscriptions:
            self.time_signal.unsubscribe(subscription)

    def __repr__(self) -> str:
        return f"SimulationClock({self.time_signal.name}, speedup={1 / self.time_scale:g})"


class ClockedDevice:
    """Mixin: a device whose waits are in physical seconds, measured on :attr:`clock`.

    ``time_scale`` (wall seconds per physical second) is kept for estimates and
    for callers that only know a speed-up; setting it gives the device a
    :class:`WallClock` of that scale.

    Parameters
    ----------
    time_scale : float
        Wall seconds per physical second of the default :class:`WallClock`.
    clock : WallClock or SimulationClock, optional
        The clock to use instead.
    """

    def __init__(self, *args, time_scale: float = 1.0, clock=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.clock = clock if clock is not None else WallClock(time_scale)

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self.clock = WallClock(value)


class PhysicalInterval:
    """A movable for the RunEngine: ``set(seconds)`` is done once ``seconds`` physical seconds
    have passed on the device's clock, or at once when ``cut_short()`` becomes true.

    A plan's ``bps.sleep`` counts wall seconds; on the simulator's clock (which a wait on
    physics can hurry, and a busy machine can slow) that is no fixed physical time. This
    waits on the clock itself, so a plan's readings come at physical intervals.

    Parameters
    ----------
    device : ClockedDevice
        Its clock measures the interval.
    cut_short : callable, optional
        Checked about every wall second; true ends the interval early.
    """

    poll_seconds = 1.0

    def __init__(self, device, cut_short: Callable[[], bool] | None = None):
        self.device = device
        self.cut_short = cut_short or (lambda: False)
        self.name = f"{device.name}_interval"
        self.parent = None

    def set(self, seconds: float):
        from ophyd.status import Status

        status = Status(obj=self)
        clock = self.device.clock
        until = clock.now() + float(seconds)

        def wait() -> None:
            while not self.cut_short():
                waited_from = time.monotonic()
                if clock.wait_until(until, timeout=self.poll_seconds):
                    break
                if time.monotonic() - waited_from < self.poll_seconds / 2:
                    time.sleep(self.poll_seconds / 2)  # the clock's IOC is away
            status.set_finished()

        threading.Thread(target=wait, name=self.name, daemon=True).start()
        return status
