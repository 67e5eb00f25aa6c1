"""Transition power: detection rate, false alarms and onset accuracy, old detector beside new.

Curves are drawn from the simulator's physics model (:mod:`tcstation.ioc_sim.physics` through
:class:`tcstation.ioc_sim.sample.SampleModel`) on a heating ramp from 4.5 to 70 K, sampled every
0.1, 0.25 or 0.4 K (jittered by a fifth of the spacing), with Gaussian point noise, and
analysed by ``analysis.transitions`` twice: ``method="legacy"`` (the departure scan) and the
default ``method="likelihood"`` (the step model). What is measured:

detection rate
    Share of curves with a transition in which one is found, by family, step height (in
    units of the point noise) and spacing. Families:

    ``dudi_sharp``
        A reference-like logistic step
        (:func:`tcstation.ioc_sim.physics.bulk_superconductor_resistance`, 10-90 % width
        0.01 K) on the surface background at 60 K
        (:func:`tcstation.ioc_sim.physics.surface_background_resistance`), held constant so
        that the truth does not depend on where the normal level is read (the metal's slope, up to 2
        sigma per K, would move a weak step's onset by kelvins), Tc anywhere from 12 to
        62 K.
    ``dudi_broad``
        The same with 10-90 % widths from 0.1 to 2 K.
    ``dudi_junctions``
        The Mg/MgO junction network at zero bias (``SampleModel("mg_mgo")`` with its Tc
        drawn from 15 to 54 K and its Tc spread from 0.05 to 0.6 K).
    ``chi_shell``
        The Mg/MgO interface shell over the Mg core's eddy currents (Tc 40 to 62 K, Tc
        spread 0.05 to 0.8 K, the shielded fraction scaled to the drawn step height) with
        the susceptometer's 2e-3 noise and a slow drift of 1e-3 rms.
    ``chi_shell_low_tc``
        The same with Tc from 15 to 40 K, where the Mg core's chi' falls steeply (0.01 to
        0.03 per K): for a weak shell the 5 % onset level (of the whole drop to 4.5 K, most
        of it the core's) is then reached by the core's own fall, and the onset depends on
        where the normal level is read; shown apart, not in the chi' bias target.

    Step heights are drawn from 5 to 100 times the noise (log-uniform; the table bins them).
false-alarm rate
    Share of null curves (no transition) in which one is found: pure Mg chi' (noise and
    drift), core-contact dU/dI, a sample degraded 30 min at 295 K (chi' and dU/dI), white
    noise on steep linear and quadratic backgrounds (slopes up to 30 sigma per K), and white
    noise plus a slow Ornstein-Uhlenbeck drift (2 sigma rms, 600 s at 1.5 K/min).
onset error and coverage
    Found onset minus the truth of the noise-free model: ``SampleModel.true_onsets`` for the
    Mg/MgO families, the same 10 % criterion applied to the noise-free curve for the
    logistic families (normal level 0.5 K above the step's 1 % point). Coverage: share of
    found curves whose truth lies within ``onset +- onset_error`` (the stated 68 %
    interval; the legacy detector states none).

Targets (issue 16): >= 95 % detection of a sharp dU/dI step of 10x the noise at 0.4 K
spacing; <= 1 % false alarms per null curve; median onset error <= 0.1 K for steps of 30x
the noise (25 to 40x); chi' onset bias (mean error) <= 0.05 K; coverage 60 to 75 %.

``--calibrate N`` instead repeats the calibration of the threshold on N white-noise null
curves for each span (15 to 130 K) and spacing (0.03 to 0.4 K).

    python benchmarks/transition_power.py [--quick] [--seeds N] [--json PATH] [--calibrate N]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from tcstation.analysis import step_likelihood
from tcstation.analysis.transitions import (
    DEFAULT_CRITERIA,
    DUDI_ONSET_FRACTION,
    detection_threshold,
    find_dudi_transition,
    find_susceptibility_transition,
    point_noise,
)
from tcstation.ioc_sim import physics
from tcstation.ioc_sim.sample import SampleModel

METHODS = ("legacy", "likelihood")
SPACINGS = (0.1, 0.25, 0.4)  # K
RAMP = (4.5, 70.0)  # K
RATE = 1.5  # K/min, for the drift's correlation in temperature
CHI_NOISE, CHI_DRIFT, DRIFT_TIME = 2e-3, 1e-3, 600.0
DUDI_NOISE = math.sqrt(2) * 15e-9 * math.sqrt(1 / (8 * 0.3)) / 0.024
"""ohm: SR830 input noise at 13 Hz over 300 ms / 12 dB with a 24 mA amplitude."""
HEIGHT_RANGE = (5.0, 100.0)
HEIGHT_BINS = ((5.0, 8.0), (8.0, 12.0), (12.0, 25.0), (25.0, 40.0), (40.0, 100.0))
HEADLINE_HEIGHT = 10.0
"""The power target's step, in units of the noise (drawn exactly, not from the range)."""
ROOM_TEMPERATURE, MINUTE = 295.0, 60.0
FULL_SEEDS, QUICK_SEEDS = 24, 3


