"""Likelihood machinery of the transition detector: a step on a smooth background.

The curve near a candidate transition is modelled as a smooth normal-state background (a
quadratic in temperature) minus a logistic step falling on cooling,

    y(T) = a0 + a1 x + a2 x^2 - s(T) (h + g x),    s(T) = 1 / (1 + exp((T - t0) / w)),

with x the temperature relative to the centre of the fitted window. The null model is the
background alone. With Gaussian noise of standard deviation sigma, twice the log likelihood
ratio of step against no step at a fixed position t0 and width w (slope g = 0) is z^2 with
z = h_hat / se(h_hat): :func:`scan` returns z over a grid of positions and widths, its
maximum is the scan statistic. :func:`fit_step` then fits t0 and w continuously (the
linear parameters profiled out, variable projection) with the below-step slope g free,
allowing a width of its own on each side of t0 where that improves the likelihood
(:func:`split_logistic_step`), and returns the covariance of all parameters from the
curvature of the log likelihood at its maximum.

Nothing here knows about onsets or the criteria of a measurement: see
:mod:`tcstation.analysis.transitions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

SCAN_WIDTHS = (0.005, 0.04, 0.1, 0.2, 0.35, 0.5)
"""K, logistic widths w of the scan: 10-90 % widths (4.39 w) from 0.02 to 2.2 K."""
WIDTH_SPAN = math.log(81.0)
"""The 10-90 % width of a logistic step, in units of its scale w."""
MIN_WIDTH, MAX_WIDTH = 1e-3, 1.5
"""K, bounds of the fitted logistic width."""
MIN_POINTS_PER_SIDE = 5
"""Points a window needs on each side of a candidate position."""
WINDOW_COVERAGE = 0.8
"""Share of the window's half-width the curve must cover on each side of a candidate."""
SPLIT_MIN_IMPROVEMENT = 4.0
"""Fall of -2 ln L that a width of its own on each side of t0 must bring to be kept."""
SCAN_POSITION_STEP = 0.05
"""K, the finest spacing of candidate positions (dense curves are thinned to it)."""


def logistic_step(temperature: NDArray, position: float | NDArray,
                  width: float | NDArray) -> NDArray:
    """The unit step falling on cooling: 1 well below ``position``, 0 well above."""
    argument = np.clip((temperature - position) / width, -60.0, 60.0)
    return 1.0 / (1.0 + np.exp(argument))


def window_half_width(base: float, width: float) -> float:
    """Half-width (K) of the fitted window for a step of logistic width ``width``."""
    return base + 5.0 * width


@dataclass(frozen=True)
class Scan:
    """The step scan of one curve.

    Attributes
    ----------
    statistic : float
        Largest z over positions and widths, after the empirical-null rescaling.
    position, width : float
        K, where that maximum is.
    null_scales : tuple of float
        Per scan width, the factor (>= 1) z was divided by: the robust spread of z over all
        candidate positions when it exceeds 1 (correlated noise or drift).
    candidates : int
        Number of (position, width) pairs tested.
    null_scale : float
        The factor of the width where the maximum is.
    """

    statistic: float
    position: float
    width: float
    null_scales: tuple[float, ...]
    candidates: int
    null_scale: float = 1.0


def candidate_positions(temperature: NDArray) -> NDArray:
    """Midpoints between neighbouring temperatures, thinned to :data:`SCAN_POSITION_STEP`."""
    gaps = np.diff(temperature)
    midpoints = 0.5 * (temperature[1:] + temperature[:-1])[gaps > 0]
    _, first = np.unique(np.floor(midpoints / SCAN_POSITION_STEP), return_index=True)
    return midpoints[np.sort(first)]


