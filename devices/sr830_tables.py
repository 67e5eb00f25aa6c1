"""The SR830's discrete settings and the settling of its output filter.

The indices are the instrument's own (SR830 manual, chapter 5): ``SENS i``,
``OFLT i`` and ``OFSL i`` take an index into these tables, so a device that
holds an index can name the setting without asking the IOC.
"""

from __future__ import annotations

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

SETTLE_TIME_CONSTANTS: dict[int, float] = {6: 5.0, 12: 7.0, 18: 9.0, 24: 10.0}
"""Time constants for the output to settle to 99 % after a step, by slope (SR830 manual)."""

FREQUENCY_RANGE = (1e-3, 102e3)  # Hz
AMPLITUDE_RANGE = (0.004, 5.0)  # V rms, sine out
PHASE_RANGE = (-360.0, 729.99)  # deg
HARMONIC_RANGE = (1, 19999)


def settle_time(time_constant_index: int, slope_index: int) -> float:
    """Time (s) for the output filter to settle to 99 % after a step.

    Parameters
    ----------
    time_constant_index : int
        ``OFLT`` index, 0 (10 us) to 19 (30 ks).
    slope_index : int
        ``OFSL`` index, 0 (6 dB/oct) to 3 (24 dB/oct).

    Returns
    -------
    float
        5, 7, 9 or 10 time constants for 6, 12, 18 or 24 dB/oct.

    Raises
    ------
    ValueError
        If either index is outside its table.
    """
    time_constant = TIME_CONSTANTS[_checked_index(time_constant_index, TIME_CONSTANTS, "OFLT")]
    slope_db = SLOPES_DB[_checked_index(slope_index, SLOPES_DB, "OFSL")]
    return SETTLE_TIME_CONSTANTS[slope_db] * time_constant


def sensitivity_index_for(magnitude: float, headroom: float) -> int:
    """The most sensitive ``SENS`` index whose full scale holds ``magnitude`` with headroom.

    Parameters
    ----------
    magnitude : float
        Signal magnitude, V rms (>= 0).
    headroom : float
        Fraction of full scale the signal may use, in (0, 1].

    Returns
    -------
    int
        The smallest index with ``magnitude <= headroom * SENSITIVITIES[index]``, or the
        last index if none holds it.
    """
    if not 0.0 < headroom <= 1.0:
        raise ValueError(f"headroom {headroom!r} is outside (0, 1]")
    for index, full_scale in enumerate(SENSITIVITIES):
        if abs(magnitude) <= headroom * full_scale:
            return index
    return len(SENSITIVITIES) - 1


def format_sensitivity(index: int) -> str:
    """Front-panel text of a ``SENS`` index, e.g. ``'500 uV'``."""
    volts = SENSITIVITIES[_checked_index(index, SENSITIVITIES, "SENS")]
    for scale, unit in ((1.0, "V"), (1e-3, "mV"), (1e-6, "uV"), (1e-9, "nV")):
        if volts >= scale:
            return f"{volts / scale:g} {unit}"
    return f"{volts:g} V"


def _checked_index(index, table, command: str) -> int:
    whole = int(index)
    if whole != index or not 0 <= whole < len(table):
        raise ValueError(f"{command} index {index!r} is outside 0 to {len(table) - 1}")
    return whole