@dataclass
class Curve:
    family: str
    spacing: float
    temperature: np.ndarray
    signal: np.ndarray
    measurement: str
    """"chi" or "dudi"."""
    truth: float = math.nan
    """K, the true onset (nan for a null curve)."""
    height: float = math.nan
    """Step in units of the point noise."""
    results: dict = field(default_factory=dict)
    """By method: (found, onset, onset_error, seconds)."""


def ramp(rng: np.random.Generator, spacing: float) -> np.ndarray:
    temperature = np.arange(RAMP[0], RAMP[1], spacing)
    return temperature + rng.uniform(-0.2, 0.2, temperature.size) * spacing


def drift(rng: np.random.Generator, temperature: np.ndarray, rms: float) -> np.ndarray:
    """Ornstein-Uhlenbeck drift at the ramp's times (correlation time ``DRIFT_TIME`` s)."""
    times = (temperature - temperature[0]) / RATE * MINUTE
    keep = np.exp(-np.diff(times, prepend=times[0]) / DRIFT_TIME)
    values = np.empty(times.size)
    value = rms * rng.standard_normal()
    for index in range(times.size):
        value = value * keep[index] + rms * math.sqrt(1 - keep[index]**2) * rng.standard_normal()
        values[index] = value
    return values


def onset_of_curve(temperature: np.ndarray, curve: np.ndarray, normal_temperature: float,
                   fraction: float) -> float:
    """Highest temperature below ``normal_temperature`` where the noise-free curve has
    fallen ``fraction`` of (its value there minus its value at the lowest point)."""
    normal = float(np.interp(normal_temperature, temperature, curve))
    target = normal - fraction * (normal - curve[0])
    below = np.flatnonzero((temperature <= normal_temperature) & (curve <= target))
    index = below[-1]
    return float(np.interp(target, curve[index:index + 2][::-1],
                           temperature[index:index + 2][::-1]))


def logistic_step_curve(rng, spacing, height, width_10_90, family):
    """dU/dI: metallic surface background plus a reference-like logistic step."""
    temperature = ramp(rng, spacing)
    scale = width_10_90 / math.log(81.0)
    tc = rng.uniform(12.0, 62.0)
    reference = physics.BulkSuperconductor(tc=tc, transition_width=scale, rho_295=1e-7,
                                           residual_resistance_ratio=10.0,
                                           debye_temperature=300.0,
                                           normal_resistance=height * DUDI_NOISE)

    def clean(values):
        return (physics.surface_background_resistance(physics.JunctionNetwork()
                                                      .background_reference_temperature)
                + physics.bulk_superconductor_resistance(values, reference))

    fine = np.arange(RAMP[0], RAMP[1], 0.001)
    midpoint = tc - scale * math.log(19.0)
    truth = onset_of_curve(fine, clean(fine), midpoint + scale * math.log(99.0) + 0.5,
                           DUDI_ONSET_FRACTION)
    signal = clean(temperature) + DUDI_NOISE * rng.standard_normal(temperature.size)
    return Curve(family, spacing, temperature, signal, "dudi", truth, height)


def junction_curve(rng, spacing, height):
    """dU/dI of the Mg/MgO junction network at zero bias, Tc and spread drawn."""
    junctions = physics.JunctionNetwork(tc=rng.uniform(15.0, 54.0),
                                        tc_sigma=rng.uniform(0.05, 0.6))
    sample = SampleModel("mg_mgo", junctions=junctions)
    truth = sample.true_onsets()
    noise = truth["dudi_step_zero_bias"] / height
    temperature = ramp(rng, spacing)
    signal = (sample.dynamic_resistance(temperature)
              + noise * rng.standard_normal(temperature.size))
    return Curve("dudi_junctions", spacing, temperature, signal, "dudi", truth["dudi_onset"],
                 height)