def scan(temperature: NDArray, signal: NDArray, noise: float, base_half_width: float,
         widths: tuple[float, ...] = SCAN_WIDTHS) -> Scan | None:
    """z of a step (slope g = 0) at every candidate position and width; None if no window.

    At each candidate the window holds the points within :func:`window_half_width` of it;
    the noise used is the larger of ``noise`` and the step model's residual rms in the
    window (a background the quadratic cannot follow inflates it). z is positive for a
    drop on cooling.

    Parameters
    ----------
    temperature, signal : numpy.ndarray
        Sorted, finite.
    noise : float
        Point noise sigma of the signal.
    base_half_width : float
        K, the window half-width for the sharpest step.
    widths : tuple of float
        Logistic widths to scan, K.
    """
    positions = candidate_positions(temperature)
    if positions.size == 0:
        return None
    best = (-math.inf, math.nan, math.nan, 1.0)
    scales, tested = [], 0
    for width in widths:
        half = window_half_width(base_half_width, width)
        low = np.searchsorted(temperature, positions - half, side="left")
        high = np.searchsorted(temperature, positions + half, side="right")
        centre = np.searchsorted(temperature, positions, side="left")
        usable = ((centre - low >= MIN_POINTS_PER_SIDE) & (high - centre >= MIN_POINTS_PER_SIDE)
                  & (positions - WINDOW_COVERAGE * half >= temperature[0])
                  & (positions + WINDOW_COVERAGE * half <= temperature[-1]))
        if not usable.any():
            scales.append(1.0)
            continue
        where = positions[usable]
        low, high = low[usable], high[usable]
        longest = int((high - low).max())
        index = low[:, None] + np.arange(longest)[None, :]
        inside = index < high[:, None]
        index = np.minimum(index, temperature.size - 1)
        x = np.where(inside, (temperature[index] - where[:, None]) / half, 0.0)
        y = signal[index]
        count = inside.sum(axis=1)
        y = np.where(inside, y - (np.where(inside, y, 0.0).sum(axis=1) / count)[:, None], 0.0)
        step = np.where(inside, logistic_step(temperature[index], where[:, None], width), 0.0)
        x2 = x * x
        moments = [count.astype(float), x.sum(axis=1), x2.sum(axis=1), (x2 * x).sum(axis=1),
                   (x2 * x2).sum(axis=1)]
        gram = np.empty((where.size, 3, 3))
        for row in range(3):
            for column in range(3):
                gram[:, row, column] = moments[row + column]
        step_cross = np.stack([step.sum(axis=1), (step * x).sum(axis=1),
                               (step * x2).sum(axis=1)], axis=-1)
        signal_cross = np.stack([np.zeros(where.size), (y * x).sum(axis=1),
                                 (y * x2).sum(axis=1)], axis=-1)
        solved = np.linalg.solve(gram + 1e-12 * np.eye(3),
                                 np.stack([step_cross, signal_cross], axis=-1))
        step_norm = (step * step).sum(axis=1) - (step_cross * solved[:, :, 0]).sum(axis=1)
        step_dot = (step * y).sum(axis=1) - (step_cross * solved[:, :, 1]).sum(axis=1)
        null_rss = (y * y).sum(axis=1) - (signal_cross * solved[:, :, 1]).sum(axis=1)
        step_norm = np.maximum(step_norm, 1e-300)
        step_rss = np.maximum(null_rss - step_dot**2 / step_norm, 0.0)
        local_noise = np.sqrt(step_rss / np.maximum(count - 4, 1))
        # The model is signal = background + b * step, so a drop on cooling has b < 0.
        z = -step_dot / np.sqrt(step_norm) / np.maximum(noise, local_noise)
        spread = 1.4826 * float(np.median(np.abs(z - np.median(z))))
        scale = max(1.0, spread)
        scales.append(scale)
        tested += z.size
        peak = int(np.argmax(z))
        if z[peak] / scale > best[0]:
            best = (float(z[peak] / scale), float(where[peak]), width, scale)
    if not math.isfinite(best[0]):
        return None
    return Scan(statistic=best[0], position=best[1], width=best[2], null_scales=tuple(scales),
                candidates=tested, null_scale=best[3])


def split_logistic_step(temperature: NDArray, position: float, width_above: float,
                        width_below: float) -> NDArray:
    """:func:`logistic_step` with its own width on each side of ``position`` (s = 1/2 there)."""
    width = np.where(temperature > position, width_above, width_below)
    return logistic_step(temperature, position, width)


PARAMETER_NAMES = ("position", "width_above", "width_below", "a0", "a1", "a2", "height",
                   "slope")
"""The step model's parameters, in the order of :attr:`StepFit.parameters`."""


@dataclass(frozen=True)
class StepFit:
    """Maximum likelihood step model in one window.

    Attributes
    ----------
    parameters : numpy.ndarray
        (t0, w_above, w_below, a0, a1, a2, h, g), see :data:`PARAMETER_NAMES`: the step is
        a logistic of width w_above above t0 and w_below below it, s(T) (h + g x) below the
        background a0 + a1 x + a2 x^2.
    covariance : numpy.ndarray
        8 x 8, of the parameters.
    centre, half_width : float
        K, the window: x = (T - centre) / half_width.
    noise : float
        sigma used for the covariance: the larger of the point noise and the residual rms.
    low, high : float
        K, the temperatures the window spans.
    """

    parameters: NDArray
    covariance: NDArray
    centre: float
    half_width: float
    noise: float
    low: float
    high: float

    @property
    def position(self) -> float:
        return float(self.parameters[0])

    @property
    def width_above(self) -> float:
        return float(self.parameters[1])

    @property
    def width_below(self) -> float:
        return float(self.parameters[2])

    @property
    def height(self) -> float:
        return float(self.parameters[6])


def model(temperature: NDArray, parameters: NDArray, centre: float, half_width: float
          ) -> tuple[NDArray, NDArray]:
    """(background, full model) at ``temperature`` for :data:`PARAMETER_NAMES` values."""
    position, width_above, width_below, a0, a1, a2, height, slope = parameters
    x = (temperature - centre) / half_width
    background = a0 + a1 * x + a2 * x * x
    step = split_logistic_step(temperature, position, width_above, width_below)
    return background, background - step * (height + slope * x)


