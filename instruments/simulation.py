"""Simulation-only diagnostics (``SIM:``): the clock, the noise switch, the model's truth.

A real station serves none of these PVs; tests compare measurements against
this truth.
"""

from __future__ import annotations

from .signal import ACTION, ENUM, FLOAT, MEASUREMENT, READBACK, SETTING, Signal

KIND = "simulation diagnostics"

SPEEDUP_RANGE = (0.1, 1000.0)  # simulated seconds per wall second
TICK_RANGE = (0.01, 1.0)  # wall seconds per simulation step
OFF_ON = ("Off", "On")

SIGNALS = (
    Signal("Speedup_RBV", READBACK, FLOAT, "Simulated seconds per wall second",
           precision=1, limits=SPEEDUP_RANGE),
    Signal("Time_RBV", MEASUREMENT, FLOAT, "Simulated time since start", units="s",
           precision=2),
    Signal("Tick_RBV", READBACK, FLOAT, "Wall period of a simulation step", units="s",
           precision=3, limits=TICK_RANGE),
    Signal("WakeAt", ACTION, FLOAT, "Simulated time a client waits for", units="s",
           precision=3),
    Signal("Noise", SETTING, ENUM, "Simulated noise and drift", choices=OFF_ON),
    Signal("SampleTemp_RBV", MEASUREMENT, FLOAT, "True sample temperature", units="K",
           precision=4),
    Signal("ScFraction_RBV", MEASUREMENT, FLOAT, "Superconducting fraction f_sc",
           precision=5, limits=(0.0, 1.0)),
    Signal("Degradation_RBV", MEASUREMENT, FLOAT, "Degradation theta (integral dt/tau)",
           precision=5),
    Signal("Chi1_RBV", MEASUREMENT, FLOAT, "Noise-free 4 pi chi'", precision=5),
    Signal("Chi2_RBV", MEASUREMENT, FLOAT, "Noise-free 4 pi chi''", precision=5),
    Signal("Dudi_RBV", MEASUREMENT, FLOAT, "Noise-free dU/dI", units="ohm", precision=9),
    Signal("TcChi_RBV", MEASUREMENT, FLOAT, "True chi' onset; NaN when none", units="K",
           precision=3),
    Signal("TcDudi_RBV", MEASUREMENT, FLOAT, "True dU/dI onset; NaN when none", units="K",
           precision=3),
)
"""Every simulation-only signal."""