def shell_curve(rng, spacing, height, tc_range=(40.0, 62.0), family="chi_shell"):
    """4 pi chi' of the Mg/MgO shell over the Mg core, the drop scaled to ``height`` noise."""
    tc, sigma = rng.uniform(*tc_range), rng.uniform(0.05, 0.8)
    full = SampleModel("mg_mgo", shell=physics.InterfaceShell(tc=tc, tc_sigma=sigma,
                                                              shielded_fraction=1.0))
    core = SampleModel("pure_mg")
    full_drop = float(np.real(full.susceptibility(RAMP[0])
                              - core.susceptibility(RAMP[0])))
    fraction = min(1.0, height * CHI_NOISE / abs(full_drop))
    sample = SampleModel("mg_mgo", shell=physics.InterfaceShell(
        tc=tc, tc_sigma=sigma, shielded_fraction=fraction))
    temperature = ramp(rng, spacing)
    signal = (np.real(sample.susceptibility(temperature))
              + CHI_NOISE * rng.standard_normal(temperature.size)
              + drift(rng, temperature, CHI_DRIFT))
    return Curve(family, spacing, temperature, signal, "chi",
                 sample.true_onsets()["chi_onset"], fraction * abs(full_drop) / CHI_NOISE)


def null_curves(rng, spacing):
    """One curve of each null family."""
    temperature = ramp(rng, spacing)
    degraded = SampleModel("mg_mgo")
    degraded.advance(30 * MINUTE, ROOM_TEMPERATURE)
    chi_noise = CHI_NOISE * rng.standard_normal(temperature.size)
    pure = np.real(SampleModel("pure_mg").susceptibility(temperature))
    curves = [
        Curve("null_pure_mg_chi", spacing, temperature,
              pure + chi_noise + drift(rng, temperature, CHI_DRIFT), "chi"),
        Curve("null_degraded_chi", spacing, temperature,
              np.real(degraded.susceptibility(temperature))
              + CHI_NOISE * rng.standard_normal(temperature.size)
              + drift(rng, temperature, CHI_DRIFT), "chi"),
        Curve("null_core_dudi", spacing, temperature,
              SampleModel("mg_mgo").dynamic_resistance(temperature, contacts="core")
              + DUDI_NOISE * rng.standard_normal(temperature.size), "dudi"),
        Curve("null_degraded_dudi", spacing, temperature,
              degraded.dynamic_resistance(temperature)
              + DUDI_NOISE * rng.standard_normal(temperature.size), "dudi"),
    ]
    relative = (temperature - temperature.mean()) / np.ptp(temperature)
    slope = rng.uniform(-30.0, 30.0) * np.ptp(temperature)
    curvature = rng.uniform(-1.0, 1.0) * 0.5 * abs(slope)
    curves.append(Curve("null_sloped", spacing, temperature,
                        slope * relative + curvature * relative**2
                        + rng.standard_normal(temperature.size), "dudi"))
    curves.append(Curve("null_drift", spacing, temperature,
                        rng.standard_normal(temperature.size) + drift(rng, temperature, 2.0),
                        "dudi"))
    return curves


def draw(seeds: int, first_seed: int = 0) -> list[Curve]:
    """All curves of ``seeds`` seeds: for each seed and spacing, one curve per family."""
    curves = []
    for seed in range(first_seed, first_seed + seeds):
        for spacing in SPACINGS:
            rng = np.random.default_rng([seed, int(1000 * spacing)])
            heights = np.exp(rng.uniform(*np.log(HEIGHT_RANGE), size=5))
            curves.append(logistic_step_curve(rng, spacing, HEADLINE_HEIGHT, 0.01,
                                              "dudi_sharp_10x"))
            curves.append(logistic_step_curve(rng, spacing, heights[0], 0.01, "dudi_sharp"))
            curves.append(logistic_step_curve(rng, spacing, heights[1], rng.uniform(0.1, 2.0),
                                              "dudi_broad"))
            curves.append(junction_curve(rng, spacing, heights[2]))
            curves.append(shell_curve(rng, spacing, heights[3]))
            curves.append(shell_curve(rng, spacing, heights[4], (15.0, 40.0),
                                      "chi_shell_low_tc"))
            curves.extend(null_curves(rng, spacing))
    return curves


def analyse(curve: Curve) -> None:
    for method in METHODS:
        started = time.perf_counter()
        if curve.measurement == "chi":
            transition = find_susceptibility_transition(curve.temperature, curve.signal,
                                                        method=method)
        else:
            transition = find_dudi_transition(curve.temperature, curve.signal, method=method)
        curve.results[method] = (transition.found, transition.onset, transition.onset_error,
                                 time.perf_counter() - started)


