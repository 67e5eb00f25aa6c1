"""Find a superconducting transition in a measured curve.

Every function here takes plain arrays (temperature and signal, in any order, with noise)
and returns a :class:`Transition`; nothing here knows about devices, the simulator or
Bluesky documents.

Both measurements see a *drop on cooling*: 4 pi chi' falls when the interface starts to
shield the core, dU/dI falls when the junctions start to carry supercurrent. One detector
serves both; ``method="likelihood"`` (the default) is described first, ``method="legacy"``
(the departure scan it replaced) at the end.

The model
---------
Near a transition the curve is a smooth normal-state background, a quadratic in T, minus a
step of unknown position t0, width w and height h, a logistic falling on cooling
(:mod:`tcstation.analysis.step_likelihood`), with independent Gaussian point noise sigma. sigma is
estimated from the data: the robust spread of second differences (:func:`point_noise`),
which a step or a few outliers do not move. The null model is the background alone.
Detection
    At fixed (t0, w) the model is linear in the background and h, and twice the log
    likelihood ratio of step against no step is z^2, z = h_hat / se(h_hat) (positive for a
    drop). The scan computes z on a grid: t0 at every midpoint between neighbouring points
    (thinned to 0.05 K), w from 0.005 to 0.5 K (10-90 % widths 0.02 to 2.2 K), each in a
    window of ``window_half_width + 5 w`` (3 to 5.5 K) on each side holding at least 5
    points, the curve covering 80 % of it. Two safeguards enter z: the noise is the larger
    of sigma and the step model's residual rms in the window (a background the quadratic
    cannot follow inflates it), and z of each width is divided by its robust spread over
    all positions when that exceeds 1 (the empirical null: drift and correlated noise widen
    it). The scan statistic is the largest z; a transition needs
    ``z >= detection_threshold(span)``.
False alarms
    On white noise the largest z of a scan over a span of L kelvin exceeds z with
    probability ``n (1 - Phi(z))``, n = 6 L effectively independent tests, fitted to 400
    white-noise null curves for each of spans 15, 30, 65 and 130 K and spacings 0.03, 0.1,
    0.25 and 0.4 K (99 % quantiles of the scan statistic 3.2 to 3.5 at 15 K, 3.6 to 3.7 at
    30 K, 3.8 to 4.3 at 65 K, 4.0 to 4.3 at 130 K; 1 of those 6,400 curves reached the
    threshold; 2026-12-03, ``python benchmarks/transition_power.py --calibrate 400``).
    The threshold is set for 0.05 % per curve on white noise, z = 4.7 for a 65 K ramp, 4.5
    for 24 K; the margin to the target of at most 1 % per curve is for null curves that
    are not white noise on a quadratic (Mg eddy currents, metal resistance, degraded
    samples, drift), measured by benchmarks/transition_power.py: 0.2 % (1 of 432 null
    curves, a pure-Mg chi' sampled every 0.4 K where it curves fastest, near 20 K; none of
    72 each with drift, steep backgrounds, core contacts, degraded samples; 2026-12-03).
    Where the step fit misfits the curve by more than twice the point noise (a noise-free
    curve) the likelihood ratio says little; such a step must also be ``min_slope_ratio``
    times steeper than the background (see "Smooth backgrounds").
Fit
    Around the best candidate, t0 and w are fitted by least squares with the linear
    parameters profiled out (variable projection), the step allowed its own linear slope
    below (s (h + g x)), first with one width, then with a width on each side of t0; the
    split step is kept when it lowers -2 ln L by more than 4 (chi' onsets are abrupt on
    top, dU/dI junctions trail on below).
Onset, midpoint, width
    The definitions of the legacy detector and of ``SampleModel.true_onsets``: the onset is
    where the curve has fallen ``onset_fraction`` of the reference step below the normal
    level (5 % of its own step for chi', 10 % of the zero-bias step for dU/dI), the
    midpoint where it has fallen half its own step, the width from 10 % to 90 %. The step
    is the normal level less the transformed level, a straight-line fit to the lowest
    ``low_temperature_window`` kelvin at the lowest temperature. The normal level is read
    just above the transition, 0.5 K above the fitted step's 0.1 % point (t0 + 6.9 w): the
    value there of a straight line fitted to the 3 K of data above. Crossings are found on
    the fitted model, searched from that 0.1 % point down; where the onset level stands at
    least 3 sigma clear of the noise, the onset is instead where a quadratic through the
    data within 0.3 K (at least 2.5 sampling intervals) crosses the onset level: the
    logistic's tail need not have the real onset's shape. A midpoint or 90 % point below
    the fitted window (chi' keeps falling with the Mg core's eddy currents) is read from
    the smoothed data as the legacy detector does, without an error.
    ``sloping_background`` and a steep normal state (the fitted background falls by more
    than twice the onset level in the kelvin below the normal level's temperature: Pb
    5.5, Mg/MgO near 50 K 0.2 to 0.4) measure the onset from the fitted background
    extrapolated to it, as the legacy detector does.
Uncertainties
    ``onset_error``, ``midpoint_error`` and ``width_error`` are standard errors, the half
    width of a 68 % interval, from the curvature of the log likelihood at its maximum (the
    Wald or quadratic approximation of the profile likelihood): the covariance
    sigma^2 (J^T J)^-1 of all fitted parameters, sigma the larger of the point noise and the
    residual rms, carried through the onset, midpoint and width by central differences,
    together with the variances of the normal and low levels (for the data's onset, the
    covariance of its quadratic and of the onset level), all multiplied by the scan's
    empirical-null factor (>= 1: drift widens both). Not a parametric bootstrap: that
    would cost tens of refits per call. Where the fitted model falls by more than half the
    step within one sampling interval, the crossing is placed at the interval's centre and
    its error is 0.34 of the interval (68 % of a uniform distribution over it); the width is
    then that interval, an upper bound. The stated intervals covered the truth for 65 % of
    the benchmark's 356 found transitions (chi' 60 %, dU/dI 63 to 76 %;
    benchmarks/transition_power.py, 2026-12-03); they leave out the dependence of the
    criteria on where the normal level is read, which dominates weak chi' transitions
    below 40 K, where the Mg core's chi' falls steeply (50 % there).
Smooth backgrounds
    A smooth background that a quadratic follows to a fraction of the noise over the window
    gives no large z: the Bloch-Grueneisen T^5 of core contacts, the Mg eddy-current chi',
    a metal's resistance. Noise-free curves are guarded by the shape test above.
Speed
    18 to 22 ms a call for 600 points (chi' with its loss peak, or dU/dI), against 50 to
    75 ms for the legacy detector (2-core VM at a load average of 5, 2026-12-03); the
    benchmark's 655-point curves took a median of 22 ms (legacy 75 ms), at most 0.15 s
    (legacy 0.24 s) on the loaded machine.

Legacy detector (``method="legacy"``)
------------------------------------
The departure scan, kept for comparison (benchmarks/transition_power.py); it states no
uncertainties.

Detection (is there a transition at all?)
    At each candidate temperature T0 a quadratic is fitted to the normal state in
    ``(T0, T0 + background_window]`` and extrapolated into ``[T0 - departure_window, T0]``;
    the mean shortfall of the data below that extrapolation over its standard error is the
    departure significance z, rescaled by the spread of z over the whole scan (the empirical
    null, which takes in drift and correlated noise). A smooth background (Mg eddy currents,
    a metal's resistance, a slow drift) follows a local quadratic to a small fraction of the
    noise over one kelvin, so only a change of slope on the kelvin scale, the signature of a
    transition, makes z large. The top of the transition is the highest T0 where
    ``z >= min_departure_sigma`` and the shortfall is at least ``min_departure_fraction`` of
    the drop to the lowest-temperature level.
Normal level and step
    The normal state is fitted from one departure window above the top of the transition
    (the scan locates the top no better than that) over one background window; the normal
    level is that fit at its lower end, the normal state just above the transition. The
    transformed level is a straight-line fit to the lowest ``low_temperature_window`` kelvin,
    evaluated at the lowest temperature. The step is their difference and must exceed
    ``min_step_sigma`` times the point noise.
Onset, midpoint, width
    The onset is where the curve has fallen by ``onset_fraction`` of a step below the normal
    level (5 % of its own step for chi', 10 % of the zero-bias step for dU/dI), the
    criteria of the simulator's ``SampleModel.true_onsets``, whose normal reference is also a
    constant level just above the transition. The midpoint is where the curve has fallen by
    half of its own step, the width is the distance between the 10 % and 90 % points.
    Crossings are interpolated with a monotone cubic (PCHIP) through the neighbouring points.
    With ``sloping_background=True`` the onset is instead measured from the normal-state fit
    extrapolated to the onset itself; for Mg/MgO this is 0.2 K lower, because the Mg
    eddy-current background keeps falling on cooling (about 0.009 per kelvin near 50 K).
    Below the onset the background is held at its onset value: a normal-state fit says
    nothing tens of kelvin into the superconducting state.
Steep normal state
    Where the normal-state fit falls, between the start of its range and the top of the
    transition, by more than half the onset level, a constant level would put the onset in
    the normal state itself. A high-purity Pb reference is such a curve: its phonon
    resistivity rises as about T^5 above Tc = 7.2 K and its eddy-current chi' falls by 0.05
    over that kelvin against an onset level of 0.009. Then the onset is first found below the
    extrapolated fit, as with ``sloping_background``; the normal state is fitted again from
    one departure window above that onset (a sharp transition's top sits there) and the
    normal level, the step and the onset are taken from that fit at the onset. The shape
    test then looks at the departure window centred on the onset, since over kelvins even a
    sharp step falls hardly faster than such a normal state.
Shape
    From the start of the normal range down to one departure window below the onset, the
    signal must fall at least ``min_slope_ratio`` times faster with temperature (least
    squares slope) than the normal state does. A transition steepens the curve abruptly (by 9
    for fresh Mg/MgO chi', 10^2 to 10^4 for dU/dI and the references); the slope of a smooth
    background barely changes (0.8 to 1.1 for Mg eddy currents and a metal's resistance, up
    to 2 where they flatten out below 10 K). This rejects, for instance, the Bloch-Grueneisen
    T^5 of noise-free core contacts, which a quadratic cannot follow near 20 K.
Resolution
    Where one sampling interval holds more than half the step, the transition is narrower
    than the sampling: the level is placed at the centre of that interval (a straight line
    between two points on the plateaus says nothing about where the drop is) and the width
    is reported as that interval, an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq
from scipy.stats import norm

from tcstation.analysis import step_likelihood
from tcstation.analysis.step_likelihood import StepFit

SUSCEPTIBILITY_ONSET_FRACTION = 0.05
"""chi' onset: the fall below the normal level, as a fraction of the total drop."""
DUDI_ONSET_FRACTION = 0.10
"""dU/dI onset: the fall below the normal level, as a fraction of the (zero-bias) step."""
MIDPOINT_FRACTION = 0.5
WIDTH_FRACTIONS = (0.1, 0.9)

