"""Adaptive ramp rate: fast where nothing changes, slow through a transition.

:class:`StepEvidenceRule` (the rule of
:func:`tcstation.plans.ramps.adaptive_transport_ramp`) decides from the evidence
of the live data, curve by curve (each dc bias is its own curve):

quiet -> developing
    On heating, a drop-on-cooling transition begins as the newest points of a
    curve rising above the smooth background of the points before them. Each
    new point, :func:`developing_step_z` fits the curve's last points with a
    quadratic background plus a hinge (a change of slope) at each of the last
    few points and returns the largest likelihood-ratio z of the hinge's
    slope (a rise; the noise is the larger of the curve's robust point noise
    and the model's residual rms, so a background the quadratic cannot follow
    raises no alarm) among the hinges that steepen the curve at least threefold
    (the detector's shape test: a transition steepens dU/dI 10^2 to 10^4 times, the
    metal's T^5 background barely). ``z >= threshold`` makes the curve *developing*
    and the ramp slow.
developing -> passed
    A developing curve is passed once its newest ``normal_span`` kelvin (3.5 K, the
    span above a step's top that the transition detector reads the normal level
    from) change by less than 2 % of its rise since the step was first seen: the
    onset (10 % of the step below the normal level) then lies below them, sampled at
    the slow rate, and the detector has the normal state it needs. A rise under ten
    point-noise widths by then, or no flattening within ``give_up_kelvin`` of a rise
    that small, was a false alarm. (The detector itself, 20 ms to 2 s a call on a
    loaded machine, is not run in the RunEngine thread: at a speed-up every wall
    second there is that many seconds of ramp without a reading. The live Tc table
    runs it in its worker thread.)
alongside
    Once one curve is developing, every quiet curve is developing too (from that
    temperature): the other biases' steps lie a few kelvin away, and a rise that
    began inside a curve's fit window, or one seen at the slow rate's finer spacing,
    may be gradual enough for the quadratic background to absorb it, so that
    curve's own test never trips (seen on the simulated station under load: the
    zero-bias curve never tripped, and the ramp went fast when the 400 mA one had
    passed, inside the zero-bias transition). Such a curve is quiet again once its
    newest ``normal_span`` kelvin change by at most three point-noise widths (no step
    of its own), and passed like any other once it is flat after a rise.
fast again
    The ramp is slow while any curve is developing and fast otherwise: it
    returns to fast as soon as the last developing curve has passed. The quiet
    test then resumes on a passed curve's normal state, so a second transition
    higher up slows it again.
how fast
    ``fast`` at most, and no faster than gives every curve a point each
    ``lookout_spacing`` kelvin (1.5 K) at the reading cadence measured so far
    (the kelvin between readings over the rate in force, the readings within a
    minute of a change of rate left out): sparser than that, a developing step is
    seen too late and the detector lacks points below it. Never below ``slow``.
    Through a transition ``slow`` at most, and no faster than gives every curve a
    point each :data:`TRANSITION_SPACING` (0.25 K) at that cadence: on a loaded
    machine, where readings come slower, the ramp spends more cryostat time rather
    than lose the onsets' sampling. Never below 0.1 K/min.

The threshold: a ramp makes a few hundred looks per curve (each new point, three
hinge positions, correlated); ``z >= 5`` has a one-sided tail of 3e-7 per look,
a false alarm per four-bias 4.5-70 K ramp of about 1e-3 on white noise. A false
alarm costs only ``give_up_kelvin`` at the slow rate.

:class:`TransitionSlowdown` is the former rule (a slope change decided in a
fixed 2 K window with a fixed point count), kept for comparison and for callers
that build their own ramps with it; it never slows a four-bias ramp at 1.5 K/min
(it sees 3.8 zero-bias points in its window and needs 5).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from tcstation.analysis.transitions import (
    NORMAL_FIT_SPAN,
    NORMAL_MARGIN,
    point_noise,
)

logger = logging.getLogger(__name__)

FAST_RATE = 1.5  # K/min, TransitionSlowdown's defaults
SLOW_RATE = 0.3  # K/min
ADAPTIVE_FAST_RATE = 5.0
"""K/min, :class:`StepEvidenceRule`'s rate where nothing changes: the top of the plans'
policy range (:data:`tcstation.plans.validation.FAST_SEGMENT_RATE_RANGE` says why no higher)."""
ADAPTIVE_SLOW_RATE = 1.5
"""K/min, its rate through a transition: the source experiment's rate, at which the four
curves get the spacing the analysis was validated at."""
DEVELOPING_STEP_THRESHOLD = 5.0
"""Likelihood-ratio z of a developing step that slows the ramp (module docstring)."""
HINGE_POINTS = (2, 3, 4)
"""Newest points above each hinge position tried (two at least: one outlier is no step)."""
WINDOW_POINTS = 10
"""Fewest points of a curve the developing-step fit takes (more if ``window_kelvin`` holds more)."""
WINDOW_KELVIN = 6.0
"""K of a curve's newest data the developing-step fit takes at least."""
NORMAL_SPAN = NORMAL_MARGIN + NORMAL_FIT_SPAN
"""K above a fitted step's top that the detector reads the normal level over."""
CONTEXT_KELVIN = 8.0
"""K below where a step was first seen from which its rise (and the point noise) is measured."""
GIVE_UP_KELVIN = 8.0
"""K above where a step was first seen by which a rise under ``MIN_STEP_SIGMA`` noise widths that
has not flattened counts as a false alarm."""
MIN_SLOPE_RATIO = 3.0
"""A developing step steepens the curve at least this many times (the detector's shape test,
:class:`tcstation.analysis.transitions.TransitionCriteria`)."""
FLAT_FRACTION = 0.02
"""A passed transition: the newest ``normal_span`` kelvin change by less than this share of the
rise since the step was first seen (the onset lies 10 % of the step below the normal level)."""
MIN_STEP_SIGMA = 10.0
"""A rise smaller than this many point-noise widths by the time the curve is flat again was a
false alarm (the detector's ``min_step_sigma``)."""
LOOKOUT_SPACING = 1.5
"""K: the fast rate is capped so that every curve still gets a point this often (a developing
step is then seen within a few kelvin: measured on the simulator's curves, a point every
1.7 K per curve slowed four-bias ramps 3 to 5 K below the 400 mA onset, 2.7 K left the
analysis too few points below the steps)."""
TRANSITION_SPACING = 0.25
"""K: through a transition the slow rate is lowered (to 0.1 K/min at most) until every curve
gets a point this often at the measured cadence (``tests/integration/ramp_sampling.py``
ONSET_SPACING: up to 0.22 K every onset of the four curves was found within 0.03 K, from
0.28 K the 400 mA one is missed in some phases). At 2.2 s a reading and four curves that is
1.7 K/min, above the default 1.5: it acts only when readings come slower (a loaded machine,
a slower instrument)."""
SLOWEST_RATE = 0.1
"""K/min, the plans' policy floor (:data:`tcstation.plans.validation.PLAN_RAMP_RATE_RANGE`)."""
CADENCE_READINGS = 8
"""Readings the cadence (minutes a reading: K between readings over the rate in force) is the
median over."""
ALONGSIDE_FLAT_SIGMA = 3.0
"""A curve watched alongside another is quiet again once its newest ``normal_span`` change by
at most this many point-noise widths (no step of its own)."""
BIAS_RESOLUTION = 2e-3
"""A: readings whose biases round to the same multiple of this are one curve."""