def _rate(values: list[bool]) -> str:
    return f"{np.mean(values):6.1%} ({sum(values)}/{len(values)})" if values else "-"


def summarise(curves: list[Curve]) -> dict:
    """Figures by method: detection, false alarms, errors, coverage, time."""
    summary: dict = {method: {} for method in METHODS}
    for method in METHODS:
        figures = summary[method]
        signals = [c for c in curves if math.isfinite(c.truth)]
        nulls = [c for c in curves if not math.isfinite(c.truth)]
        figures["detection"] = {}
        for family in sorted({c.family for c in signals}):
            for spacing in SPACINGS:
                for low, high in HEIGHT_BINS:
                    cell = [c.results[method][0] for c in signals
                            if c.family == family and c.spacing == spacing
                            and low <= c.height < high]
                    if cell:
                        figures["detection"][(family, spacing, f"{low:g}-{high:g}")] = cell
        figures["false_alarms"] = {family: [c.results[method][0] for c in nulls
                                            if c.family == family]
                                   for family in sorted({c.family for c in nulls})}
        figures["all_null"] = [c.results[method][0] for c in nulls]
        found = [c for c in signals if c.results[method][0]]
        errors = {c.family: [] for c in found}
        for c in found:
            errors[c.family].append(c.results[method][1] - c.truth)
        figures["errors"] = errors
        thirty = [abs(c.results[method][1] - c.truth) for c in found if 25 <= c.height < 40]
        figures["median_error_30x"] = float(np.median(thirty)) if thirty else math.nan
        figures["p90_error_30x"] = float(np.quantile(thirty, 0.9)) if thirty else math.nan
        chi = errors.get("chi_shell", [])
        figures["chi_bias"] = float(np.mean(chi)) if chi else math.nan
        stated = [c for c in found if math.isfinite(c.results[method][2])]
        figures["coverage"] = [abs(c.results[method][1] - c.truth) <= c.results[method][2]
                               for c in stated if c.family != "chi_shell_low_tc"]
        figures["coverage_by_family"] = {
            family: [abs(c.results[method][1] - c.truth) <= c.results[method][2]
                     for c in stated if c.family == family]
            for family in sorted({c.family for c in stated})}
        figures["seconds"] = [c.results[method][3] for c in curves]
        figures["headline"] = [c.results[method][0] for c in signals
                               if c.family == "dudi_sharp_10x" and c.spacing == 0.4]
    return summary


