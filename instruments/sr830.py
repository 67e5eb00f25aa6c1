"""SR830 dual-phase lock-in amplifier.

PV suffixes are the instrument's own remote-command mnemonics (SR830 manual,
chapter 5). ``SENS``, ``OFLT`` and ``OFSL`` take an index into the tables
below, the instrument's own indices. ``SENS`` and ``OFLT`` are served as
integers, not enums: Channel Access enums hold at most 16 states.
"""

from __future__ import annotations

from .signal import (
    ACTION,
    ENUM,
    FLOAT,
    INT,
    MEASUREMENT,
    READBACK,
    SETTING,
    Signal,
)

KIND = "SR830"

SENSITIVITIES: tuple[float, ...] = (
    2e-9, 5e-9, 10e-9, 20e-9, 50e-9, 100e-9, 200e-9, 500e-9,
    1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6,
    1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1.0,
)
"""Full-scale sensitivity (V rms) of ``SENS`` index 0 .. 26."""
TIME_CONSTANTS: tuple[float, ...] = (
    10e-6, 30e-6, 100e-6, 300e-6, 1e-3, 3e-3, 10e-3, 30e-3, 100e-3, 300e-3,
    1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 10e3, 30e3,
)
"""Output-filter time constant (s) of ``OFLT`` index 0 .. 19."""
SLOPES_DB: tuple[int, ...] = (6, 12, 18, 24)
"""Output-filter slope (dB/oct) of ``OFSL`` index 0 .. 3."""
SLOPE_NAMES = tuple(f"{db} dB/oct" for db in SLOPES_DB)
SETTLE_TIME_CONSTANTS: dict[int, float] = {6: 5.0, 12: 7.0, 18: 9.0, 24: 10.0}
"""Time constants for the output to settle to 99 % after a step, by slope (SR830 manual)."""

FREQUENCY_RANGE = (1e-3, 102e3)  # Hz; times the harmonic, at most the upper end
AMPLITUDE_RANGE = (0.004, 5.0)  # V rms, sine out
PHASE_RANGE = (-360.0, 729.99)  # deg
HARMONIC_RANGE = (1, 19999)
SENSITIVITY_INDICES = (0, len(SENSITIVITIES) - 1)
TIME_CONSTANT_INDICES = (0, len(TIME_CONSTANTS) - 1)
OUTPUT_RANGE = (-1.0, 1.0)  # V rms: the largest full scale
THETA_RANGE = (-180.0, 180.0)  # deg
NO_YES = ("No", "Yes")

SIGNALS = (
    Signal("FREQ", SETTING, FLOAT, "Reference frequency", units="Hz", precision=3,
           limits=FREQUENCY_RANGE, command="FREQ <Hz>", query="FREQ?"),
    Signal("SLVL", SETTING, FLOAT, "Sine-out amplitude", units="V", precision=3,
           limits=AMPLITUDE_RANGE, command="SLVL <V>", query="SLVL?"),
    Signal("PHAS", SETTING, FLOAT, "Reference phase", units="deg", precision=2,
           limits=PHASE_RANGE, command="PHAS <deg>", query="PHAS?"),
    Signal("HARM", SETTING, INT, "Detection harmonic", limits=HARMONIC_RANGE,
           command="HARM <i>", query="HARM?"),
    Signal("SENS", SETTING, INT, "Sensitivity index, 0 2 nV to 26 1 V",
           limits=SENSITIVITY_INDICES, command="SENS <i>", query="SENS?"),
    Signal("SENS:Value_RBV", READBACK, FLOAT, "Sensitivity, V full scale", units="V",
           limits=(SENSITIVITIES[0], SENSITIVITIES[-1]), query="SENS? (table)"),
    Signal("OFLT", SETTING, INT, "Time constant index, 0 10 us to 19 30 ks",
           limits=TIME_CONSTANT_INDICES, command="OFLT <i>", query="OFLT?"),
    Signal("OFLT:Value_RBV", READBACK, FLOAT, "Time constant", units="s",
           limits=(TIME_CONSTANTS[0], TIME_CONSTANTS[-1]), query="OFLT? (table)"),
    Signal("OFSL", SETTING, ENUM, "Low-pass filter slope", choices=SLOPE_NAMES,
           command="OFSL <i>", query="OFSL?"),
    Signal("X", MEASUREMENT, FLOAT, "In-phase output", units="V", precision=9,
           limits=OUTPUT_RANGE, query="OUTP? 1"),
    Signal("Y", MEASUREMENT, FLOAT, "Quadrature output", units="V", precision=9,
           limits=OUTPUT_RANGE, query="OUTP? 2"),
    Signal("R", MEASUREMENT, FLOAT, "Magnitude", units="V", precision=9,
           limits=(0.0, OUTPUT_RANGE[1] * 2**0.5), query="OUTP? 3"),
    Signal("THETA", MEASUREMENT, FLOAT, "Phase of the signal", units="deg", precision=3,
           limits=THETA_RANGE, query="OUTP? 4"),
    Signal("OVLD", MEASUREMENT, ENUM, "Input or output overload", choices=NO_YES,
           query="LIAS? bits 0 to 2"),
    Signal("AGAN", ACTION, INT, "Auto-gain: put 1 to choose SENS", limits=(0, 1),
           command="AGAN"),
)
"""Every signal of one lock-in."""


def format_sensitivity(volts: float) -> str:
    """Front-panel text of a sensitivity, e.g. ``'500 uV'``."""
    for scale, unit in ((1.0, "V"), (1e-3, "mV"), (1e-6, "uV"), (1e-9, "nV")):
        if volts >= scale:
            return f"{volts / scale:g} {unit}"
    return f"{volts:g} V"


def format_time_constant(seconds: float) -> str:
    """Front-panel text of a time constant, e.g. ``'300 ms'``."""
    for scale, unit in ((1e3, "ks"), (1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if seconds >= scale:
            return f"{seconds / scale:g} {unit}"
    return f"{seconds:g} s"
