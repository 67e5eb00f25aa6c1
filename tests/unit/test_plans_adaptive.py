"""The adaptive ramp's rate rule on synthetic curves: fast, slow once a step develops, fast again.

Deterministic: seeded noise, no IOC, no RunEngine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tcstation.plans.adaptive import StepEvidenceRule, developing_step_z
from tcstation.plans.validation import PlanArgumentError, adaptive_rates

NOISE = 1e-6  # ohm
STEP = 2e-3  # ohm
ONSET_REGION = 50.0  # K, the logistic's centre


def curve(temperature, centre=ONSET_REGION, width=0.4, step=STEP):
    """A drop-on-cooling dU/dI: a gently rising normal state, a logistic step below ``centre``."""
    normal = 3e-3 + 2e-7 * (temperature - 40.0) + 5e-9 * (temperature - 40.0) ** 2
    return normal - step / (1.0 + np.exp((temperature - centre) / width))


UNCAPPED = {"lookout_spacing": 100.0, "transition_spacing": 100.0}
"""These feeds take fixed temperatures whatever the rate, so the cadence they imply is no
ramp's: the spacing caps are left out here and tested on their own, with feeds that follow
the rate."""


def feed(rule, temperatures, values, bias=None):
    """Rates the rule asks for, as (temperature, rate), and the rate at every point."""
    changes, rates = [], []
    for temperature, value in zip(temperatures, values, strict=True):
        data = {"T": float(temperature), "y": float(value)}
        if bias is not None:
            data["b"] = bias
        new = rule(data)
        if new is not None:
            changes.append((float(temperature), new))
        rates.append(rule.rate)
    return changes, np.array(rates)


def test_flat_curve_stays_fast():
    rng = np.random.default_rng(1)
    temperatures = np.arange(10.0, 70.0, 0.5)
    values = 3e-3 + 2e-7 * temperatures + NOISE * rng.standard_normal(temperatures.size)
    rule = StepEvidenceRule("y", "T", fast=5.0, slow=1.5, **UNCAPPED)
    changes, rates = feed(rule, temperatures, values)
    assert changes == [] and (rates == 5.0).all(), rule.decisions


def test_slow_once_a_step_develops_and_fast_again_after_it():
    rng = np.random.default_rng(2)
    temperatures = np.arange(30.0, 70.0, 0.4)
    values = curve(temperatures) + NOISE * rng.standard_normal(temperatures.size)
    rule = StepEvidenceRule("y", "T", fast=5.0, slow=1.5, **UNCAPPED)
    changes, rates = feed(rule, temperatures, values)
    assert [rate for _, rate in changes] == [1.5, 5.0], rule.decisions
    (slowed_at, _), (sped_up_at, _) = changes
    # The rise is seen a few points above the step's 1 % point (1.8 K below its centre),
    # before 10 % of it (0.9 K below the centre).
    assert ONSET_REGION - 4.0 < slowed_at < ONSET_REGION - 0.9
    # The onset (10 % of the step below the normal level) is 0.9 K above the centre: fast
    # again only once the 3.5 K above it are flat, and not long after.
    onset = ONSET_REGION + 0.4 * math.log(9.0)
    assert onset + 3.5 <= sped_up_at < onset + 6.0
    assert (rates[(temperatures > slowed_at) & (temperatures < sped_up_at)] == 1.5).all()
    assert (rates[temperatures > sped_up_at] == 5.0).all()
    (passed,) = rule.curves[0.0].passed
    assert passed[2] == pytest.approx(STEP, rel=0.05)


def test_every_bias_is_its_own_curve_and_a_second_transition_slows_again():
    rng = np.random.default_rng(3)
    temperatures = np.arange(30.0, 69.0, 0.3)
    rule = StepEvidenceRule("y", "T", bias_field="b", fast=5.0, slow=1.5, **UNCAPPED)
    rates = []
    for temperature in temperatures:
        for bias, centre in ((0.0, 52.0), (0.4, 40.0)):
            value = curve(temperature, centre) + NOISE * rng.standard_normal()
            rule({"T": temperature, "y": value, "b": bias})
        rates.append(rule.rate)
    rates = np.array(rates)
    slow_spans = np.diff(np.r_[0, (rates == 1.5).astype(int), 0])
    assert np.count_nonzero(slow_spans == 1) == 2, rule.decisions
    assert "400 mA curve" in rule.decisions[0].reason
    assert {key: len(state.passed) for key, state in rule.curves.items()} == {0.0: 1, 0.4: 1}


def test_developing_step_z_is_small_on_noise_and_large_on_a_rise():
    rng = np.random.default_rng(4)
    temperatures = np.arange(40.0, 46.0, 0.5)
    flat = 3e-3 + NOISE * rng.standard_normal(temperatures.size)
    null = [developing_step_z(temperatures, 3e-3 + NOISE * rng.standard_normal(temperatures.size))
            for _ in range(300)]
    assert max(null) < 5.0
    rising = flat + np.where(temperatures > 44.6, 30 * NOISE * (temperatures - 44.6), 0.0)
    assert developing_step_z(temperatures, rising) > 10.0
    assert developing_step_z(temperatures[:5], flat[:5]) == -math.inf


def test_smooth_metallic_background_is_no_step():
    """A T^5 rise that a quadratic misses does not steepen the curve threefold at once."""
    temperatures = np.arange(10.0, 40.0, 0.5)
    values = 3e-3 + 1e-12 * temperatures**5
    rule = StepEvidenceRule("y", "T", **UNCAPPED)
    changes, _ = feed(rule, temperatures, values)
    assert changes == [], rule.decisions


def test_rates_are_checked_with_the_allowed_ranges():
    assert adaptive_rates(5.0, 1.5) == (5.0, 1.5)
    with pytest.raises(PlanArgumentError, match=r"fast = 8 K/min .* 0.1 to 5"):
        adaptive_rates(8.0, 1.5)
    with pytest.raises(PlanArgumentError, match="must be below fast"):
        adaptive_rates(1.0, 1.5)
    with pytest.raises(ValueError, match="slow"):
        StepEvidenceRule("y", "T", fast=1.0, slow=2.0)


def test_fast_rate_is_capped_at_the_lookout_spacing_of_the_measured_cadence():
    """Readings every 12 s, four curves: a point every 1.5 K per curve allows 1.875 K/min."""
    rng = np.random.default_rng(5)
    rule = StepEvidenceRule("y", "T", bias_field="b", fast=5.0, slow=1.0)
    temperature, minutes_per_reading = 10.0, 0.2
    for _ in range(200):
        for bias in (0.0, 0.2, 0.3, 0.4):
            rule({"T": temperature, "y": 3e-3 + NOISE * rng.standard_normal(), "b": bias})
            temperature += rule.rate * minutes_per_reading
    assert rule.rate == pytest.approx(1.5 / (4 * minutes_per_reading))
    assert all(state.state == "quiet" for state in rule.curves.values())
    assert "a point every 1.5 K" in rule.decisions[0].reason


def test_slow_rate_is_lowered_to_the_transition_spacing_when_readings_come_slowly():
    """Readings every 12 s, four curves: a point every 0.25 K per curve allows 0.3125 K/min."""
    rng = np.random.default_rng(6)
    rule = StepEvidenceRule("y", "T", bias_field="b", fast=5.0, slow=1.5)
    temperature, minutes_per_reading, rates = 10.0, 0.2, []
    while temperature < 40.0:
        for bias in (0.0, 0.2, 0.3, 0.4):
            value = (curve(temperature, centre=30.0) if bias == 0.4 else 3e-3)
            rule({"T": temperature, "y": value + NOISE * rng.standard_normal(), "b": bias})
            temperature += rule.rate * minutes_per_reading
            rates.append(rule.rate)
    assert rule.curves[0.4].passed, rule.decisions
    assert min(rates) == pytest.approx(0.25 / (4 * minutes_per_reading))
    assert rates[-1] == pytest.approx(1.5 / (4 * minutes_per_reading)), "fast again after it"


def test_the_other_curves_are_watched_alongside_a_developing_one():
    """Once the 400 mA curve develops, the 0 mA one is watched too; flat, it holds nothing."""
    rng = np.random.default_rng(7)
    rule = StepEvidenceRule("y", "T", bias_field="b", fast=5.0, slow=1.5, **UNCAPPED)
    watched_alongside = False
    rates = []
    for temperature in np.arange(30.0, 60.0, 0.3):
        for bias in (0.0, 0.4):
            value = (curve(temperature, centre=40.0) if bias == 0.4 else 3e-3)
            rule({"T": temperature, "y": value + NOISE * rng.standard_normal(), "b": bias})
            watched_alongside |= rule.curves[0.0].alongside
        rates.append((float(temperature), rule.rate))
    assert watched_alongside, rule.decisions
    ((first_seen, passed_at, _),) = rule.curves[0.4].passed
    slow_at = [temperature for temperature, rate in rates if rate == 1.5]
    assert slow_at and max(slow_at) <= passed_at + 1.0, rule.decisions
    assert rule.curves[0.0].state == "quiet" and not rule.curves[0.0].passed, rule.decisions