def _linear_design(temperature: NDArray, nonlinear: NDArray, centre: float,
                   half_width: float) -> NDArray:
    x = (temperature - centre) / half_width
    step = split_logistic_step(temperature, nonlinear[0], nonlinear[1], nonlinear[2])
    return np.column_stack([np.ones_like(x), x, x * x, -step, -step * x])


def fit_step(temperature: NDArray, signal: NDArray, noise: float, position: float,
             width: float, base_half_width: float) -> StepFit | None:
    """Fit the step model in the window around a scan's best candidate.

    t0 and the logarithm of the width are fitted by least squares with the five linear
    parameters solved at each trial (variable projection), first with one width on both
    sides of t0, then with a width on each side; the split step is kept when it lowers
    -2 ln L by more than :data:`SPLIT_MIN_IMPROVEMENT` (a likelihood ratio test for one
    parameter). t0 stays within a kelvin of the scan's position, the widths within
    [:data:`MIN_WIDTH`, :data:`MAX_WIDTH`]. The covariance is sigma^2 (J^T J)^-1 of the full
    Jacobian at the optimum, sigma the larger of the point noise and the residual rms: the
    curvature of the log likelihood at its maximum (with one width, both width entries hold
    its variance, perfectly correlated).

    Returns
    -------
    StepFit or None
        None if the window has too few points.
    """
    half = window_half_width(base_half_width, max(width, 0.2))
    inside = np.abs(temperature - position) <= half
    if inside.sum() < 2 * MIN_POINTS_PER_SIDE + 3:
        return None
    window_t, window_y = temperature[inside], signal[inside]
    offset = float(np.mean(window_y))
    window_y = window_y - offset
    centre = position

    def nonlinear_of(trial: NDArray) -> NDArray:
        widths = np.exp(trial[1:])
        return np.array([trial[0], widths[0], widths[-1]])

    def residual(trial: NDArray) -> NDArray:
        design = _linear_design(window_t, nonlinear_of(trial), centre, half)
        coefficients = np.linalg.lstsq(design, window_y, rcond=None)[0]
        return (window_y - design @ coefficients) / noise

    gap = max(float(np.max(np.diff(window_t))), 1e-6)
    log_width = math.log(min(max(width, MIN_WIDTH), MAX_WIDTH))
    reach = min(1.0, 0.5 * half)
    bounds = ([position - reach, math.log(MIN_WIDTH)], [position + reach, math.log(MAX_WIDTH)])
    start = np.clip([position, log_width], np.add(bounds[0], 1e-9), np.subtract(bounds[1], 1e-9))
    symmetric = least_squares(residual, start, bounds=bounds, x_scale=[gap, 1.0],
                              method="trf", max_nfev=60)
    split_start = np.append(symmetric.x, symmetric.x[1])
    split = least_squares(residual, split_start,
                          bounds=(bounds[0] + bounds[0][1:], bounds[1] + bounds[1][1:]),
                          x_scale=[gap, 1.0, 1.0], method="trf", max_nfev=60)
    use_split = 2.0 * (symmetric.cost - split.cost) > SPLIT_MIN_IMPROVEMENT
    nonlinear = nonlinear_of(split.x if use_split else symmetric.x)
    design = _linear_design(window_t, nonlinear, centre, half)
    linear = np.linalg.lstsq(design, window_y, rcond=None)[0]
    residuals = window_y - design @ linear
    dof = max(window_t.size - len(PARAMETER_NAMES) + (0 if use_split else 1), 1)
    sigma = max(noise, math.sqrt(float(residuals @ residuals) / dof))
    linear[0] += offset
    parameters = np.concatenate((nonlinear, linear))
    position, width_above, width_below = nonlinear
    above = window_t > position
    local_width = np.where(above, width_above, width_below)
    step = split_logistic_step(window_t, position, width_above, width_below)
    x = (window_t - centre) / half
    amplitude = linear[3] + linear[4] * x
    # Of  - s (h + g x):  ds/dt0 = s (1 - s) / w,  ds/dw = s (1 - s) (T - t0) / w^2.
    slope_of_step = -amplitude * step * (1.0 - step) / local_width
    jacobian = np.empty((window_t.size, len(PARAMETER_NAMES)))
    jacobian[:, 0] = slope_of_step
    jacobian[:, 1] = np.where(above, slope_of_step * (window_t - position) / width_above, 0.0)
    jacobian[:, 2] = np.where(above, 0.0, slope_of_step * (window_t - position) / width_below)
    jacobian[:, 3:] = design
    if use_split:
        covariance = sigma**2 * np.linalg.pinv(jacobian.T @ jacobian, rcond=1e-12)
    else:
        joint = np.column_stack([jacobian[:, 0], jacobian[:, 1] + jacobian[:, 2],
                                 jacobian[:, 3:]])
        reduced = sigma**2 * np.linalg.pinv(joint.T @ joint, rcond=1e-12)
        expand = [0, 1, 1, 2, 3, 4, 5, 6]
        covariance = reduced[np.ix_(expand, expand)]
    return StepFit(parameters=parameters, covariance=covariance, centre=centre,
                   half_width=half, noise=sigma, low=float(window_t[0]),
                   high=float(window_t[-1]))
