"""Adaptive ramp rate: fast far from a transition, slow where the live data change.

:class:`TransitionSlowdown` watches one signal against temperature as events
arrive. Far from any change it keeps the fast rate; when the signal's slope
against temperature departs from its baseline by more than a few noise widths
(a transition has begun) it asks for the slow rate, and it returns to the fast
rate once the signal has been flat again for ``settle_kelvin``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

FAST_RATE = 1.5  # K/min
SLOW_RATE = 0.3  # K/min


class TransitionSlowdown:
    """A rate rule for :func:`tcstation.plans.ramps.transport_ramp` and ``susceptibility_ramp``.

    Parameters
    ----------
    signal_field, temperature_field : str
        Event data keys of the watched signal (e.g. dU/dI) and of the temperature.
    bias_field : str, optional
        With interleaved biases, only events whose bias is ``watch_bias`` count.
    watch_bias : float
        The bias (A) whose curve is watched, 0 by default.
    fast, slow : float
        Ramp rates (K/min).
    window_kelvin : float
        Width of the window the local slope is fitted over.
    threshold : float
        How many noise widths of slope change count as a transition.
    settle_kelvin : float
        How long (in K) the signal must be flat again before speeding up.
    """

    def __init__(self, signal_field: str, temperature_field: str, *,
                 bias_field: str | None = None, watch_bias: float = 0.0,
                 fast: float = FAST_RATE, slow: float = SLOW_RATE,
                 window_kelvin: float = 2.0, threshold: float = 6.0,
                 settle_kelvin: float = 2.0):
        self.signal_field = signal_field
        self.temperature_field = temperature_field
        self.bias_field = bias_field
        self.watch_bias = watch_bias
        self.fast = fast
        self.slow = slow
        self.window_kelvin = window_kelvin
        self.threshold = threshold
        self.settle_kelvin = settle_kelvin
        self.points: deque[tuple[float, float]] = deque(maxlen=2000)
        self.baseline_slopes: deque[float] = deque(maxlen=200)
        self.slow_since: float | None = None
        self.flat_since: float | None = None
        self.rate = fast
        self.slowed_ranges: list[tuple[float, float]] = []

    def _local_slope(self) -> tuple[float, float] | None:
        """Slope of the signal over the last window and the scatter about the fit."""
        if len(self.points) < 6:
            return None
        temperatures, values = (np.array(column) for column in zip(*self.points, strict=True))
        inside = temperatures >= temperatures[-1] - self.window_kelvin
        # At a ramp's start the points crowd together: no slope until they span the window.
        if inside.sum() < 5 or np.ptp(temperatures[inside]) < 0.5 * self.window_kelvin:
            return None
        fit = np.polyfit(temperatures[inside], values[inside], 1)
        residual = values[inside] - np.polyval(fit, temperatures[inside])
        spread = np.std(residual) / max(np.ptp(temperatures[inside]), 1e-9)
        return float(fit[0]), float(spread)

    def __call__(self, data: dict) -> float | None:
        if self.bias_field is not None:
            bias = data.get(self.bias_field)
            if bias is None or abs(float(bias) - self.watch_bias) > 1e-3:
                return None
        temperature = data.get(self.temperature_field)
        value = data.get(self.signal_field)
        if temperature is None or value is None or not np.isfinite([temperature, value]).all():
            return None
        self.points.append((float(temperature), float(value)))
        local = self._local_slope()
        if local is None:
            return None
        slope, spread = local
        if len(self.baseline_slopes) < 5:
            self.baseline_slopes.append(slope)
            return None
        baseline = float(np.median(self.baseline_slopes))
        scatter = float(np.median(np.abs(np.array(self.baseline_slopes) - baseline)))
        noise = max(1.4826 * scatter, spread, 1e-12)
        changing = abs(slope - baseline) > self.threshold * noise
        temperature = float(temperature)
        if changing:
            self.flat_since = None
            if self.rate != self.slow:
                self.rate = self.slow
                self.slow_since = temperature
                return self.slow
            return None
        if self.rate == self.slow:
            if self.flat_since is None:
                self.flat_since = temperature
            elif temperature - self.flat_since >= self.settle_kelvin:
                self.slowed_ranges.append((self.slow_since, temperature))
                self.rate = self.fast
                return self.fast
            return None
        self.baseline_slopes.append(slope)
        return None
