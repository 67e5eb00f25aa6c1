"""Plain-Python models of the station's instruments, advanced in simulated time.

Nothing here knows about Channel Access: the PVGroups in ``ioc_sim.groups`` read
and write these objects, and the station IOC advances them from one scan hook.
Units are SI except where an instrument's own convention is kept (K/min for the
LakeShore ramp rate, percent for heater output, Oe for fields).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import expm

from tcstation.instruments.lakeshore336 import CONTROLLING_MODES
from tcstation.instruments.lakeshore336 import INPUTS as LAKESHORE_INPUTS
from tcstation.instruments.sr830 import SENSITIVITIES, SLOPES_DB, TIME_CONSTANTS
from tcstation.ioc_sim.physics import lockin_noise_bandwidth

# Auto-gain leaves the magnitude below this fraction of full scale.
AUTO_GAIN_HEADROOM = 0.8


@functools.lru_cache(maxsize=512)
def filter_transition(poles: int, time_constant: float, dt: float) -> np.ndarray:
    """Exact step of a cascade of identical RC stages driven by a linear ramp.

    The state is ``[stage_1 .. stage_poles, input, input_slope]``; the result
    maps the state at ``t`` to the state at ``t + dt`` for any ``dt``, so a large
    simulation step (a high speed-up) is as accurate as many small ones.
    """
    size = poles + 2
    generator = np.zeros((size, size))
    for stage in range(poles):
        generator[stage, stage] = -1.0 / time_constant
        generator[stage, stage - 1 if stage else poles] = 1.0 / time_constant
    generator[poles, poles + 1] = 1.0
    return expm(generator * dt)


@dataclass
class LockInModel:
    """An SR830-style dual-phase lock-in: a cascaded RC output filter plus noise.

    The input is the complex rms phasor at the reference frequency (volts),
    referred to the reference with phase 0; the instrument's reference phase
    ``phase_deg`` rotates it.  The output noise is an Ornstein-Uhlenbeck process
    whose variance matches the input noise density over the filter's
    equivalent noise bandwidth and whose correlation time is the filter delay.
    """

    frequency: float = 1000.0
    amplitude: float = 1.0
    phase_deg: float = 0.0
    harmonic: int = 1
    sensitivity_index: int = 20
    time_constant_index: int = 9
    slope_index: int = 1
    stages: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=complex))
    noise: complex = 0j

    @property
    def sensitivity(self) -> float:
        return SENSITIVITIES[self.sensitivity_index]

    @property
    def time_constant(self) -> float:
        return TIME_CONSTANTS[self.time_constant_index]

    @property
    def slope_db(self) -> int:
        return SLOPES_DB[self.slope_index]

    @property
    def poles(self) -> int:
        return self.slope_index + 1

    def advance(
        self,
        dt: float,
        input_start: complex,
        input_end: complex,
        noise_density: float,
        rng: np.random.Generator | None,
    ) -> None:
        """Advance the filter by ``dt`` seconds with a linearly varying input.

        ``noise_density`` is the input-referred noise in V/sqrt(Hz);
        ``rng=None`` turns noise off.
        """
        if dt <= 0:
            return
        tau = self.time_constant
        rotation = complex(math.cos(math.radians(-self.phase_deg)),
                           math.sin(math.radians(-self.phase_deg)))
        poles = self.poles
        state = np.concatenate([
            self.stages[:poles],
            [input_start * rotation, (input_end - input_start) * rotation / dt],
        ])
        self.stages[:poles] = (filter_transition(poles, tau, dt) @ state)[:poles]
        if rng is None:
            self.noise = 0j
            return
        sigma = noise_density * math.sqrt(lockin_noise_bandwidth(tau, self.slope_db))
        correlation = math.exp(-dt / (self.poles * tau))
        kick = sigma * math.sqrt(1.0 - correlation**2)
        self.noise = self.noise * correlation + complex(
            kick * rng.standard_normal(), kick * rng.standard_normal()
        )

    def output(self) -> tuple[complex, bool]:
        """Filtered output (X + iY, volts) and the overload flag.

        Beyond full scale the instrument saturates: each quadrature is clipped to
        the sensitivity and the overload flag is raised.
        """
        value = self.stages[self.poles - 1] + self.noise
        full_scale = self.sensitivity
        overload = abs(value.real) > full_scale or abs(value.imag) > full_scale
        if overload:
            value = complex(
                min(max(value.real, -full_scale), full_scale),
                min(max(value.imag, -full_scale), full_scale),
            )
        return value, overload

    def auto_gain(self) -> int:
        """Choose the smallest sensitivity that holds the present magnitude."""
        magnitude = abs(self.stages[self.poles - 1] + self.noise)
        for index, full_scale in enumerate(SENSITIVITIES):
            if magnitude <= AUTO_GAIN_HEADROOM * full_scale:
                self.sensitivity_index = index
                break
        else:
            self.sensitivity_index = len(SENSITIVITIES) - 1
        return self.sensitivity_index


# Heater power at full output, expressed as the heating rate it would give the
# stage with no cooling (K/s): "limited heater power" per range.
HEATING_RATE_AT_FULL_POWER = {"Off": 0.0, "Low": 0.02, "Medium": 0.2, "High": 2.0}


@dataclass
class CryostatModel:
    """A LakeShore-336-controlled cryostat stage with a sample that lags it.

    The stage loses heat to the bath as ``(T - T_base) / cooling_time``; the
    heater, limited by its range, supplies at most the range's rate.  In closed
    loop the controller aims for a first-order approach to the (ramping)
    setpoint with ``loop_time`` and feeds the ramp forward.  The sample follows
    the stage with ``sample_lag`` (physics note, section 6) unless it is held
    at another temperature (room-temperature exposure).

    ``input_limits`` are the controller's input temperature limits (LakeShore
    ``TLIMIT``), kelvin, one per input (1 = the stage, 2 = the sample, 3 and 4
    idle at ``idle_input_temperature``), 0 = off.
    Every integration sub-step (at most ``substep`` simulated seconds) checks
    them: an input above its limit shuts the control output down (heater range
    Off), so the controller reacts within a sub-step at any speed-up.
    """

    base_temperature: float = 4.2
    cooling_time: float = 120.0
    loop_time: float = 5.0
    sample_lag: float = 20.0
    stage_temperature: float = 4.2
    sample_temperature: float = 4.2
    setpoint: float = 4.2
    ramp_setpoint: float = 4.2
    ramp_rate: float = 1.0  # K/min, as the controller's RAMP command
    ramp_enabled: bool = False
    mode: str = "Closed Loop"
    control_input: str = "A"
    heater_range: str = "Off"
    manual_output: float = 0.0  # percent
    heater_output: float = 0.0  # percent
    pid: tuple[float, float, float] = (50.0, 20.0, 0.0)
    sample_held_at: float | None = None
    input_limits: list[float] = field(default_factory=lambda: [0.0] * len(LAKESHORE_INPUTS))
    idle_input_temperature: float = 4.2

    def input_kelvin(self, number: int) -> float:
        """The temperature of input ``number`` (1 the stage, 2 the sample, 3 and 4 idle), K."""
        if number == 1:
            return self.stage_temperature
        return self.sample_temperature if number == 2 else self.idle_input_temperature

    def input_over_limit(self) -> int | None:
        """The first input above its non-zero temperature limit, or None."""
        for number, limit in enumerate(self.input_limits, start=1):
            if limit > 0 and self.input_kelvin(number) > limit:
                return number
        return None

    def enforce_input_limits(self) -> int | None:
        """Shut the control output down if an input exceeds its limit; return that input."""
        number = self.input_over_limit()
        if number is not None:
            self.heater_range = "Off"
            self.heater_output = 0.0
        return number

    def change_setpoint(self, value: float) -> None:
        """Take a new setpoint; with ramping on it is approached at the ramp rate."""
        self.setpoint = value
        if not self.ramp_enabled:
            self.ramp_setpoint = value

    @property
    def ramping(self) -> bool:
        return self.ramp_enabled and self.ramp_setpoint != self.setpoint

    def _advance_ramp(self, h: float) -> float:
        """Move the ramping setpoint; return its rate of change (K/s)."""
        if not self.ramping:
            self.ramp_setpoint = self.setpoint
            return 0.0
        step = self.ramp_rate / 60.0 * h
        remaining = self.setpoint - self.ramp_setpoint
        if abs(remaining) <= step:
            self.ramp_setpoint = self.setpoint
            return remaining / h
        direction = math.copysign(1.0, remaining)
        self.ramp_setpoint += direction * step
        return direction * self.ramp_rate / 60.0

    def advance(self, dt: float, substep: float = 0.25) -> None:
        substeps = max(1, math.ceil(dt / substep))
        h = dt / substeps
        for _ in range(substeps):
            self._advance_once(h)

    def _advance_once(self, h: float) -> None:
        self.enforce_input_limits()
        setpoint_rate = self._advance_ramp(h)
        leak = (self.stage_temperature - self.base_temperature) / self.cooling_time
        full_power = HEATING_RATE_AT_FULL_POWER[self.heater_range]
        if self.mode == "Open Loop":
            heating = full_power * self.manual_output / 100.0
        elif self.mode in CONTROLLING_MODES and full_power > 0:
            wanted = (self.ramp_setpoint - self.stage_temperature) / self.loop_time
            heating = min(max(wanted + setpoint_rate + leak, 0.0), full_power)
        else:
            heating = 0.0
        self.heater_output = 100.0 * heating / full_power if full_power > 0 else 0.0
        self.stage_temperature += (heating - leak) * h
        self.stage_temperature = max(self.stage_temperature, self.base_temperature)
        source = self.stage_temperature if self.sample_held_at is None else self.sample_held_at
        self.sample_temperature += (source - self.sample_temperature) * -math.expm1(
            -h / self.sample_lag
        )
        self.enforce_input_limits()


@dataclass
class SourceMeterModel:
    """A SourceMeter-class dc current source (+-1 A) with voltage compliance."""

    setpoint: float = 0.0
    output_on: bool = False
    voltage_limit: float = 2.0
    load_resistance: float = 1.5  # leads and contacts, ohm

    def measure(self) -> tuple[float, float, bool]:
        """Return (current A, voltage V, compliance tripped)."""
        if not self.output_on:
            return 0.0, 0.0, False
        voltage = self.setpoint * self.load_resistance
        if abs(voltage) > self.voltage_limit:
            voltage = math.copysign(self.voltage_limit, self.setpoint)
            return voltage / self.load_resistance, voltage, True
        return self.setpoint, voltage, False
