"""Draw the example figures of this directory from simulated ramps.

    python docs/figures/make_examples.py [OUTPUT_DIRECTORY]

Curves are the simulator's noise-free sample model at the sample temperature plus the
physics note's noise (susceptometer sigma(4 pi chi) 2e-3 and a 1e-3 drift, transport
lock-in 0.57 uOhm, thermometer 2 mK), read every 6 s (susceptibility) or every 3 s cycling
through four biases (transport) on a 1.5 K/min ramp from 4.5 K to 70 K. Transitions are
found by analysis.transitions and marked; legend labels carry the paper's curve numbers.
"""

import math
import sys
from pathlib import Path

import numpy as np

from tcstation.analysis.figures import Conditions, write_dudi_figure, write_susceptibility_figure
from tcstation.analysis.transitions import (
    curves_by_bias,
    find_susceptibility_transition,
    transitions_by_bias,
)
from tcstation.ioc_sim.sample import SampleModel

HERE = Path(__file__).resolve().parent
MINUTE = 60.0
RATE = 1.5  # K/min
CHI_NOISE, CHI_DRIFT, CHI_DRIFT_TIME = 2e-3, 1e-3, 600.0
DUDI_NOISE = math.sqrt(2) * 15e-9 * math.sqrt(1 / (8 * 0.3)) / 0.024
THERMOMETER_NOISE = 2e-3
BIASES = (0.0, 0.2, 0.3, 0.4)


def ramp(rng: np.random.Generator, seconds_per_reading: float) -> tuple[np.ndarray, np.ndarray]:
    times = np.arange(0.0, (70.0 - 4.5) / RATE * MINUTE, seconds_per_reading)
    return times, 4.5 + RATE * times / MINUTE


def susceptibility_curve(sample: SampleModel, seed: int):
    rng = np.random.default_rng(seed)
    times, temperature = ramp(rng, 6.0)
    drift = np.empty(times.size)
    value = 0.0
    keep = math.exp(-6.0 / CHI_DRIFT_TIME)
    for index in range(times.size):
        value = value * keep + CHI_DRIFT * math.sqrt(1 - keep**2) * rng.standard_normal()
        drift[index] = value
    chi = sample.susceptibility(temperature)
    return (temperature + THERMOMETER_NOISE * rng.standard_normal(times.size),
            chi.real + drift + CHI_NOISE * rng.standard_normal(times.size),
            chi.imag + CHI_NOISE * rng.standard_normal(times.size))


def transport_table(sample: SampleModel, seed: int, biases=BIASES, contacts="surface"):
    rng = np.random.default_rng(seed)
    _, temperature = ramp(rng, 3.0)
    bias = np.resize(np.asarray(biases, dtype=float), temperature.size)
    dudi = np.empty(temperature.size)
    for value in biases:
        rows = bias == value
        dudi[rows] = sample.dynamic_resistance(temperature[rows], bias_current=value,
                                               contacts=contacts)
    return {"temperature": temperature + THERMOMETER_NOISE * rng.standard_normal(bias.size),
            "dudi": dudi + DUDI_NOISE * rng.standard_normal(bias.size), "bias": bias}


def main(output: Path = HERE) -> None:
    curves = {"1: pure Mg": susceptibility_curve(SampleModel("pure_mg"), 1),
              "2: Mg/MgO": susceptibility_curve(SampleModel("mg_mgo"), 2)}
    transitions = {label: find_susceptibility_transition(*curve)
                   for label, curve in curves.items()}
    print(write_susceptibility_figure(
        output / "fig1_susceptibility.png", curves, transitions,
        conditions=Conditions(frequency=1550.0, field=0.2, rate=RATE),
        title="Fig. 1: ac susceptibility of pure Mg (1) and Mg/MgO (2), simulated"))

    fresh, degraded = SampleModel("mg_mgo"), SampleModel("mg_mgo")
    degraded.advance(30 * MINUTE, 295.0)
    surface = transport_table(fresh, 3)
    surface_curves = curves_by_bias(surface)
    surface_transitions = transitions_by_bias(surface)
    dudi_curves = {"1: core contacts, 0 mA": curves_by_bias(
        transport_table(fresh, 4, biases=(0.0,), contacts="core"))[0.0]}
    dudi_transitions, dudi_biases = {}, {}
    for number, (bias, curve) in enumerate(surface_curves.items(), start=2):
        label = f"{number}: surface, {bias * 1e3:.0f} mA"
        dudi_curves[label] = curve
        dudi_transitions[label] = surface_transitions[bias]
        dudi_biases[label] = bias
    degraded_curve = curves_by_bias(transport_table(degraded, 5, biases=(0.0,)))[0.0]
    dudi_curves["6: after 30 min at 295 K, 0 mA"] = degraded_curve
    dudi_transitions["6: after 30 min at 295 K, 0 mA"] = transitions_by_bias(
        transport_table(degraded, 5, biases=(0.0,)))[0.0]
    print(write_dudi_figure(
        output / "fig2_dudi.png", dudi_curves, dudi_transitions,
        lower_panel=["1: core contacts, 0 mA"], biases=dudi_biases,
        conditions=Conditions(frequency=13.0, excitation=0.024, bias=BIASES, rate=RATE),
        title="Fig. 2: dynamic resistance of Mg/MgO, simulated"))
    for bias, transition in surface_transitions.items():
        print(f"{bias * 1e3:5.0f} mA: {transition.reason}")
    for label, transition in transitions.items():
        print(f"{label}: {transition.reason}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
