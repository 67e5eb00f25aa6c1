"""The sample temperature a lock-in reading refers to, estimated from the stage sensor.

The sample follows the stage sensor with a first-order lag (physics note,
section 6): dT_s/dt = (T_stage - T_s) / thermal_lag.  An observer integrates
that equation over the stage sensor's updates, so the estimate is right at the
start and the end of a ramp as well as in its middle (where it equals
``T_stage - rate * thermal_lag``).  A lock-in reading lags the sample by its
filter delay, ``poles * tau``, so the temperature the reading belongs to is

    T = T_s - rate * filter_delay

with the rate fitted to the stage sensor's recent history.  The raw stage and
sample-sensor readings stay in the event beside this estimate.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device

from tcstation.devices import sr830_tables
from tcstation.devices.lockin import LockIn
from tcstation.devices.signals import Quantity
from tcstation.devices.temperature import TemperatureController

RATE_WINDOW = 60.0
"""Physical seconds of stage history that the ramp rate is fitted over."""


def filter_delay(time_constant_index: int, slope_index: int) -> float:
    """Group delay (s) of the SR830 output filter: poles x tau."""
    return sr830_tables.TIME_CONSTANTS[time_constant_index] * (slope_index + 1)


def ramp_rate(times: np.ndarray, temperatures: np.ndarray) -> float:
    """Least-squares slope (K/s) of temperature against time; 0 with fewer than 3 points."""
    if len(times) < 3 or np.ptp(times) <= 0:
        return 0.0
    return float(np.polyfit(times - times[-1], temperatures, 1)[0])


class LagCorrectedTemperature(Device):
    """Estimate of the sample temperature at the moment a lock-in reading refers to.

    Parameters
    ----------
    controller : TemperatureController
        Its stage sensor is followed, on its clock's physical time.
    lockin : LockIn
        Whose filter delay is taken out.
    name : str
        Device name.
    """

    temperature = Cpt(Quantity, value=float("nan"), units="K", precision=4, kind="hinted",
                      doc="Sample temperature with thermal lag and filter delay taken out")
    rate = Cpt(Quantity, value=0.0, units="K/min", precision=4, kind="normal",
               doc="Ramp rate of the stage sensor, fitted over the last minute")
    thermal_lag = Cpt(Quantity, value=20.0, units="s", kind="config",
                      doc="Time constant of the sample behind the stage sensor")

    def __init__(self, *, controller: TemperatureController, lockin: LockIn, name: str,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.controller = controller
        self.lockin = lockin
        self._history: deque[tuple[float, float]] = deque(maxlen=4000)
        self._lock = threading.Lock()
        self._sample: float | None = None
        self._updated: float | None = None
        self._pending: float | None = None
        self._ticking_clock = None
        controller.stage_temperature.subscribe(self._record, run=True)

    def _record(self, value=None, **kwargs) -> None:
        if value is None:
            return
        clock = self.controller.clock
        if not clock.simulated:
            self._commit(clock.now(), float(value))
            return
        # The reading belongs to the simulated time of the clock's next tick.
        if self._ticking_clock is not clock:
            self._ticking_clock = clock
            clock.add_tick_callback(self._ticked)
        with self._lock:
            self._pending = float(value)

    def _ticked(self, now: float) -> None:
        with self._lock:
            stage, self._pending = self._pending, None
        if stage is not None:
            self._commit(now, stage)

    def _commit(self, now: float, stage: float) -> None:
        """Put a stage reading of physical time ``now`` into the history and the observer."""
        with self._lock:
            # A restarted IOC's clock may start again below the times already kept (a
            # new simulation, or a state saved a moment before the restart): a history
            # from another timeline would bend the rate fit once the clock is back there.
            while self._history and self._history[-1][0] > now:
                self._history.pop()
            self._history.append((now, stage))
            if self._sample is None or not math.isfinite(now):
                self._sample = stage
            else:
                elapsed = max(now - self._updated, 0.0)
                lag = max(float(self.thermal_lag.get()), 1e-9)
                self._sample += (stage - self._sample) * -math.expm1(-elapsed / lag)
            self._updated = now

    def estimate(self) -> tuple[float, float]:
        """(temperature K, rate K/s): the observed sample less the filter delay."""
        now = self.controller.clock.now()
        with self._lock:
            recent = [(t, value) for t, value in self._history
                      if math.isfinite(t) and 0.0 <= now - t <= RATE_WINDOW]
        with self._lock:
            sample = self._sample
        if sample is None:
            sample = float(self.controller.stage_temperature.get())
        if recent:
            times, temperatures = (np.array(column) for column in zip(*recent, strict=True))
            rate = ramp_rate(times, temperatures)
        else:
            rate = 0.0
        delay = filter_delay(int(self.lockin.time_constant.get()), int(self.lockin.slope.get()))
        return sample - rate * delay, rate

    def read(self):
        """Estimate at read time: a lock-in's trigger waits its settle time first."""
        temperature, rate = self.estimate()
        self.temperature.put(temperature)
        self.rate.put(rate * 60.0)
        return super().read()