def developing_step_z(temperature, signal, noise: float | None = None, *,
                      hinge_points: tuple[int, ...] = HINGE_POINTS,
                      min_slope_ratio: float = MIN_SLOPE_RATIO) -> float:
    """Likelihood-ratio z of a change of slope at the newest end of a curve.

    The points are fitted with a quadratic background plus ``s * max(T - c, 0)``, a
    hinge at ``c``, for ``c`` at each point with ``k`` points above it in temperature,
    ``k`` in ``hinge_points`` (on a heating ramp the newest points). At fixed ``c`` the
    model is linear and twice the log likelihood ratio of hinge against no hinge is
    ``z^2``, ``z = s_hat / se(s_hat)``; the largest z of a rise is returned (a
    drop-on-cooling signal rises with temperature as its transition begins) among the
    hinges that steepen the curve ``min_slope_ratio`` times.

    Parameters
    ----------
    temperature, signal : array_like
        The curve's latest points, any order; non-finite points are dropped.
    noise : float, optional
        Point noise sigma; the robust :func:`~tcstation.analysis.transitions.point_noise`
        of the points before the hinges when omitted. The larger of it and the hinge
        model's residual rms is used.
    hinge_points : tuple of int
        Numbers of points above the hinges tried.
    min_slope_ratio : float
        A hinge counts only where its added slope exceeds this many times the
        background's slope at the hinge (the shape test of the transition detector).

    Returns
    -------
    float
        The largest z, ``-inf`` when there are too few points (fewer than five more
        than the largest hinge count).
    """
    temperature = np.asarray(temperature, dtype=float)
    signal = np.asarray(signal, dtype=float)
    keep = np.isfinite(temperature) & np.isfinite(signal)
    order = np.argsort(temperature[keep], kind="stable")
    temperature, signal = temperature[keep][order], signal[keep][order]
    count = temperature.size
    best = -math.inf
    if count < 5 + min(hinge_points):
        return best
    span = float(np.ptp(temperature))
    if not span > 0:
        return best
    x = (temperature - float(np.mean(temperature))) / span
    base = np.vander(x, 3, increasing=True)
    for above in hinge_points:
        if count - above < 5:
            continue
        sigma = noise if noise is not None else point_noise(temperature[:count - above],
                                                            signal[:count - above])
        hinge = np.maximum(x - x[count - above - 1], 0.0)
        if np.count_nonzero(hinge) < 2:
            continue
        design = np.column_stack([base, hinge])
        try:
            inverse = np.linalg.inv(design.T @ design)
        except np.linalg.LinAlgError:
            continue
        coefficients = inverse @ (design.T @ signal)
        residual = signal - design @ coefficients
        rms = math.sqrt(float(residual @ residual) / max(count - 4, 1))
        scale = max(sigma if math.isfinite(sigma) else 0.0, rms, np.finfo(float).tiny)
        z = float(coefficients[3]) / (scale * math.sqrt(max(float(inverse[3, 3]), 1e-300)))
        # A transition steepens the curve abruptly (10^2 to 10^4 times for dU/dI); a smooth
        # background whose curvature the quadratic misses (the metal's T^5) barely does.
        at = x[count - above - 1]
        background_slope = abs(float(coefficients[1] + 2.0 * coefficients[2] * at))
        if not float(coefficients[3]) > min_slope_ratio * background_slope:
            continue
        best = max(best, z)
    return best