UNRESOLVED_JUMP = 0.5
"""A level crossing whose bracketing interval holds more than this share of the step is
placed at the interval's centre: the drop is sharper than the sampling."""
MAX_SMOOTHING_POINTS = 15
STEEP_NORMAL_STATE = 0.5
"""A normal state whose fit falls by more than this share of the onset level between the
start of its range and the top of the transition is steep: see "Steep normal state"."""
METHODS = ("likelihood", "legacy")
"""Detectors of :func:`find_step_transition`: the step model (default) and the departure scan."""
INDEPENDENT_TESTS_PER_KELVIN = 6.0
"""Effectively independent step tests per kelvin of a scan (calibrated, "False alarms")."""
WHITE_NOISE_FALSE_ALARMS = 0.0005
"""Per curve, the false-alarm rate the threshold is set for on white noise; the margin to
the 1 % target is for the null curves that are not white noise on a quadratic."""
TOP_OF_STEP = math.log(999.0)
"""The fitted step has 0.1 % of its height left this many logistic widths above its centre."""
STEEP_FALL_PER_KELVIN = 2.0
"""Likelihood method: a normal state whose fit falls by more than this share of the onset
level over the kelvin below the normal level's temperature is steep (Pb: 5.5; Mg/MgO chi'
near 50 K: 0.2 to 0.4)."""
NORMAL_MARGIN = 0.5
"""K above the top of the fitted step where the normal level is read."""
CHARACTERISATION_GRID = 0.004
"""K, the grid the fitted model's crossings are found on (and linearly interpolated)."""
NORMAL_FIT_SPAN = 3.0
"""K above the reference temperature whose data give the normal level (level criterion)."""
MISFIT_RATIO = 2.0
"""A step fit whose residual rms exceeds this many times the point noise must also pass the
shape test (see "Smooth backgrounds")."""
LOCAL_ONSET_ITERATIONS = 4
"""Times the neighbourhood of :func:`_local_onset` is moved to the last crossing found."""
LOCAL_ONSET_MIN_SIGMA = 3.0
"""The data's onset (:func:`_local_onset`) is used when the onset level is at least this
many times the point noise ..."""
LOCAL_ONSET_MAX_ERROR_RATIO = 4.0
"""... and its error at most this many times the model's."""
LOCAL_ONSET_HALF_WIDTH = 0.3
"""K, the smallest half-width of the data's neighbourhood of the onset (:func:`_local_onset`)."""
UNIFORM_68 = 0.34
"""Half of the central 68 % of a uniform distribution, as a share of its range."""
NOISE_FLOOR = 1e-9
"""Smallest point noise, as a share of the signal's range: keeps noise-free curves finite."""

TC_TABLE_COLUMNS = ("bias", "onset", "onset_error", "midpoint", "midpoint_error", "width",
                    "width_error", "step", "found", "reason")
"""Columns of :func:`tc_against_bias`, in order; each ``*_error`` follows its value."""
TC_TABLE_UNITS = {"bias": "A", "onset": "K", "onset_error": "K", "midpoint": "K",
                  "midpoint_error": "K", "width": "K", "width_error": "K", "step": "ohm",
                  "found": "", "reason": ""}
"""Units of the :func:`tc_against_bias` columns for a dU/dI signal in ohm."""


