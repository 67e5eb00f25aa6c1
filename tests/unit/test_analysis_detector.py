"""The likelihood-ratio step detector of analysis.transitions: power, false alarms, intervals.

Seeded curves on a 4.5 to 70 K heating ramp (jittered spacing): the verdicts are
deterministic and do not depend on the machine's load.
"""

import math

import numpy as np
import pytest

from tcstation.analysis.transitions import (
    DUDI_ONSET_FRACTION,
    METHODS,
    detection_threshold,
    find_dudi_transition,
    find_step_transition,
    find_susceptibility_transition,
)
from tcstation.ioc_sim.sample import SampleModel

NOISE = 1.0
CURVES = 40
NORMAL_LEVEL = 50.0


def ramp(rng, spacing, start=4.5, stop=70.0):
    temperature = np.arange(start, stop, spacing)
    return temperature + rng.uniform(-0.2, 0.2, temperature.size) * spacing


def logistic_drop(temperature, midpoint, width_10_90, height):
    """A step of ``height`` falling on cooling, centred on ``midpoint``."""
    scale = width_10_90 / math.log(81.0)
    argument = np.clip((temperature - midpoint) / scale, -60.0, 60.0)
    return -height / (1.0 + np.exp(argument))


def true_onset(midpoint, width_10_90, fraction):
    """Where a logistic drop has fallen ``fraction`` of its height (flat background)."""
    scale = width_10_90 / math.log(81.0)
    return midpoint + scale * math.log(1.0 / fraction - 1.0)


def step_curve(seed, *, spacing, height, width_10_90):
    rng = np.random.default_rng(seed)
    temperature = ramp(rng, spacing)
    midpoint = rng.uniform(15.0, 60.0)
    signal = (NORMAL_LEVEL + logistic_drop(temperature, midpoint, width_10_90, height)
              + NOISE * rng.standard_normal(temperature.size))
    return temperature, signal, true_onset(midpoint, width_10_90, DUDI_ONSET_FRACTION)


def null_curve(seed):
    """White noise on a smooth background: sloped, curved, or slowly drifting."""
    rng = np.random.default_rng(seed)
    temperature = ramp(rng, rng.choice([0.1, 0.25, 0.4]))
    relative = (temperature - temperature.mean()) / np.ptp(temperature)
    slope = rng.uniform(-20.0, 20.0) * np.ptp(temperature)
    background = slope * relative + rng.uniform(-0.5, 0.5) * abs(slope) * relative**2
    return temperature, background + NOISE * rng.standard_normal(temperature.size)


def test_a_sharp_ten_sigma_step_is_found_at_a_coarse_spacing():
    # The legacy detector found 0 of 10 such steps (20 sigma) at 0.4 K.
    found = [find_dudi_transition(*step_curve(seed, spacing=0.4, height=10 * NOISE,
                                              width_10_90=0.01)[:2]).found
             for seed in range(CURVES)]
    assert np.mean(found) >= 0.9, f"{sum(found)} of {CURVES} found"


def test_no_false_alarm_on_smooth_null_curves():
    alarms = [seed for seed in range(1000, 1000 + CURVES)
              if find_dudi_transition(*null_curve(seed)).found]
    assert not alarms, f"false alarms on seeds {alarms}"


def test_no_false_alarm_on_pure_magnesium_with_drift():
    sample = SampleModel("pure_mg")
    for seed in range(5):
        rng = np.random.default_rng(seed)
        temperature = ramp(rng, 0.15)
        drift = np.cumsum(rng.standard_normal(temperature.size)) * 1e-4
        chi = (sample.susceptibility(temperature).real + drift
               + 2e-3 * rng.standard_normal(temperature.size))
        assert not find_susceptibility_transition(temperature, chi).found


def test_the_stated_interval_covers_the_true_onset():
    covered, errors = [], []
    for seed in range(CURVES):
        temperature, signal, truth = step_curve(seed, spacing=0.1, height=30 * NOISE,
                                                width_10_90=1.0)
        transition = find_dudi_transition(temperature, signal)
        assert transition.found, transition.reason
        errors.append(transition.onset - truth)
        covered.append(abs(transition.onset - truth) <= transition.onset_error)
    # Nominally 68 %: a share this far from it would mean the errors are wrong.
    assert 0.5 <= np.mean(covered) <= 0.85, f"coverage {np.mean(covered):.0%}"
    assert abs(np.mean(errors)) < 0.05
    assert np.median(np.abs(errors)) < 0.1


def test_uncertainties_are_finite_when_found_and_nan_when_not():
    temperature, signal, _ = step_curve(7, spacing=0.1, height=20 * NOISE, width_10_90=0.8)
    transition = find_dudi_transition(temperature, signal)
    assert transition.found
    for value in (transition.onset_error, transition.midpoint_error, transition.width_error):
        assert math.isfinite(value) and value > 0
    assert transition.midpoint < transition.onset
    nothing = find_dudi_transition(*null_curve(3))
    assert not nothing.found
    assert all(math.isnan(value) for value in (nothing.onset_error, nothing.midpoint_error,
                                               nothing.width_error))


def test_an_unresolved_step_states_the_sampling_interval_as_its_error():
    temperature = np.arange(4.55, 70.0, 0.4)
    rng = np.random.default_rng(5)
    signal = np.where(temperature < 30.0, -10.0, 0.0) + rng.standard_normal(temperature.size)
    transition = find_step_transition(temperature, signal, onset_fraction=0.1)
    assert transition.found and not transition.resolved
    assert transition.onset_error == pytest.approx(0.34 * 0.4)
    assert abs(transition.onset - 30.0) <= 0.2


def test_the_legacy_detector_stays_callable():
    temperature, signal, truth = step_curve(11, spacing=0.1, height=50 * NOISE, width_10_90=0.5)
    legacy = find_dudi_transition(temperature, signal, method="legacy")
    assert legacy.found
    assert legacy.onset == pytest.approx(truth, abs=0.3)
    assert math.isnan(legacy.onset_error)
    assert METHODS == ("likelihood", "legacy")
    with pytest.raises(ValueError, match="method"):
        find_dudi_transition(temperature, signal, method="bayes")


def test_the_threshold_grows_slowly_with_the_span():
    short, long = detection_threshold(20.0), detection_threshold(65.0)
    assert 3.5 < short < long < 5.0