@dataclass
class CurveState:
    """What :class:`StepEvidenceRule` knows of one curve."""

    temperatures: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    state: str = "quiet"
    """"quiet", "developing" or (above a transition) "passed"."""
    watch_from: float = -math.inf
    """K: the quiet test looks only at points above this (a passed step's normal state)."""
    seen_at: float = math.nan
    """K where the developing step was first seen."""
    evidence: float = -math.inf
    """The latest developing-step z."""
    passed: list[tuple[float, float, float]] = field(default_factory=list)
    """(first seen K, passed K, rise) of every transition passed."""
    change: float = math.nan
    """The newest ``normal_span``'s change as a share of the rise (while developing)."""
    false_alarms: list[float] = field(default_factory=list)
    """K where a developing step came to nothing."""
    alongside: bool = False
    """Developing because another curve is (:meth:`StepEvidenceRule._watch_alongside`)."""


@dataclass(frozen=True)
class RateDecision:
    """One change of the ramp rate and why."""

    temperature: float
    rate: float
    reason: str


class StepEvidenceRule:
    """A rate rule for the ramps: slow while the live data show a developing transition.

    See the module docstring for the decisions. Call it with every event's data
    (a dict of field values); it returns the new ramp rate (K/min) when it changes
    and None otherwise. ``decisions`` keeps every change with its reason.

    Parameters
    ----------
    signal_field, temperature_field : str
        Event data keys of the watched signal (e.g. dU/dI) and of the temperature.
    bias_field : str, optional
        With interleaved biases, each bias's readings are their own curve; all are watched.
    fast, slow : float
        Ramp rates (K/min) where nothing changes and through a transition.
    threshold : float
        Developing-step z that slows the ramp.
    normal_span, context_kelvin, give_up_kelvin : float
        K; see the module docstring.
    lookout_spacing : float
        K: the fast rate is lowered (never below ``slow``) until every curve gets a point
        this often, at the cadence of the readings measured so far.
    transition_spacing : float
        K: likewise the slow rate (never below 0.1 K/min) through a transition.
    """

    def __init__(self, signal_field: str, temperature_field: str, *,
                 bias_field: str | None = None, fast: float = ADAPTIVE_FAST_RATE,
                 slow: float = ADAPTIVE_SLOW_RATE,
                 threshold: float = DEVELOPING_STEP_THRESHOLD,
                 normal_span: float = NORMAL_SPAN, context_kelvin: float = CONTEXT_KELVIN,
                 give_up_kelvin: float = GIVE_UP_KELVIN,
                 lookout_spacing: float = LOOKOUT_SPACING,
                 transition_spacing: float = TRANSITION_SPACING):
        for name, value in (("fast", fast), ("slow", slow), ("threshold", threshold),
                            ("normal_span", normal_span), ("context_kelvin", context_kelvin),
                            ("give_up_kelvin", give_up_kelvin),
                            ("lookout_spacing", lookout_spacing),
                            ("transition_spacing", transition_spacing)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")
        if not slow < fast:
            raise ValueError(f"slow = {slow:g} K/min must be below fast = {fast:g} K/min")
        self.signal_field = signal_field
        self.temperature_field = temperature_field
        self.bias_field = bias_field
        self.fast = float(fast)
        self.slow = float(slow)
        self.threshold = float(threshold)
        self.normal_span = float(normal_span)
        self.context_kelvin = float(context_kelvin)
        self.give_up_kelvin = float(give_up_kelvin)
        self.lookout_spacing = float(lookout_spacing)
        self.transition_spacing = float(transition_spacing)
        self.curves: dict[float, CurveState] = {}
        self.rate = self.fast
        self.fast_allowed = self.fast
        self.slow_allowed = self.slow
        self.decisions: list[RateDecision] = []
        self._steps: deque[float] = deque(maxlen=CADENCE_READINGS)
        self._last_temperature = math.nan
        self._readings_at_rate = 0

    def _curve(self, data: dict) -> tuple[float, CurveState] | None:
        if self.bias_field is None:
            key = 0.0
        else:
            bias = data.get(self.bias_field)
            if bias is None or not math.isfinite(float(bias)):
                return None
            key = round(float(bias) / BIAS_RESOLUTION) * BIAS_RESOLUTION
        return key, self.curves.setdefault(key, CurveState())

    def _watch_quiet(self, curve: CurveState) -> None:
        temperatures = np.array(curve.temperatures)
        values = np.array(curve.values)
        watched = temperatures > curve.watch_from
        temperatures, values = temperatures[watched], values[watched]
        latest = temperatures[-1] if temperatures.size else math.nan
        # The point noise from the whole watched curve before the newest points: on coarse
        # points a short curving stretch reads its curvature as noise.
        older = temperatures.size - max(HINGE_POINTS)
        noise = (point_noise(temperatures[:older], values[:older]) if older >= 5 else None)
        recent = max(WINDOW_POINTS, int(np.count_nonzero(temperatures >= latest - WINDOW_KELVIN)))
        temperatures, values = temperatures[-recent:], values[-recent:]
        curve.evidence = developing_step_z(temperatures, values,
                                           noise if noise is None or math.isfinite(noise)
                                           else None)
        if curve.evidence >= self.threshold:
            curve.state = "developing"
            curve.seen_at = float(latest)

    def _check_passed(self, curve: CurveState) -> None:
        """A developing curve flat again over ``normal_span``: passed, or a false alarm."""
        temperatures = np.array(curve.temperatures)
        values = np.array(curve.values)
        latest = float(temperatures[-1])
        newest = temperatures >= latest - self.normal_span
        since = temperatures >= curve.seen_at - self.context_kelvin
        if (np.count_nonzero(newest) < 3 or float(np.ptp(temperatures[newest]))
                < 0.8 * self.normal_span or latest < curve.seen_at + self.normal_span):
            return
        slope = float(np.polyfit(temperatures[newest], values[newest], 1)[0])
        change = abs(slope) * self.normal_span
        rise = float(np.mean(values[newest]) - np.min(values[since]))
        noise = point_noise(temperatures[since], values[since])
        noise = noise if math.isfinite(noise) else 0.0
        curve.change = change / rise if rise > 0 else math.inf
        if curve.alongside and not change > ALONGSIDE_FLAT_SIGMA * noise:
            # Watched alongside another curve and flat within its noise: no step of its own.
            curve.state, curve.alongside, curve.evidence = "quiet", False, -math.inf
            return
        if not change <= FLAT_FRACTION * rise:
            if latest >= curve.seen_at + self.give_up_kelvin and not rise >= (
                    MIN_STEP_SIGMA * noise):
                curve.false_alarms.append(curve.seen_at)
                curve.state, curve.watch_from, curve.alongside = "quiet", latest, False
            return
        if rise >= MIN_STEP_SIGMA * noise:
            curve.passed.append((curve.seen_at, latest, rise))
            curve.state = "passed"
        else:
            curve.false_alarms.append(curve.seen_at)
            curve.state = "quiet"
        curve.watch_from = latest - self.normal_span
        curve.evidence = -math.inf
        curve.alongside = False

    def __call__(self, data: dict) -> float | None:
        found = self._curve(data)
        if found is None:
            return None
        key, curve = found
        temperature = data.get(self.temperature_field)
        value = data.get(self.signal_field)
        if temperature is None or value is None:
            return None
        temperature, value = float(temperature), float(value)
        if not (math.isfinite(temperature) and math.isfinite(value)):
            return None
        curve.temperatures.append(temperature)
        curve.values.append(value)
        self._track_cadence(temperature)
        before = curve.state
        if curve.state == "developing":
            self._check_passed(curve)
        else:
            self._watch_quiet(curve)
        developing = [bias for bias, state in self.curves.items() if state.state == "developing"]
        if any(not self.curves[bias].alongside for bias in developing):
            self._watch_alongside(temperature)
        wanted = self.slow_allowed if developing else self.fast_allowed
        if wanted == self.rate:
            return None
        self.rate = wanted
        self._readings_at_rate = 0
        if developing:
            strongest = max(developing, key=lambda bias: self.curves[bias].evidence)
            evidence = self.curves[strongest].evidence
            reason = (f"{_label(strongest, self.bias_field)}: a developing step, z "
                      f"{evidence:.1f} >= {self.threshold:g}")
            if before == curve.state == "developing" or wanted < self.slow:
                reason += (f"; a reading every {60.0 * self._cadence():.3g} s: {wanted:.3g} "
                           f"K/min gives each curve a point every {self.transition_spacing:g} K "
                           f"(at most {self.slow:g})")
        elif before == "developing" and curve.state == "passed":
            reason = (f"{_label(key, self.bias_field)}: transition passed, the last "
                      f"{self.normal_span:g} K change by {curve.change:.1%} of its "
                      f"{curve.passed[-1][2]:.3g} rise; no curve developing")
        elif before == "developing":
            reason = f"{_label(key, self.bias_field)}: no transition came of it, a false alarm"
        else:
            reason = (f"a reading every {60.0 * self._cadence():.3g} s: {wanted:.3g} K/min "
                      f"gives each of {len(self.curves)} curves a point every "
                      f"{self.lookout_spacing:g} K (at most {self.fast:g})")
        self.decisions.append(RateDecision(temperature, wanted, reason))
        logger.info("adaptive ramp: %g K/min at %.2f K: %s", wanted, temperature, reason)
        return wanted

    def _watch_alongside(self, temperature: float) -> None:
        """Every quiet curve is developing too once one is: the ramp stays slow until each is
        flat over ``normal_span`` (or came to nothing within ``give_up_kelvin``).

        A bias shifts a transition by a few kelvin, so the other curves' steps are near; a
        curve whose rise began inside the fit window of its own quiet test, or at the
        slow rate's finer spacing, may never reach the threshold there (the quadratic
        background absorbs a gradual rise), and the ramp would be fast again through it.
        """
        for curve in self.curves.values():
            if curve.state == "quiet" and curve.temperatures:
                curve.state, curve.alongside = "developing", True
                curve.seen_at = float(temperature)

    def _cadence(self) -> float:
        return float(np.median(self._steps)) if self._steps else math.nan

    def _track_cadence(self, temperature: float) -> None:
        """Minutes a reading at the rate in force; caps the fast rate at the lookout spacing."""
        step = temperature - self._last_temperature
        self._last_temperature = temperature
        self._readings_at_rate += 1
        # The sample takes about a minute (three thermal lags) to follow a change of rate.
        if not (math.isfinite(step) and step > 0) or self._readings_at_rate <= 3:
            return
        self._steps.append(step / self.rate)
        if len(self._steps) < CADENCE_READINGS // 2:
            return
        minutes_per_reading = self._cadence()
        per_curve = max(len(self.curves), 1) * minutes_per_reading
        self.slow_allowed = min(self.slow, max(SLOWEST_RATE, self.transition_spacing / per_curve))
        self.fast_allowed = min(self.fast, max(self.slow, self.lookout_spacing / per_curve))

    def summary(self) -> dict:
        """The rule's findings by curve (JSON-friendly)."""
        return {"decisions": [(d.temperature, d.rate, d.reason) for d in self.decisions],
                "curves": {key: {"state": curve.state, "passed": curve.passed,
                                 "false_alarms": curve.false_alarms,
                                 "points": len(curve.temperatures)}
                           for key, curve in self.curves.items()}}


def _label(key: float, bias_field: str | None) -> str:
    return "the curve" if bias_field is None else f"{key * 1e3:g} mA curve"


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
