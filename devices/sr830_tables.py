"""The SR830's discrete settings and the settling of its output filter.

The tables are the contract's (:mod:`tcstation.instruments.sr830`); the indices are the
instrument's own (SR830 manual, chapter 5): ``SENS i``,
``OFLT i`` and ``OFSL i`` take an index into these tables, so a device that
holds an index can name the setting without asking the IOC.
"""

from __future__ import annotations

from tcstation.instruments import sr830
from tcstation.instruments.sr830 import (  # noqa: F401 - the tables, by their device-side names
    AMPLITUDE_RANGE,
    FREQUENCY_RANGE,
    HARMONIC_RANGE,
    PHASE_RANGE,
    SENSITIVITIES,
    SETTLE_TIME_CONSTANTS,
    SLOPES_DB,
    TIME_CONSTANTS,
)


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
    return sr830.format_sensitivity(SENSITIVITIES[_checked_index(index, SENSITIVITIES, "SENS")])


def _checked_index(index, table, command: str) -> int:
    whole = int(index)
    if whole != index or not 0 <= whole < len(table):
        raise ValueError(f"{command} index {index!r} is outside 0 to {len(table) - 1}")
    return whole
