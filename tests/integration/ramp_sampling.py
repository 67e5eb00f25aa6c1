"""The sampling a physics check on a ramp needs, asserted before the physics.

Every wall millisecond a reading takes becomes speed-up milliseconds of simulated time,
so on a busy machine the curves of a ramp come out sparser. A test that checks onsets or
slopes asserts first the spacing it got, from the events, and fails with that figure
("400 mA curve: median spacing 0.62 K, the analysis needs <= 0.25 K"), so a run that is
too sparse is told apart from a model or an analysis that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tcstation.analysis.transitions import detection_threshold, transitions_by_bias

ONSET_SPACING = 0.25
"""K between consecutive points of one bias curve that these checks ask for. Measured
(2026-12-02) for the legacy departure scan by thinning two fine ramps (0.056 and 0.17 K
per curve) to every spacing and phase: up to 0.22 K every onset was found within 0.03 K
of the truth; from 0.28 K the 400 mA curve was missed in some phases. The likelihood
detector finds a 10-sigma sharp step at 0.4 K (benchmarks/transition_power.py); the
tighter figure is kept for the onsets' accuracy."""

ONSET_WINDOW = 1.0
"""K either side of a true onset: the transition finder's departure window, over which
it compares the data with the normal state extrapolated down."""


def bias_curves(temperature: np.ndarray, bias: np.ndarray,
                biases: Sequence[float], tolerance: float = 2e-3) -> dict[float, np.ndarray]:
    """The temperatures of each bias curve, in event order."""
    return {float(value): temperature[np.abs(bias - value) <= tolerance] for value in biases}


def median_spacing(temperatures: np.ndarray) -> float:
    """Median K between consecutive points (nan with fewer than two)."""
    if temperatures.size < 2:
        return math.nan
    return float(np.median(np.abs(np.diff(temperatures))))


def _label(value: float) -> str:
    return f"{value * 1e3:g} mA curve"


def assert_curve_sampling(temperature: np.ndarray, bias: np.ndarray, biases: Sequence[float],
                          *, spacing_needed: float = ONSET_SPACING,
                          onsets: dict[float, float] | None = None,
                          window: float = ONSET_WINDOW,
                          needed_by: str = "the analysis") -> dict[float, float]:
    """Fail, naming the figures, unless every bias curve is sampled finely enough.

    Parameters
    ----------
    temperature, bias : numpy.ndarray
        Event columns: the ramp's temperature (K) and the measured bias (A).
    biases : sequence of float
        The ramp's biases (A).
    spacing_needed : float
        Largest median spacing (K) of a curve the physics check can use.
    onsets : dict of float to float, optional
        True onset (K) by bias: each curve must also have a point every ``spacing_needed``
        within ``window`` of its onset, where the analysis places it.
    window : float
        Half width (K) of the window around each onset.
    needed_by : str
        What needs the spacing, for the message.

    Returns
    -------
    dict of float to float
        The median spacing (K) achieved by bias.
    """
    problems = []
    achieved = {}
    for value, curve in bias_curves(temperature, bias, biases).items():
        spacing = median_spacing(curve)
        achieved[value] = spacing
        if not spacing <= spacing_needed:
            problems.append(f"{_label(value)}: median spacing {spacing:.2f} K, {needed_by} "
                            f"needs <= {spacing_needed:.2f} K")
        if onsets is not None and value in onsets:
            low, high = onsets[value] - window, onsets[value] + window
            count = int(np.count_nonzero((curve >= low) & (curve <= high)))
            needed = math.floor(2 * window / spacing_needed)
            if count < needed:
                problems.append(f"{_label(value)}: {count} points within {low:.2f} to "
                                f"{high:.2f} K around its onset, {needed_by} needs >= "
                                f"{needed}")
    print("median spacing by curve: " + ", ".join(
        f"{_label(value)} {spacing:.3f} K" for value, spacing in achieved.items()))
    assert not problems, ("the ramp sampled too coarsely for the physics check (a slow or "
                          "busy machine, not the physics): " + "; ".join(problems))
    return achieved


def assert_detection_margin(temperature: np.ndarray, bias: np.ndarray, signal: np.ndarray,
                            biases: Sequence[float]) -> dict[float, float]:
    """Fail, naming the figures, unless the transition finder detects every curve's step.

    The finder accepts a step only where its likelihood-ratio scan statistic z reaches
    :func:`~tcstation.analysis.transitions.detection_threshold` for the curve's span (4.4
    to 4.7 for these ramps); z scales with the step over the per-point noise. A curve
    below it fails here with its z and noise, told apart from an onset in the wrong place.

    Returns
    -------
    dict of float to float
        The scan statistic z by bias.
    """
    found = transitions_by_bias({"temperature": temperature, "dudi": signal, "bias": bias})
    curves = bias_curves(temperature, bias, biases)
    margins, problems = {}, []
    for value in biases:
        nearest = min(found, key=lambda key: abs(key - value))
        transition = found[nearest]
        threshold = detection_threshold(float(np.ptp(curves[value])) if curves[value].size
                                        else 0.0)
        margins[value] = transition.significance
        if not (transition.found and transition.significance >= threshold):
            problems.append(f"{_label(value)}: z {transition.significance:.1f} (point noise "
                            f"{transition.noise:.3g}), the finder needs >= {threshold:.1f}: "
                            f"{transition.reason}")
    print("likelihood-ratio z by curve: " + ", ".join(
        f"{_label(value)} {margin:.1f}" for value, margin in margins.items()))
    assert not problems, ("the run's noise left the transition finder no detection margin "
                          "(the data, not the onset's place): " + "; ".join(problems))
    return margins