def report(curves: list[Curve], summary: dict, seeds: int, wall: float) -> list[dict]:
    print(f"# Transition power, {time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, "
          f"Python {platform.python_version()}; {seeds} seeds x {len(SPACINGS)} spacings, "
          f"{len(curves)} curves, {wall:.0f} s")
    legacy, new = summary["legacy"], summary["likelihood"]
    print(f"{'detection rate':44s}{'legacy':>18s}{'likelihood':>18s}")
    for key in new["detection"]:
        family, spacing, heights = key
        label = f"{family} {spacing:g} K, {heights}x"
        print(f"  {label:42s}{_rate(legacy['detection'][key]):>18s}"
              f"{_rate(new['detection'][key]):>18s}")
    print(f"{'false alarms per null curve':44s}")
    for family in new["false_alarms"]:
        print(f"  {family:42s}{_rate(legacy['false_alarms'][family]):>18s}"
              f"{_rate(new['false_alarms'][family]):>18s}")
    print(f"  {'all null curves':42s}{_rate(legacy['all_null']):>18s}"
          f"{_rate(new['all_null']):>18s}")
    print("onset error (found - truth), K: mean / median |err| / 90 % |err|")
    for family in sorted(set(legacy["errors"]) | set(new["errors"])):
        cells = []
        for figures in (legacy, new):
            values = np.array(figures["errors"].get(family, []))
            cells.append(f"{values.mean():+.3f}/{np.median(np.abs(values)):.3f}/"
                         f"{np.quantile(np.abs(values), 0.9):.3f}" if values.size else "-")
        print(f"  {family:42s}{cells[0]:>18s}{cells[1]:>18s}")
    print(f"  {'median |err|, steps 25-40x':42s}{legacy['median_error_30x']:18.3f}"
          f"{new['median_error_30x']:18.3f}")
    print(f"  {'chi_shell bias (mean err)':42s}{legacy['chi_bias']:+18.3f}"
          f"{new['chi_bias']:+18.3f}")
    for family, covered in new["coverage_by_family"].items():
        print(f"  {'coverage, ' + family:42s}{'none stated':>18s}{_rate(covered):>18s}")
    print(f"  {'coverage of onset +- onset_error':42s}{'none stated':>18s}"
          f"{_rate(new['coverage']):>18s}")
    for method in METHODS:
        for spacing in SPACINGS:
            seconds = np.array([c.results[method][3] for c in curves if c.spacing == spacing])
            points = int(np.median([c.temperature.size for c in curves if c.spacing == spacing]))
            print(f"  time per curve, {method} {spacing:g} K ({points} points)".ljust(44)
                  + f"median {1e3 * np.median(seconds):.1f} ms, max {1e3 * seconds.max():.1f} ms")
    results = [
        {"what": "detection of a sharp 10x dU/dI step at 0.4 K spacing",
         "legacy": float(np.mean(legacy["headline"])), "value": float(np.mean(new["headline"])),
         "target": ">= 95 %", "met": bool(np.mean(new["headline"]) >= 0.95)},
        {"what": "false alarms per null curve", "legacy": float(np.mean(legacy["all_null"])),
         "value": float(np.mean(new["all_null"])), "target": "<= 1 %",
         "met": bool(np.mean(new["all_null"]) <= 0.01)},
        {"what": "median onset error, steps 25-40x noise (K)",
         "legacy": legacy["median_error_30x"], "value": new["median_error_30x"],
         "target": "<= 0.1 K", "met": bool(new["median_error_30x"] <= 0.1)},
        {"what": "chi' onset bias (K)", "legacy": legacy["chi_bias"], "value": new["chi_bias"],
         "target": "|bias| <= 0.05 K", "met": bool(abs(new["chi_bias"]) <= 0.05)},
        {"what": "coverage of the 68 % onset interval", "legacy": None,
         "value": float(np.mean(new["coverage"])), "target": "60-75 %",
         "met": bool(0.60 <= np.mean(new["coverage"]) <= 0.75)},
    ]
    for figure in results:
        legacy_text = "-" if figure["legacy"] is None else f"{figure['legacy']:.3g}"
        figure["text"] = f"legacy {legacy_text}, likelihood {figure['value']:.3g}"
        print(f"{figure['what']}: {figure['text']}  "
              f"[target {figure['target']}: {'met' if figure['met'] else 'MISSED'}]")
    return results


CALIBRATION_SPANS = (15.0, 30.0, 65.0, 130.0)  # K
CALIBRATION_SPACINGS = (0.03, 0.1, 0.25, 0.4)  # K


def calibrate(curves_per_cell: int) -> None:
    """The likelihood detector's scan statistic on white-noise null curves, by span and
    spacing: its 99 % quantile and the share above the threshold (designed for 0.2 %)."""
    rng = np.random.default_rng(20261203)
    print(f"# Calibration of the scan threshold, {curves_per_cell} white-noise curves per cell")
    print(f"{'span K':>8s}{'spacing K':>10s}{'q99 z':>8s}{'threshold':>10s}{'above':>8s}")
    for span in CALIBRATION_SPANS:
        threshold = detection_threshold(span)
        for spacing in CALIBRATION_SPACINGS:
            statistics = []
            for _ in range(curves_per_cell):
                temperature = np.sort(rng.uniform(10.0, 10.0 + span, int(span / spacing)))
                signal = rng.standard_normal(temperature.size)
                scan = step_likelihood.scan(temperature, signal,
                                            point_noise(temperature, signal),
                                            DEFAULT_CRITERIA.window_half_width)
                statistics.append(scan.statistic if scan is not None else -math.inf)
            statistics = np.array(statistics)
            print(f"{span:8g}{spacing:10g}{np.quantile(statistics, 0.99):8.2f}"
                  f"{threshold:10.2f}{np.mean(statistics >= threshold):8.2%}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SEEDS} seeds (under a minute) instead of {FULL_SEEDS}")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--calibrate", type=int, default=0, metavar="N",
                        help="instead: the threshold on N white-noise curves per span/spacing")
    options = parser.parse_args(argv)
    if options.calibrate:
        calibrate(options.calibrate)
        return 0
    seeds = options.seeds or (QUICK_SEEDS if options.quick else FULL_SEEDS)
    started = time.perf_counter()
    curves = draw(seeds, options.first_seed)
    for curve in curves:
        analyse(curve)
    summary = summarise(curves)
    figures = report(curves, summary, seeds, time.perf_counter() - started)
    if options.json:
        with open(options.json, "w") as stream:
            json.dump({"benchmark": "transition_power", "title": "Transition power",
                       "conditions": f"{seeds} seeds, spacings {SPACINGS} K",
                       "figures": figures}, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
