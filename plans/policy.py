"""The station's safety policy: margins below the sample's limit and the trip rule.

A leaf module (the standard library and the instruments contract only), shared by
the RunEngine's guard (:mod:`tcstation.plans.safety`), the plans' and the queue's argument checks
(:mod:`tcstation.plans.validation`, :mod:`tcstation.plans.bound`) and the watchdog process
(:mod:`tcstation.watchdog`), so that every layer uses the same numbers::

    limit                      the sample's limit; TLIMIT on the sample input
    limit - WATCHDOG_MARGIN    the watchdog's trip point (predicted reading)
    limit - GUARD_MARGIN       the guard's trip point (predicted stage reading)
    limit - TARGET_MARGIN      the highest target a plan or the queue accepts
    limit - RESUME_MARGIN      a suspended run may resume below this
    limit - HOLD_MARGIN        the setpoint every safe hold uses
"""

from __future__ import annotations

import math
from collections import deque

from tcstation.instruments.lakeshore336 import CONTROLLING_MODES

LOWEST_SAMPLE_LIMIT = 77.0
"""K, the limit of the Mg/MgO sample (liquid nitrogen), the lowest of the station's samples:
what the protocol's ramps and the queue's arguments are bounded by, whatever is mounted."""
TARGET_MARGIN = 1.0
"""K below the sample's limit: the highest target plans and the queue accept."""
WATCHDOG_MARGIN = 0.25
"""K below the sample's limit at which the watchdog acts (behind the guard, before TLIMIT)."""
GUARD_MARGIN = 0.5
"""K below the sample's limit at which the guard suspends (its predicted stage reading)."""
RESUME_MARGIN = 3.0
"""K below the sample's limit under which a suspended run may resume."""
HOLD_MARGIN = 5.0
"""K below the sample's limit at which every safe hold puts the setpoint."""
GUARD_REACTION_TIME = 0.06
"""Wall seconds from a reading's time stamp to the heater being off after a trip: measured
(reading's IOC time stamp to the HTR1:Range_RBV Off update) 0.009 to 0.06 s at 60x and 300x
with tests loading the 2 cores, one outlier of 0.19 s. The reading's own age (one update
interval) is added. In simulated time this is the speed-up times as long."""
RATE_READINGS = 4
"""Readings the rate of rise is taken over (noise of 2 mK per reading)."""

WATCHDOG_REACTION_TIME = 0.06
"""Wall seconds from a reading's time stamp to the watchdog's heater-off put landing."""

assert WATCHDOG_MARGIN < GUARD_MARGIN < TARGET_MARGIN < RESUME_MARGIN < HOLD_MARGIN


class RisePredictor:
    """A reading one horizon ahead, from its rate of rise over the last few readings.

    Times are the readings' own time stamps (wall seconds): on the simulator the
    speed-up turns a wall reaction time into simulated seconds, and the rate in
    K per wall second already carries it, so ``value + rate * horizon_wall`` is
    the reading that many wall seconds later at any speed-up.
    """

    def __init__(self, readings: int = RATE_READINGS):
        self.history: deque[tuple[float, float]] = deque(maxlen=readings + 1)

    def clear(self) -> None:
        self.history.clear()

    def update(self, stamp: float, value: float) -> None:
        if self.history and stamp <= self.history[-1][0]:
            return
        self.history.append((stamp, value))

    @property
    def rate(self) -> float:
        """K per wall second over the kept readings (0 with fewer than two)."""
        if len(self.history) < 2:
            return 0.0
        (t0, v0), (t1, v1) = self.history[0], self.history[-1]
        return (v1 - v0) / (t1 - t0)

    @property
    def interval(self) -> float:
        """Wall seconds between updates: how old a reading can be when it arrives."""
        if len(self.history) < 2:
            return 0.0
        return (self.history[-1][0] - self.history[0][0]) / (len(self.history) - 1)

    def predicted(self, reaction: float, bound: float = math.inf) -> float:
        """The latest reading plus its rise over ``reaction`` plus one update interval.

        ``bound`` caps the prediction where the controller itself stops the rise (a
        closed loop approaching its setpoint, a heater that is off), never below the
        latest reading.
        """
        if not self.history:
            return math.nan
        value = self.history[-1][1]
        ahead = value + max(self.rate, 0.0) * (reaction + self.interval)
        return min(ahead, max(value, bound))


BOUND_ALLOWANCE = 0.2
"""K a closed loop may pass its setpoint (noise, the approach) in :func:`heating_bound`."""


def heating_bound(mode, heater_range, setpoint) -> float:
    """The highest temperature (K) the controller, as set, drives the stage to.

    Heater Off or loop Off: no heating, so no rise (the reading itself is the
    bound). Closed loop: the setpoint (the ramp's target) plus a small allowance.
    Open loop, or anything unknown: no bound.
    """
    if heater_range == "Off" or mode == "Off":
        return -math.inf
    if mode in CONTROLLING_MODES:
        try:
            target = float(setpoint)
        except (TypeError, ValueError):
            return math.inf
        return target + BOUND_ALLOWANCE if math.isfinite(target) else math.inf
    return math.inf