@dataclass(frozen=True)
class TransitionCriteria:
    """Thresholds and windows of the transition detectors (see the module docstring).

    The likelihood method uses ``window_half_width``, ``min_slope_ratio`` (its shape test
    of a misfitting step), ``low_temperature_window`` and ``min_points``; the legacy method
    all but ``window_half_width``. :func:`find_loss_peak` fits the chi'' normal state over
    ``background_window`` from one ``departure_window`` above the top of the transition
    with either.

    Attributes
    ----------
    background_window : float
        Width (K) of the normal-state range fitted above a candidate onset.
    departure_window : float
        Width (K) below a candidate onset over which the shortfall is averaged.
    background_degree : int
        Degree of the normal-state polynomial.
    min_departure_sigma : float
        Departure significance a transition needs. The scan makes a few hundred
        overlapping tests and the noise is not exactly Gaussian (drift, lock-in
        correlation), so this sits well above the 3 to 5 of a single test.
    min_departure_fraction : float
        A departure must also be at least this share of the drop from the background to
        the lowest-temperature level: on a very quiet curve the small misfit of a quadratic
        background is significant, but it is a tiny part of any real transition. Keep it
        below the onset fraction.
    min_step_sigma : float
        Smallest step, in units of the point noise.
    min_slope_ratio : float
        Smallest ratio of the signal's slope across the onset to the normal-state slope.
    low_temperature_window : float
        Width (K) of the lowest-temperature range that gives the transformed level.
    min_points : int
        Fewest finite points a curve needs.
    window_half_width : float
        K, half-width of the step model's window for the sharpest step (likelihood method);
        a step of logistic width w is fitted within ``window_half_width + 5 w``.
    """

    background_window: float = 6.0
    departure_window: float = 1.0
    background_degree: int = 2
    min_departure_sigma: float = 8.0
    min_departure_fraction: float = 0.01
    min_step_sigma: float = 10.0
    min_slope_ratio: float = 3.0
    low_temperature_window: float = 1.5
    min_points: int = 20
    window_half_width: float = 3.0

    def __post_init__(self) -> None:
        for name in ("background_window", "departure_window", "min_departure_sigma",
                     "min_departure_fraction", "min_step_sigma", "min_slope_ratio",
                     "low_temperature_window", "window_half_width"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        if self.background_degree not in (0, 1, 2, 3):
            raise ValueError(f"background_degree must be 0 to 3, got {self.background_degree!r}")
        if self.min_points < 8:
            raise ValueError(f"min_points must be >= 8, got {self.min_points!r}")


DEFAULT_CRITERIA = TransitionCriteria()


@dataclass(frozen=True)
class Transition:
    """A transition found in one curve, or the statement that there is none.

    When ``found`` is False every temperature and height is nan and ``reason`` says why;
    when it is True ``onset``, ``midpoint`` and ``step`` are finite.

    Attributes
    ----------
    found : bool
        Whether the curve holds a transition by the criteria.
    reason : str
        One sentence: what was found, or why nothing was.
    onset : float
        K, where the signal has fallen ``onset_fraction`` of the reference step below the
        normal level.
    midpoint : float
        K, where the signal has fallen half of its own step.
    width : float
        K, 10 % to 90 % of the own step (nan if the curve ends before 90 %).
    step : float
        Normal level minus the transformed level, in signal units.
    normal_level : float
        Signal just above the transition, from the normal-state fit (at the onset for a
        steep normal state).
    onset_fraction : float
        The onset criterion.
    reference_step : float
        The step the onset fraction was taken of (the own step unless one was given).
    noise : float
        Point noise of the signal (robust estimate), signal units.
    significance : float
        The scan statistic: the largest step z of the likelihood scan, or the largest
        departure significance of the legacy scan (also reported when nothing is found).
    resolved : bool
        False when the drop happens within one sampling interval.
    loss_peak_temperature : float
        K, the chi'' maximum inside a chi' transition (nan for dU/dI or when insignificant).
    loss_peak_height : float
        chi'' above its normal-state background at that maximum.
    top_of_transition : float
        K, the highest temperature where the curve departs significantly from the
        normal-state background: the fitted step's 1 % point (likelihood method) or the
        departure scan's top (legacy); a normal-state fit starts one departure window above.
    onset_error, midpoint_error, width_error : float
        K, standard errors (68 % intervals) of onset, midpoint and width (likelihood method;
        nan when not found, with the legacy method, or for a midpoint or width read from
        the data outside the fitted window).
    """

    found: bool
    reason: str
    onset: float = math.nan
    midpoint: float = math.nan
    width: float = math.nan
    step: float = math.nan
    normal_level: float = math.nan
    onset_fraction: float = math.nan
    reference_step: float = math.nan
    noise: float = math.nan
    significance: float = math.nan
    resolved: bool = True
    loss_peak_temperature: float = math.nan
    loss_peak_height: float = math.nan
    top_of_transition: float = math.nan
    onset_error: float = math.nan
    midpoint_error: float = math.nan
    width_error: float = math.nan


def kelvin_text(value: float, error: float | None = None, *, plus_minus: str = "+-") -> str:
    """A temperature with its standard error as text: ``54.103 +- 0.021 K``.

    Parameters
    ----------
    value : float
        K; nan gives ``n/a``.
    error : float, optional
        K, the standard error; left out when missing or nan.
    plus_minus : str
        The sign between value and error (``"\u00b1"`` where the output is typeset).

    Returns
    -------
    str
        Without an error the value has two decimals; with one, the error has two
        significant digits (at most three decimals, an error below 1 mK reads ``< 0.001``)
        and the value as many decimals as the error.
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    if error is None or not math.isfinite(error) or error < 0:
        return f"{value:.2f} K"
    decimals = 3 if error == 0 else min(3, max(0, 1 - math.floor(math.log10(error))))
    if round(error, decimals) == 0:
        return f"{value:.{decimals}f} {plus_minus} < {10.0 ** -decimals:.{decimals}f} K"
    return f"{value:.{decimals}f} {plus_minus} {error:.{decimals}f} K"


def _none(reason: str, noise: float = math.nan, significance: float = math.nan) -> Transition:
    return Transition(found=False, reason=reason, noise=noise, significance=significance)


def _sorted_finite(temperature: ArrayLike, signal: ArrayLike) -> tuple[NDArray, NDArray]:
    temperature = np.asarray(temperature, dtype=float).ravel()
    signal = np.asarray(signal, dtype=float).ravel()
    if temperature.shape != signal.shape:
        raise ValueError(
            f"temperature and signal must have the same length, got {temperature.size} "
            f"and {signal.size}")
    keep = np.isfinite(temperature) & np.isfinite(signal)
    order = np.argsort(temperature[keep], kind="stable")
    return temperature[keep][order], signal[keep][order]


def point_noise(temperature: ArrayLike, signal: ArrayLike) -> float:
    """Robust standard deviation of the point-to-point noise of a smooth curve.

    Each interior point is compared with the straight line through its two neighbours;
    the median absolute deviation of those residuals, scaled by their variance factor,
    estimates sigma. A step or a few outliers do not move it.

    Parameters
    ----------
    temperature, signal : array_like
        The curve, in any order; non-finite points are dropped.

    Returns
    -------
    float
        sigma of the signal, nan for fewer than 5 points.
    """
    temperature, signal = _sorted_finite(temperature, signal)
    if temperature.size < 5:
        return math.nan
    below, centre, above = temperature[:-2], temperature[1:-1], temperature[2:]
    span = above - below
    usable = span > 0
    weight_above = np.where(usable, (centre - below) / np.where(usable, span, 1.0), 0.5)
    line = (1.0 - weight_above) * signal[:-2] + weight_above * signal[2:]
    residual = (signal[1:-1] - line) / np.sqrt(1.0 + (1.0 - weight_above) ** 2
                                               + weight_above**2)
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))))


def _fit_polynomial(temperature: NDArray, signal: NDArray, degree: int,
                    centre: float) -> tuple[NDArray, NDArray, float]:
    """Least squares polynomial in (T - centre): coefficients, (X^T X)^-1, rms residual."""
    design = np.vander(temperature - centre, degree + 1, increasing=True)
    coefficients, _, _, _ = np.linalg.lstsq(design, signal, rcond=None)
    residual = signal - design @ coefficients
    dof = max(temperature.size - degree - 1, 1)
    inverse_normal = np.linalg.pinv(design.T @ design)
    return coefficients, inverse_normal, float(math.sqrt(residual @ residual / dof))


def _evaluate(coefficients: NDArray, temperature: ArrayLike, centre: float) -> NDArray:
    shifted = np.asarray(temperature, dtype=float) - centre
    return np.polynomial.polynomial.polyval(shifted, coefficients)


@dataclass(frozen=True)
class _Scan:
    top: float
    """Highest candidate temperature with a significant departure (nan if none)."""
    peak_z: float
    peak_temperature: float
    largest_significant_fraction: float
    """Largest departure, as a share of the drop, among those with z above threshold."""


def _departure_scan(temperature: NDArray, signal: NDArray, noise: float, low_level: float,
                    criteria: TransitionCriteria) -> _Scan | None:
    """Scan candidate onsets from the top; None when no candidate has a normal range.

    The significance of each shortfall is first its shortfall over its standard error for
    white noise, then rescaled by the spread (median absolute deviation) of that ratio over
    the whole scan: most candidates sit in a smooth part of the curve, so the spread is the
    empirical null, and drift or correlated noise, which the white-noise error misses, widen
    it.
    """
    degree = criteria.background_degree
    min_above = max(3 * (degree + 1), 6)
    position = np.arange(temperature.size)
    upper = np.searchsorted(temperature, temperature + criteria.background_window,
                            side="right")
    lower = np.searchsorted(temperature, temperature - criteria.departure_window,
                            side="left")
    covered = temperature + 0.8 * criteria.background_window <= temperature[-1]
    candidates = np.flatnonzero(covered & (upper - position - 1 >= min_above)
                                & (position - lower >= 1))
    if candidates.size == 0:
        return None
    shortfalls = np.empty(candidates.size)
    standard_errors = np.empty(candidates.size)
    drops = np.empty(candidates.size)
    for slot, index in enumerate(candidates):
        centre = temperature[index]
        above = slice(index + 1, upper[index])
        below = slice(lower[index], index + 1)
        coefficients, inverse_normal, rms = _fit_polynomial(
            temperature[above], signal[above], degree, centre)
        shortfalls[slot] = np.mean(_evaluate(coefficients, temperature[below], centre)
                                   - signal[below])
        mean_row = np.vander(temperature[below] - centre, degree + 1,
                             increasing=True).mean(axis=0)
        standard_errors[slot] = max(rms, noise) * math.sqrt(
            1.0 / (below.stop - below.start) + float(mean_row @ inverse_normal @ mean_row))
        drops[slot] = coefficients[0] - low_level
    ratio = shortfalls / standard_errors
    null_spread = 1.4826 * float(np.median(np.abs(ratio - np.median(ratio))))
    z = ratio / max(1.0, null_spread)
    fraction = np.where(drops > 0, shortfalls / np.where(drops > 0, drops, 1.0), np.inf)
    significant = z >= criteria.min_departure_sigma
    accepted = np.flatnonzero(significant & (fraction >= criteria.min_departure_fraction))
    peak = int(np.argmax(z))
    return _Scan(
        top=float(temperature[candidates[accepted[-1]]]) if accepted.size else math.nan,
        peak_z=float(z[peak]), peak_temperature=float(temperature[candidates[peak]]),
        largest_significant_fraction=float(fraction[significant].max(initial=0.0)))


def _smooth(signal: NDArray, points: int) -> NDArray:
    """Centred running mean over ``points`` (odd) samples, shrinking at the ends."""
    if points <= 1:
        return signal.copy()
    half = points // 2
    cumulative = np.concatenate(([0.0], np.cumsum(signal)))
    index = np.arange(signal.size)
    start = np.clip(index - half, 0, signal.size)
    stop = np.clip(index + half + 1, 0, signal.size)
    return (cumulative[stop] - cumulative[start]) / (stop - start)


def _level_crossing(temperature: NDArray, shortfall: NDArray, level: float, start: float,
                    step: float) -> tuple[float, float] | None:
    """Where the shortfall first reaches ``level``, going down from ``start``.

    ``shortfall`` is how far the signal is below its normal level (positive = below).
    Returns (temperature, unresolved interval): the crossing interpolated with a monotone
    cubic through the two bracketing points and one neighbour on each side, and 0; or, when
    the shortfall grows by more than :data:`UNRESOLVED_JUMP` of the step across the
    bracketing interval, its centre and its length. None if the level is never reached.
    """
    reached = np.flatnonzero((temperature <= start) & (shortfall >= level))
    if reached.size == 0:
        return None
    below = reached[-1]
    above = below + 1
    if above == temperature.size or temperature[above] > start:
        return float(temperature[below]), 0.0
    t_below, t_above = float(temperature[below]), float(temperature[above])
    jump = float(shortfall[below] - shortfall[above])
    if jump > UNRESOLVED_JUMP * step:
        return 0.5 * (t_below + t_above), t_above - t_below
    if jump <= 0:
        return t_below, 0.0
    nearby = slice(max(below - 1, 0), min(above + 2, temperature.size))
    knots, values = temperature[nearby], shortfall[nearby]
    if np.all(np.diff(knots) > 0) and knots.size >= 3:
        curve = PchipInterpolator(knots, values - level, extrapolate=False)
        return float(brentq(curve, t_below, t_above)), 0.0
    fraction = (level - shortfall[above]) / jump
    return t_above + float(fraction) * (t_below - t_above), 0.0


def find_step_transition(temperature: ArrayLike, signal: ArrayLike, *, onset_fraction: float,
                         reference_step: float | None = None, sloping_background: bool = False,
                         criteria: TransitionCriteria = DEFAULT_CRITERIA,
                         method: str = "likelihood") -> Transition:
    """Find a drop-on-cooling transition in a curve (the detector behind both measurements).

    Parameters
    ----------
    temperature : array_like
        Sample temperature of each point, K, any order.
    signal : array_like
        The measured signal; it is lower below the transition than above.
    onset_fraction : float
        The onset is where the signal has fallen this fraction of the reference step below
        the normal level, 0 < onset_fraction < 0.5.
    reference_step : float, optional
        Step (signal units, > 0) that ``onset_fraction`` refers to; the curve's own step
        when omitted.
    sloping_background : bool
        Measure the onset from the normal-state fit extrapolated to the onset rather than
        from the normal level at the top of the transition.
    criteria : TransitionCriteria
        Detector thresholds and windows.
    method : str
        ``"likelihood"`` (the default: the step model and its likelihood ratio test) or
        ``"legacy"`` (the departure scan, no uncertainties).

    Returns
    -------
    Transition
        ``loss_peak_*`` are nan.
    """
    if not 0 < onset_fraction < MIDPOINT_FRACTION:
        raise ValueError(f"onset_fraction must be in (0, 0.5), got {onset_fraction!r}")
    if reference_step is not None and not (math.isfinite(reference_step)
                                           and reference_step > 0):
        raise ValueError(f"reference_step must be finite and > 0, got {reference_step!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "legacy":
        return _legacy_step_transition(temperature, signal, onset_fraction=onset_fraction,
                                       reference_step=reference_step,
                                       sloping_background=sloping_background,
                                       criteria=criteria)
    return _likelihood_step_transition(temperature, signal, onset_fraction=onset_fraction,
                                       reference_step=reference_step,
                                       sloping_background=sloping_background,
                                       criteria=criteria)


def detection_threshold(span: float, false_alarm_rate: float = WHITE_NOISE_FALSE_ALARMS
                        ) -> float:
    """Scan statistic a transition needs on a curve spanning ``span`` kelvin.

    The largest z of a scan over white noise exceeds z with probability about
    ``n (1 - Phi(z))``, n = :data:`INDEPENDENT_TESTS_PER_KELVIN` times the span, the number
    of effectively independent tests (calibration in the module docstring, "False alarms").

    Parameters
    ----------
    span : float
        K, the temperature range of the curve.
    false_alarm_rate : float
        Probability per curve of a false alarm on white noise.
    """
    tests = max(INDEPENDENT_TESTS_PER_KELVIN * span, 1.0)
    return float(norm.isf(false_alarm_rate / tests))


@dataclass(frozen=True)
class _Characterisation:
    onset: float
    midpoint: float
    width: float
    step: float
    normal_level: float
    reference_step: float
    steep: bool
    level_at_onset: float
    reference_temperature: float
    onset_target: float
    """The value the onset criterion asks of the signal: N - f R, or for a sloping or steep
    normal state -f R of the signal less the background."""


def _first_crossing(grid: NDArray, shortfall: NDArray, level: float) -> float:
    """Highest grid temperature where the shortfall reaches ``level``, interpolated; or nan."""
    reached = np.flatnonzero(shortfall >= level)
    if reached.size == 0:
        return math.nan
    below = reached[-1]
    if below == grid.size - 1:
        return float(grid[below])
    gain = shortfall[below] - shortfall[below + 1]
    fraction = (shortfall[below] - level) / gain if gain > 0 else 0.0
    return float(grid[below] + fraction * (grid[below + 1] - grid[below]))


@dataclass(frozen=True)
class _NormalState:
    """Straight-line fit of the data just above the step: the normal level (level criterion)."""

    start: float
    coefficients: NDArray
    variance: float
    """Of its value at ``start``."""

    def level(self, temperature: float, offset: float = 0.0) -> float:
        return float(np.polynomial.polynomial.polyval(temperature - self.start,
                                                      self.coefficients)) + offset


def _normal_state(temperature: NDArray, signal: NDArray, noise: float, start: float,
                  span: float) -> _NormalState | None:
    """Straight line through the data in ``[start, start + span]``."""
    inside = (temperature >= start) & (temperature <= start + span)
    if inside.sum() < 4:
        return None
    offset = temperature[inside] - start
    design = np.vander(offset, 2, increasing=True)
    coefficients = np.linalg.lstsq(design, signal[inside], rcond=None)[0]
    residual = signal[inside] - design @ coefficients
    sigma = max(noise, math.sqrt(float(residual @ residual)
                                 / max(inside.sum() - design.shape[1], 1)))
    variance = float(sigma**2 * np.linalg.pinv(design.T @ design)[0, 0])
    return _NormalState(start=start, coefficients=coefficients, variance=variance)


def _characterise(parameters: NDArray, fit: StepFit, low_level: float, onset_fraction: float,
                  reference_step: float | None, sloping: bool, steep: bool | None,
                  normal_state: _NormalState | None = None, normal_offset: float = 0.0
                  ) -> _Characterisation:
    """Onset, midpoint, width and levels of the step model with these parameters.

    ``steep`` None decides it (see "Onset, midpoint, width" in the module docstring); the
    perturbed evaluations of the error propagation pass the decision of the best fit. The
    normal level is ``normal_state`` at the reference temperature (plus ``normal_offset``,
    for the error propagation) when given, else the fitted background there.
    """
    position, width_above = float(parameters[0]), float(parameters[1])
    reference_temperature = min(position + width_above * TOP_OF_STEP + NORMAL_MARGIN, fit.high)
    grid = np.arange(fit.low, reference_temperature, CHARACTERISATION_GRID)
    if grid.size < 2:
        grid = np.array([fit.low, max(reference_temperature, fit.low + CHARACTERISATION_GRID)])
    background, curve = step_likelihood.model(grid, parameters, fit.centre, fit.half_width)
    # Crossings are searched from the top of the fitted step down: above it, a shortfall is
    # the noise of the normal level, not the transition.
    below_top = grid <= position + width_above * TOP_OF_STEP
    top_background, _ = step_likelihood.model(np.array([reference_temperature]), parameters,
                                              fit.centre, fit.half_width)
    normal_level = float(top_background[0])
    if normal_state is not None:
        normal_level = normal_state.level(reference_temperature, normal_offset)
    step = normal_level - low_level
    reference = step if reference_step is None else float(reference_step)
    onset_level = onset_fraction * reference
    onset = _first_crossing(grid[below_top], (normal_level - curve)[below_top], onset_level)
    if steep is None:
        kelvin_below = float(np.interp(reference_temperature - 1.0, grid, background))
        steep = float(top_background[0]) - kelvin_below > STEEP_FALL_PER_KELVIN * onset_level
    if steep or sloping:
        onset = _first_crossing(grid[below_top], (background - curve)[below_top], onset_level)
        if steep and math.isfinite(onset):
            normal_level = float(np.interp(onset, grid, background))
            step = normal_level - low_level
            if reference_step is None:
                reference = step
                onset_level = onset_fraction * reference
            onset = _first_crossing(grid[below_top], (background - curve)[below_top], onset_level)
    if math.isfinite(onset):
        level_at_onset = float(np.interp(onset, grid, background)) if (
            steep or sloping) else normal_level
    else:
        level_at_onset = normal_level
    midpoint, upper_10, lower_90 = (
        _first_crossing(grid[below_top], (level_at_onset - curve)[below_top], fraction * step)
        for fraction in (MIDPOINT_FRACTION, *WIDTH_FRACTIONS))
    return _Characterisation(onset=onset, midpoint=midpoint, width=upper_10 - lower_90,
                             step=step, normal_level=normal_level, reference_step=reference,
                             steep=steep, level_at_onset=level_at_onset,
                             reference_temperature=reference_temperature,
                             onset_target=(-onset_level if steep or sloping
                                           else normal_level - onset_level))


def _propagated_errors(fit: StepFit, best: _Characterisation, low_level: float,
                       low_variance: float, onset_fraction: float,
                       reference_step: float | None, sloping: bool,
                       normal_state: _NormalState | None) -> tuple[float, ...]:
    """Standard errors of onset, midpoint, width and onset target: the covariance of the fit
    and the variances of the low and normal levels carried through :func:`_characterise` by
    central differences."""
    parameters = fit.parameters
    names = ("onset", "midpoint", "width", "onset_target")

    def evaluate(shifted: NDArray, low: float, normal_offset: float) -> NDArray:
        result = _characterise(shifted, fit, low, onset_fraction, reference_step, sloping,
                               best.steep, normal_state, normal_offset)
        return np.array([getattr(result, name) for name in names])

    standard = np.sqrt(np.clip(np.diag(fit.covariance), 0.0, None))
    gradients = np.zeros((len(names), parameters.size))
    for slot in range(parameters.size):
        delta = 0.3 * standard[slot]
        if slot in (1, 2):
            delta = min(delta, 0.3 * parameters[slot])
        if not delta > 0:
            continue
        shifted = [parameters.copy(), parameters.copy()]
        shifted[0][slot] += delta
        shifted[1][slot] -= delta
        gradients[:, slot] = (evaluate(shifted[0], low_level, 0.0)
                              - evaluate(shifted[1], low_level, 0.0)) / (2.0 * delta)
    variance = np.einsum("qa,ab,qb->q", gradients, fit.covariance, gradients)
    level_variances = [(low_variance, 1.0, 0.0)]
    if normal_state is not None:
        level_variances.append((normal_state.variance, 0.0, 1.0))
    for level_variance, low_share, normal_share in level_variances:
        delta = math.sqrt(level_variance)
        if delta > 0:
            gradient = (evaluate(parameters, low_level + low_share * delta, normal_share * delta)
                        - evaluate(parameters, low_level - low_share * delta,
                                   -normal_share * delta)) / (2.0 * delta)
            variance = variance + gradient**2 * level_variance
    return tuple(float(math.sqrt(value)) if math.isfinite(value) and value >= 0 else math.nan
                 for value in variance)


def _local_onset(temperature: NDArray, signal: NDArray, noise: float, fit: StepFit,
                 best: _Characterisation, sloping: bool, target_error: float
                 ) -> tuple[float, float] | None:
    """The onset where the data themselves cross the onset target, near the model's onset.

    A polynomial (quadratic from 6 points, else a line) is fitted to the signal (less the
    fitted background for a sloping or steep normal state) within
    :data:`LOCAL_ONSET_HALF_WIDTH` (at least 2.5 sampling intervals) of the model's onset,
    and its crossing of the target found: the logistic's tail need not have the shape of
    the real onset. The error combines the local fit's covariance with the target's.
    None when the neighbourhood is wider than the upper half of the step (a sharp step:
    the model's onset stands) or holds fewer than 5 points.
    """
    near_onset = np.abs(temperature - best.onset) <= 1.0
    gaps = np.diff(temperature[near_onset])
    spacing = float(np.median(gaps)) if gaps.size else math.inf
    half = max(LOCAL_ONSET_HALF_WIDTH, 2.5 * spacing)
    if half > 0.5 * step_likelihood.WIDTH_SPAN * fit.width_above:
        return None
    centre = best.onset
    for _ in range(LOCAL_ONSET_ITERATIONS):
        found = _local_crossing(temperature, signal, noise, fit, best, sloping, centre, half)
        if found is None:
            return None
        crossing, slope, gradient_variance = found
        if abs(crossing - centre) <= half:
            variance = gradient_variance + (target_error / slope) ** 2
            return crossing, math.sqrt(variance)
        centre = crossing
    return None


def _local_crossing(temperature: NDArray, signal: NDArray, noise: float, fit: StepFit,
                    best: _Characterisation, sloping: bool, centre: float, half: float
                    ) -> tuple[float, float, float] | None:
    """Crossing of the onset target by a polynomial through the data within ``half`` of
    ``centre``: (temperature, slope there, variance from the polynomial's covariance)."""
    near = np.abs(temperature - centre) <= half
    if near.sum() < 5:
        return None
    offset = temperature[near] - centre
    values = signal[near]
    if sloping:
        values = values - step_likelihood.model(temperature[near], fit.parameters, fit.centre,
                                                fit.half_width)[0]
    design = np.vander(offset, 3 if near.sum() >= 6 else 2, increasing=True)
    coefficients = np.linalg.lstsq(design, values, rcond=None)[0]
    residual = values - design @ coefficients
    sigma = max(noise, math.sqrt(float(residual @ residual) / max(near.sum() - design.shape[1],
                                                                    1)))
    covariance = sigma**2 * np.linalg.pinv(design.T @ design)
    powers = np.arange(design.shape[1])
    crossing = 0.0
    for _ in range(6):
        value = float(np.polyval(coefficients[::-1], crossing))
        slope = float(np.polyval((coefficients[1:] * powers[1:])[::-1], crossing))
        if not slope > 0:
            return None
        crossing -= (value - best.onset_target) / slope
        crossing = float(np.clip(crossing, -3.0 * half, 3.0 * half))
    gradient = -(crossing ** powers) / slope
    return centre + crossing, slope, float(gradient @ covariance @ gradient)


def _unresolved_interval(temperature: NDArray, fit: StepFit, crossing: float, step: float
                         ) -> tuple[float, float] | None:
    """The sampling interval holding ``crossing`` if the fitted model falls by more than
    :data:`UNRESOLVED_JUMP` of the step across it (the drop is sharper than the sampling:
    the model places the crossing anywhere inside), else None."""
    if not (math.isfinite(crossing) and step > 0):
        return None
    above = int(np.clip(np.searchsorted(temperature, crossing), 1, temperature.size - 1))
    ends = temperature[[above - 1, above]]
    _, values = step_likelihood.model(ends, fit.parameters, fit.centre, fit.half_width)
    if values[1] - values[0] > UNRESOLVED_JUMP * step:
        return float(ends[0]), float(ends[1])
    return None


def _likelihood_step_transition(temperature: ArrayLike, signal: ArrayLike, *,
                                onset_fraction: float, reference_step: float | None,
                                sloping_background: bool, criteria: TransitionCriteria
                                ) -> Transition:
    """The step-model detector (method ``"likelihood"``, see the module docstring)."""
    temperature, signal = _sorted_finite(temperature, signal)
    if temperature.size < criteria.min_points:
        return _none(f"only {temperature.size} finite points, fewer than "
                     f"{criteria.min_points}")
    noise = max(point_noise(temperature, signal), NOISE_FLOOR * float(np.ptp(signal)),
                np.finfo(float).tiny)
    result = step_likelihood.scan(temperature, signal, noise, criteria.window_half_width)
    if result is None:
        coverage = step_likelihood.WINDOW_COVERAGE * criteria.window_half_width
        return _none(f"the curve ({temperature[0]:.2f} to {temperature[-1]:.2f} K) has no "
                     f"normal-state range: no candidate step has "
                     f"{step_likelihood.MIN_POINTS_PER_SIDE} points and {coverage:g} K of curve "
                     "on each side", noise)
    threshold = detection_threshold(float(temperature[-1] - temperature[0]))
    if result.statistic < threshold:
        return _none(f"no departure from a smooth background: the best step is "
                     f"{result.statistic:.1f} sigma (at {result.position:.2f} K), under the "
                     f"threshold of {threshold:.1f} sigma", noise, result.statistic)
    fit = step_likelihood.fit_step(temperature, signal, noise, result.position, result.width,
                                   criteria.window_half_width)
    if fit is None or not fit.height > 0:
        return _none(f"the best step ({result.statistic:.1f} sigma at {result.position:.2f} K) "
                     "does not survive the fit of its position and width", noise,
                     result.statistic)
    if fit.noise > MISFIT_RATIO * noise:
        # The model does not describe the curve to its noise (a noise-free curve, a background
        # the quadratic cannot follow): the likelihood ratio says little, the shape must.
        position, width_above, width_below, _, slope_1, slope_2, height, _ = fit.parameters
        x = (position - fit.centre) / fit.half_width
        background_slope = abs(slope_1 + 2.0 * slope_2 * x) / fit.half_width
        step_slope = height / (2.0 * (width_above + width_below))
        if not step_slope > criteria.min_slope_ratio * background_slope:
            return _none(f"the step model misfits the curve by {fit.noise / noise:.0f} times its "
                         f"noise and its step ({step_slope:.3g} per K at {position:.2f} K) is "
                         f"no steeper than {criteria.min_slope_ratio:g} times the background's "
                         f"slope ({background_slope:.3g} per K): a smooth background, not a "
                         "transition", noise, result.statistic)
    lowest = temperature <= temperature[0] + criteria.low_temperature_window
    low_design = np.vander(temperature[lowest] - temperature[0],
                           2 if lowest.sum() > 2 else 1, increasing=True)
    low_fit = np.linalg.lstsq(low_design, signal[lowest], rcond=None)[0]
    low_level = float(low_fit[0])
    low_variance = float(noise**2 * np.linalg.pinv(low_design.T @ low_design)[0, 0])
    first = _characterise(fit.parameters, fit, low_level, onset_fraction, reference_step,
                          sloping_background, None)
    normal_state = _normal_state(temperature, signal, noise, first.reference_temperature,
                                 NORMAL_FIT_SPAN)
    best = _characterise(fit.parameters, fit, low_level, onset_fraction, reference_step,
                         sloping_background, None, normal_state)
    if not best.step > 0 or not math.isfinite(best.onset):
        return _none(f"the curve never falls {onset_fraction:.0%} of the step "
                     f"({onset_fraction * best.reference_step:.3g}) below its normal level",
                     noise, result.statistic)
    onset_error, midpoint_error, width_error, target_error = _propagated_errors(
        fit, best, low_level, low_variance, onset_fraction, reference_step, sloping_background,
        normal_state)
    # Correlated noise (drift) widens the scan's empirical null beyond white noise by
    # null_scale; it widens the errors alike.
    onset_error, midpoint_error, width_error, target_error = (
        value * result.null_scale for value in (onset_error, midpoint_error, width_error,
                                                 target_error))
    onset, midpoint, width = best.onset, best.midpoint, best.width
    local = _local_onset(temperature, signal, noise * result.null_scale, fit, best,
                         best.steep or sloping_background, target_error)
    # The data's own crossing replaces the model's where the onset level stands clear of the
    # noise (below that, the local polynomial can wander off to a noise crossing).
    onset_level = onset_fraction * best.reference_step
    if local is not None and onset_level >= LOCAL_ONSET_MIN_SIGMA * noise and (
            local[1] <= LOCAL_ONSET_MAX_ERROR_RATIO * onset_error):
        onset, onset_error = local
    unresolved_intervals = []
    for name, value in (("onset", onset), ("midpoint", midpoint)):
        interval = _unresolved_interval(temperature, fit, value, best.step)
        if interval is None:
            continue
        low, high = interval
        unresolved_intervals.append(high - low)
        # The crossing lies anywhere in the interval: +-0.34 of it holds 68 % of a uniform.
        if name == "onset":
            onset, onset_error = 0.5 * (low + high), UNIFORM_68 * (high - low)
        else:
            midpoint, midpoint_error = 0.5 * (low + high), UNIFORM_68 * (high - low)
    resolved = not unresolved_intervals
    if not resolved:
        interval = max(unresolved_intervals)
        if not width > interval:
            width, width_error = interval, UNIFORM_68 * interval
    if not (math.isfinite(midpoint) and math.isfinite(width)):
        # A crossing below the fitted window (chi' keeps falling with the Mg core's eddy
        # currents far below the interface's transition): read from the smoothed data.
        # Enough points that the noise is a quarter of a 10 % level at most, as the legacy
        # detector smooths.
        smoothing = 2 * math.ceil(0.5 * ((40.0 * noise / best.step) ** 2 - 1.0)) + 1
        smoothed = _smooth(signal, max(1, min(smoothing, MAX_SMOOTHING_POINTS)))
        shortfall = best.level_at_onset - smoothed
        data_crossings = [_level_crossing(temperature, shortfall, fraction * best.step,
                                          best.reference_temperature, best.step)
                          for fraction in (MIDPOINT_FRACTION, *WIDTH_FRACTIONS)]
        data_midpoint, data_10, data_90 = (crossing[0] if crossing is not None else math.nan
                                           for crossing in data_crossings)
        if not math.isfinite(midpoint):
            midpoint, midpoint_error = data_midpoint, math.nan
        if not math.isfinite(width):
            upper_10 = onset if math.isnan(data_10) else data_10
            width, width_error = upper_10 - data_90, math.nan
    interval = max(unresolved_intervals, default=0.0)
    reason = (f"transition: onset {onset:.2f} +- {onset_error:.2f} K, step {best.step:.3g} "
              f"({best.step / noise:.0f} sigma), likelihood-ratio z {result.statistic:.0f} "
              f"(threshold {threshold:.1f})")
    if not resolved:
        reason += (f"; sharper than the {interval:.2f} K sampling interval: levels at its "
                   "centre, the width an upper bound")
    if best.steep:
        reason += "; steep normal state: measured from its fit extrapolated to the onset"
    return Transition(found=True, reason=reason, onset=onset, midpoint=midpoint,
                      width=float(width), step=best.step, normal_level=best.normal_level,
                      onset_fraction=onset_fraction, reference_step=best.reference_step,
                      noise=noise, significance=result.statistic, resolved=resolved,
                      top_of_transition=fit.position + fit.width_above * TOP_OF_STEP,
                      onset_error=onset_error, midpoint_error=midpoint_error,
                      width_error=width_error)


def _legacy_step_transition(temperature: ArrayLike, signal: ArrayLike, *,
                            onset_fraction: float, reference_step: float | None = None,
                            sloping_background: bool = False,
                            criteria: TransitionCriteria = DEFAULT_CRITERIA) -> Transition:
    """The departure-scan detector (method ``"legacy"``, see "Legacy detector" above).

    Arguments as for :func:`find_step_transition`, already checked.
    """
    temperature, signal = _sorted_finite(temperature, signal)
    if temperature.size < criteria.min_points:
        return _none(f"only {temperature.size} finite points, fewer than "
                     f"{criteria.min_points}")
    noise = max(point_noise(temperature, signal), NOISE_FLOOR * float(np.ptp(signal)),
                np.finfo(float).tiny)
    lowest = temperature <= temperature[0] + criteria.low_temperature_window
    low_fit = np.polynomial.polynomial.polyfit(temperature[lowest] - temperature[0],
                                               signal[lowest], 1 if lowest.sum() > 2 else 0)
    low_level = float(low_fit[0])
    scan = _departure_scan(temperature, signal, noise, low_level, criteria)
    if scan is None:
        return _none(f"the curve ({temperature[0]:.2f} to {temperature[-1]:.2f} K) has no "
                     f"normal-state range of {criteria.background_window:g} K above any "
                     "candidate onset", noise)
    if not math.isfinite(scan.top):
        if scan.peak_z < criteria.min_departure_sigma:
            reason = (f"no departure below the normal-state background: the largest is "
                      f"{scan.peak_z:.1f} sigma (at {scan.peak_temperature:.2f} K), fewer "
                      f"than {criteria.min_departure_sigma:g}")
        else:
            reason = (f"departures of up to {scan.peak_z:.1f} sigma, but at most "
                      f"{scan.largest_significant_fraction:.2%} of the drop to the lowest "
                      f"temperature, under {criteria.min_departure_fraction:.0%}: the "
                      "curvature of a smooth background, not a transition")
        return _none(reason, noise, scan.peak_z)

    top = scan.top
    normal_start, coefficients = _normal_state_fit(temperature, signal, top, criteria)
    normal_level = float(_evaluate(coefficients, normal_start, normal_start))
    step = normal_level - low_level
    if not step >= criteria.min_step_sigma * noise:
        return _none(f"the drop from the normal level to the lowest temperature, {step:.3g}, "
                     f"is {step / noise:.1f} sigma, fewer than {criteria.min_step_sigma:g}",
                     noise, scan.peak_z)
    reference = step if reference_step is None else float(reference_step)

    onset_level = onset_fraction * reference
    # Average enough points that the noise is a quarter of the onset level at most.
    smoothing = 2 * math.ceil(0.5 * ((4.0 * noise / onset_level) ** 2 - 1.0)) + 1
    smoothed = _smooth(signal, max(1, min(smoothing, MAX_SMOOTHING_POINTS)))
    steep = (normal_level - float(_evaluate(coefficients, top, normal_start))
             > STEEP_NORMAL_STATE * onset_level)
    if steep or sloping_background:
        extrapolated_to = np.maximum(temperature, normal_start - criteria.background_window)
        normal = _evaluate(coefficients, extrapolated_to, normal_start)
    else:
        normal = np.full_like(temperature, normal_level)
    onset = _level_crossing(temperature, normal - smoothed, onset_level, normal_start, step)
    if onset is not None and steep:
        # Refit the normal state from one departure window above this first onset (the top
        # of a sharp transition sits a departure window above it) and take the level there.
        normal_start, coefficients = _normal_state_fit(temperature, signal, onset[0],
                                                       criteria)
        extrapolated_to = np.maximum(temperature, normal_start - criteria.background_window)
        normal = _evaluate(coefficients, extrapolated_to, normal_start)
        normal_level = float(np.interp(onset[0], temperature, normal))
        step = normal_level - low_level
        if reference_step is None:
            reference = step
            onset_level = onset_fraction * reference
        onset = _level_crossing(temperature, normal - smoothed, onset_level, normal_start,
                                step)
    if onset is None or not step > 0:
        return _none(f"the curve never falls {onset_fraction:.0%} of the step "
                     f"({onset_level:.3g}) below its normal level", noise, scan.peak_z)
    onset_temperature, onset_interval = onset
    level_at_onset = float(np.interp(onset_temperature, temperature, normal))
    shortfall = level_at_onset - smoothed
    # From the normal range down, not from the onset: a reference step larger than the own
    # step puts the onset below the own step's 10 % point.
    midpoint, upper_10, lower_90 = (
        _level_crossing(temperature, shortfall, fraction * step, normal_start, step)
        for fraction in (MIDPOINT_FRACTION, *WIDTH_FRACTIONS))
    if midpoint is None:
        return _none(f"the curve never falls half its step ({0.5 * step:.3g}) below its "
                     "normal level", noise, scan.peak_z)
    midpoint_temperature, midpoint_interval = midpoint
    normal_slope = float(coefficients[1]) if coefficients.size > 1 else 0.0
    if steep:
        # Over kelvins even a sharp step falls little faster than a steep normal state.
        half = 0.5 * criteria.departure_window
        transition_slope = _slope_between(temperature, signal, onset_temperature - half,
                                          min(onset_temperature + half, normal_start))
    else:
        transition_slope = _slope_between(temperature, signal,
                                          onset_temperature - criteria.departure_window,
                                          normal_start)
    if not transition_slope > criteria.min_slope_ratio * abs(normal_slope):
        return _none(f"no change of slope at the onset ({onset_temperature:.2f} K): the signal "
                     f"falls {transition_slope:.3g} per K across it and {normal_slope:.3g} per "
                     f"K in the normal state, a ratio under {criteria.min_slope_ratio:g}: a "
                     "smooth background, not a transition", noise, scan.peak_z)

    width = (upper_10[0] - lower_90[0]
             if upper_10 is not None and lower_90 is not None else math.nan)
    unresolved = max(onset_interval, midpoint_interval)
    if unresolved > 0:
        width = max(width, unresolved) if math.isfinite(width) else unresolved
    reason = (f"transition: onset {onset_temperature:.2f} K, step {step:.3g} "
              f"({step / noise:.0f} sigma), departure {scan.peak_z:.0f} sigma")
    if unresolved > 0:
        reason += (f"; sharper than the {unresolved:.2f} K sampling interval: levels at its "
                   "centre, the width an upper bound")
    if steep:
        reason += "; steep normal state: measured from its fit extrapolated to the onset"
    return Transition(found=True, reason=reason, onset=onset_temperature,
                      midpoint=midpoint_temperature, width=float(width), step=step,
                      normal_level=normal_level, onset_fraction=onset_fraction,
                      reference_step=reference, noise=noise, significance=scan.peak_z,
                      resolved=unresolved == 0, top_of_transition=top)


def _slope_between(temperature: NDArray, signal: NDArray, low: float, high: float) -> float:
    """Least squares slope of the signal over ``[low, high]`` (nan with fewer than 3 points)."""
    inside = (temperature >= low) & (temperature <= high)
    if inside.sum() < 3 or np.ptp(temperature[inside]) == 0:
        return math.nan
    return float(np.polyfit(temperature[inside], signal[inside], 1)[0])


def _normal_state_fit(temperature: NDArray, signal: NDArray, top: float,
                      criteria: TransitionCriteria) -> tuple[float, NDArray]:
    """Normal-state polynomial: (start of its range, coefficients in T - start).

    The range starts one departure window above the top of the transition, since the scan
    places the top no better than that, and spans one background window.
    """
    normal_start = top + criteria.departure_window
    in_range = (temperature > normal_start) & (
        temperature <= normal_start + criteria.background_window)
    if in_range.sum() < criteria.background_degree + 3:
        in_range = temperature > top
    coefficients, _, _ = _fit_polynomial(temperature[in_range], signal[in_range],
                                         criteria.background_degree, normal_start)
    return normal_start, coefficients


def find_loss_peak(temperature: ArrayLike, chi_imag: ArrayLike, transition: Transition, *,
                   criteria: TransitionCriteria = DEFAULT_CRITERIA,
                   search_below_onset: float = 5.0,
                   min_peak_sigma: float = 5.0) -> tuple[float, float]:
    """Temperature and height of the chi'' maximum inside a chi' transition.

    The normal-state chi'' is fitted over the same range as chi' (above the top of the
    transition), extrapolated down to the onset and held there; the maximum of chi'' above
    that background is searched from ``search_below_onset`` K below the onset up to the
    start of the normal range and refined by a parabola through the points within 0.5 K.
    Only a maximum inside a chi' transition is looked for: pure Mg's broad eddy-current
    maximum (near 37 K) has no chi' transition and gives nan.

    Parameters
    ----------
    temperature, chi_imag : array_like
        The loss curve 4 pi chi'', any order.
    transition : Transition
        The chi' transition of the same run.
    criteria : TransitionCriteria
        Gives the normal-state window and polynomial degree.
    search_below_onset : float
        K below the onset where the search stops.
    min_peak_sigma : float
        Smallest height above background, in units of the chi'' point noise.

    Returns
    -------
    tuple of float
        (K, height above background); (nan, nan) without a significant maximum.
    """
    if not transition.found:
        return math.nan, math.nan
    temperature, chi_imag = _sorted_finite(temperature, chi_imag)
    if temperature.size < criteria.min_points:
        return math.nan, math.nan
    top = transition.top_of_transition
    normal_start, coefficients = _normal_state_fit(temperature, chi_imag, top, criteria)
    background = _evaluate(coefficients, np.maximum(temperature, transition.onset), normal_start)
    excess = chi_imag - background
    search = np.flatnonzero((temperature >= transition.onset - search_below_onset)
                            & (temperature <= normal_start))
    if search.size < 3:
        return math.nan, math.nan
    noise = point_noise(temperature, chi_imag)
    smoothed = _smooth(excess, 3)
    best = search[np.argmax(smoothed[search])]
    # Smoothing by index reaches across a gap in the sampling and can pull the maximum to
    # a neighbour on the peak's flank: the highest point of the smoothing window is taken.
    window = search[np.abs(search - best) <= 1]
    best = window[np.argmax(excess[window])]
    near = np.abs(temperature - temperature[best]) <= 0.5
    peak_temperature, peak_height = float(temperature[best]), float(smoothed[best])
    if (near.sum() >= 5 and np.isfinite(excess[near]).all()
            and np.unique(temperature[near]).size >= 3):
        curvature, slope, constant = np.polyfit(temperature[near] - temperature[best],
                                                excess[near], 2)
        if curvature < 0 and abs(slope / (2 * curvature)) <= 0.5:
            offset = -slope / (2 * curvature)
            peak_temperature = float(temperature[best] + offset)
            peak_height = float(constant + slope * offset + curvature * offset**2)
    if not peak_height >= min_peak_sigma * noise:
        return math.nan, math.nan
    return peak_temperature, peak_height


def find_susceptibility_transition(temperature: ArrayLike, chi_real: ArrayLike,
                                   chi_imag: ArrayLike | None = None, *,
                                   onset_fraction: float = SUSCEPTIBILITY_ONSET_FRACTION,
                                   sloping_background: bool = False,
                                   criteria: TransitionCriteria = DEFAULT_CRITERIA,
                                   method: str = "likelihood") -> Transition:
    """The superconducting transition in an ac susceptibility curve.

    Parameters
    ----------
    temperature : array_like
        Sample temperature, K, any order.
    chi_real : array_like
        4 pi chi' (dimensionless; -1 for a perfect diamagnet).
    chi_imag : array_like, optional
        4 pi chi'' at the same points; gives the loss peak.
    onset_fraction : float
        Fraction of the total chi' drop that defines the onset.
    sloping_background : bool
        See :func:`find_step_transition`.
    criteria : TransitionCriteria
        Detector thresholds and windows.
    method : str
        The detector, see :func:`find_step_transition`.

    Returns
    -------
    Transition
        With ``loss_peak_temperature`` and ``loss_peak_height`` when ``chi_imag`` is given
        and shows a significant maximum inside the transition.
    """
    transition = find_step_transition(temperature, chi_real, onset_fraction=onset_fraction,
                                      sloping_background=sloping_background, criteria=criteria,
                                      method=method)
    if chi_imag is None or not transition.found:
        return transition
    if np.shape(chi_imag) != np.shape(temperature):
        raise ValueError(f"chi_imag must match temperature in shape, got {np.shape(chi_imag)} "
                         f"and {np.shape(temperature)}")
    peak_temperature, peak_height = find_loss_peak(temperature, chi_imag, transition,
                                                   criteria=criteria)
    return replace(transition, loss_peak_temperature=peak_temperature,
                   loss_peak_height=peak_height)


def find_dudi_transition(temperature: ArrayLike, dudi: ArrayLike, *,
                         reference_step: float | None = None,
                         onset_fraction: float = DUDI_ONSET_FRACTION,
                         criteria: TransitionCriteria = DEFAULT_CRITERIA,
                         method: str = "likelihood") -> Transition:
    """The superconducting transition in a dynamic resistance curve.

    Parameters
    ----------
    temperature : array_like
        Sample temperature, K, any order.
    dudi : array_like
        dU/dI, ohm.
    reference_step : float, optional
        Step height (ohm) the onset fraction refers to: the zero-bias step of the same ramp
        for biased curves. Midpoint and width always use the curve's own step (half of the
        zero-bias step can lie on a plateau of a biased curve).
    onset_fraction : float
        Fraction of the reference step that defines the onset.
    criteria : TransitionCriteria
        Detector thresholds and windows.
    method : str
        The detector, see :func:`find_step_transition`.

    Returns
    -------
    Transition
    """
    return find_step_transition(temperature, dudi, onset_fraction=onset_fraction,
                                reference_step=reference_step, criteria=criteria,
                                method=method)


def curves_by_bias(table: Mapping[str, ArrayLike], *, temperature: str = "temperature",
                   signal: str = "dudi", bias: str = "bias",
                   bias_tolerance: float = 1e-3) -> dict[float, tuple[NDArray, NDArray]]:
    """Split an event table with interleaved bias currents into one curve per bias.

    Parameters
    ----------
    table : mapping of str to array_like
        The run's event table (a dict of arrays or a pandas DataFrame): one row per reading.
    temperature, signal, bias : str
        Column names: sample temperature (K), signal, dc bias (A).
    bias_tolerance : float
        Readings whose biases differ by at most this (A), directly or through a chain of
        readings, belong to one curve.

    Returns
    -------
    dict of float to (numpy.ndarray, numpy.ndarray)
        Median bias of each group (sorted ascending) to its (temperature, signal), in table
        order. Rows with a non-finite bias are left out.
    """
    if not (math.isfinite(bias_tolerance) and bias_tolerance >= 0):
        raise ValueError(f"bias_tolerance must be finite and >= 0 A, got {bias_tolerance!r}")
    missing = [name for name in (temperature, signal, bias) if name not in table]
    if missing:
        raise KeyError(f"table has no column(s) {missing}; it has {list(table.keys())}")
    temperatures = np.asarray(table[temperature], dtype=float)
    signals = np.asarray(table[signal], dtype=float)
    biases = np.asarray(table[bias], dtype=float)
    finite = np.flatnonzero(np.isfinite(biases))
    order = finite[np.argsort(biases[finite], kind="stable")]
    # A new group starts wherever consecutive sorted biases differ by more than the tolerance.
    starts = np.flatnonzero(np.diff(biases[order]) > bias_tolerance) + 1
    curves = {}
    for rows in np.split(order, starts):
        if rows.size:
            rows = np.sort(rows)
            curves[float(np.median(biases[rows]))] = (temperatures[rows], signals[rows])
    return curves


def transitions_by_bias(table: Mapping[str, ArrayLike], *, temperature: str = "temperature",
                        signal: str = "dudi", bias: str = "bias", bias_tolerance: float = 1e-3,
                        reference_bias: float | None = 0.0,
                        onset_fraction: float = DUDI_ONSET_FRACTION,
                        criteria: TransitionCriteria = DEFAULT_CRITERIA,
                        method: str = "likelihood") -> dict[float, Transition]:
    """dU/dI transition of every bias in one ramp with interleaved bias currents.

    Parameters
    ----------
    table, temperature, signal, bias, bias_tolerance
        As for :func:`curves_by_bias`.
    reference_bias : float or None
        The curve at this bias (within ``bias_tolerance``) supplies the reference step for
        every onset, as in the simulator's criterion; if it is missing or has no transition,
        or with None, each curve uses its own step.
    onset_fraction : float
        Onset criterion, a fraction of the reference step.
    criteria : TransitionCriteria
        Detector thresholds and windows.
    method : str
        The detector, see :func:`find_step_transition`.

    Returns
    -------
    dict of float to Transition
        By median bias (A), ascending.
    """
    curves = curves_by_bias(table, temperature=temperature, signal=signal, bias=bias,
                            bias_tolerance=bias_tolerance)
    reference_step = None
    if reference_bias is not None:
        nearest = min(curves, key=lambda value: abs(value - reference_bias), default=None)
        if nearest is not None and abs(nearest - reference_bias) <= bias_tolerance:
            reference = find_dudi_transition(*curves[nearest], onset_fraction=onset_fraction,
                                             criteria=criteria, method=method)
            reference_step = reference.step if reference.found else None
    return {value: find_dudi_transition(*curve, reference_step=reference_step,
                                        onset_fraction=onset_fraction, criteria=criteria,
                                        method=method)
            for value, curve in curves.items()}


def tc_against_bias(table: Mapping[str, ArrayLike], *, temperature: str = "temperature",
                    signal: str = "dudi", bias: str = "bias", bias_tolerance: float = 1e-3,
                    reference_bias: float | None = 0.0,
                    onset_fraction: float = DUDI_ONSET_FRACTION,
                    criteria: TransitionCriteria = DEFAULT_CRITERIA,
                    method: str = "likelihood") -> dict[str, NDArray]:
    """Tc against dc bias for one ramp with interleaved bias currents, as table columns.

    Parameters
    ----------
    table, temperature, signal, bias, bias_tolerance, reference_bias, onset_fraction, criteria
    method
        As for :func:`transitions_by_bias`.

    Returns
    -------
    dict of str to numpy.ndarray
        Columns :data:`TC_TABLE_COLUMNS` (units :data:`TC_TABLE_UNITS`), one row per bias,
        sorted by bias: ``bias`` (A), ``onset``, ``midpoint``, ``width`` (K), each followed
        by its standard error ``onset_error``, ``midpoint_error``, ``width_error`` (K, nan
        where :class:`Transition` has none), ``step`` (signal units), ``found`` (bool),
        ``reason`` (str).
    """
    transitions = transitions_by_bias(
        table, temperature=temperature, signal=signal, bias=bias,
        bias_tolerance=bias_tolerance, reference_bias=reference_bias,
        onset_fraction=onset_fraction, criteria=criteria, method=method)
    rows = list(transitions.values())
    return {
        "bias": np.array(list(transitions), dtype=float),
        "onset": np.array([t.onset for t in rows], dtype=float),
        "onset_error": np.array([t.onset_error for t in rows], dtype=float),
        "midpoint": np.array([t.midpoint for t in rows], dtype=float),
        "midpoint_error": np.array([t.midpoint_error for t in rows], dtype=float),
        "width": np.array([t.width for t in rows], dtype=float),
        "width_error": np.array([t.width_error for t in rows], dtype=float),
        "step": np.array([t.step for t in rows], dtype=float),
        "found": np.array([t.found for t in rows], dtype=bool),
        "reason": np.array([t.reason for t in rows], dtype=str),
    }
