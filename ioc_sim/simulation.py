"""The simulated station as one object: cryostat, sample, lock-ins, source.

``StationSimulation.advance(dt)`` moves everything forward by ``dt`` seconds of
simulated time; the IOC calls it from a single scan loop with the wall-clock
interval times the speed-up, so every dynamic runs in simulated time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tcstation.ioc_sim.instruments import CryostatModel, LockInModel, SourceMeterModel
from tcstation.ioc_sim.sample import SampleModel

ROOM_TEMPERATURE = 295.0

# Susceptometer pickup: 0.3 mV rms per unit of 4 pi chi at 1550 Hz and 0.2 Oe
# (physics note, section 6), proportional to frequency and drive field.
PICKUP_VOLTS_PER_HZ_OE = 0.3e-3 / (1550.0 * 0.2)
# A fixed phase error of the pickup chain, what calibration on a reference removes.
PICKUP_PHASE_DEG = -8.0
# Pickup noise of the susceptometer (vibration, bubbling): sigma(4 pi chi) = 2e-3
# at 300 ms / 12 dB, i.e. 0.6 uV over a 0.417 Hz noise bandwidth.
PICKUP_NOISE_DENSITY = 0.6e-6 / math.sqrt(1.0 / (8 * 0.3))
# Slow drift of the susceptometer background: 1e-3 units rms, 10 min correlation.
PICKUP_DRIFT_UNITS = 1e-3
PICKUP_DRIFT_TIME = 600.0
# Lock-in input noise 6 nV/sqrt(Hz) with a 1/f corner giving 15 nV/sqrt(Hz) at 13 Hz.
INPUT_NOISE_WHITE = 6e-9
INPUT_NOISE_CORNER_HZ = 13.0 * ((15.0 / 6.0) ** 2 - 1.0)


def input_noise_density(frequency: float) -> float:
    """Lock-in input noise (V/sqrt(Hz)) at a reference frequency, with 1/f rise."""
    return INPUT_NOISE_WHITE * math.sqrt(1.0 + INPUT_NOISE_CORNER_HZ / max(frequency, 1e-3))


@dataclass
class SampleEnvironment:
    """The mounted insert and its fixed electrical constants."""

    insert: str = "susceptometer"
    contacts: str = "surface"
    field_dc_oe: float = 0.0
    coil_oe_per_volt: float = 0.2  # Hac amplitude (Oe) per V rms of the lock-in sine out
    excitation_amps_per_volt: float = 0.01  # V-to-I converter: A rms per V rms of sine out


class StationSimulation:
    """Everything the station IOC serves, advanced in simulated time."""

    def __init__(self, sample_kind: str = "mg_mgo", noise: bool = True, seed: int | None = None):
        self.sample = SampleModel(sample_kind)
        self.cryostat = CryostatModel()
        self.source = SourceMeterModel()
        self.environment = SampleEnvironment()
        self.susceptometer_lockin = LockInModel(
            frequency=1550.0, amplitude=1.0, sensitivity_index=17, time_constant_index=9
        )
        self.transport_lockin = LockInModel(
            frequency=13.0,
            amplitude=round(0.024 / math.sqrt(2) / 0.01, 3),
            sensitivity_index=15,
            time_constant_index=9,
        )
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.time = 0.0
        self.exposure_remaining = 0.0
        self.drift = 0.0
        self.chi = 0j
        self.dudi = 0.0
        self._evaluate_sample()
        self._inputs = (self.susceptometer_input(), self.transport_input())
        self._settings = self._input_settings()
        for lockin, value in zip(self.lockins, self._inputs, strict=True):
            lockin.stages[:] = value

    @property
    def lockins(self) -> tuple[LockInModel, LockInModel]:
        return self.susceptometer_lockin, self.transport_lockin

    @property
    def hac_oe(self) -> float:
        """Drive field amplitude of the susceptometer primary (Oe)."""
        return self.environment.coil_oe_per_volt * self.susceptometer_lockin.amplitude

    @property
    def excitation_amplitude(self) -> float:
        """Amplitude (A) of the ac current through the transport contacts."""
        rms = self.environment.excitation_amps_per_volt * self.transport_lockin.amplitude
        return math.sqrt(2.0) * rms

    @property
    def bias_current(self) -> float:
        return self.source.measure()[0]

    def true_susceptibility(self) -> complex:
        """Noise-free 4 pi chi of the mounted sample at its present temperature."""
        lockin = self.susceptometer_lockin
        return self.sample.susceptibility(
            self.cryostat.sample_temperature,
            frequency=lockin.frequency,
            hac_oe=self.hac_oe,
            hdc_oe=self.environment.field_dc_oe,
        )

    def true_dynamic_resistance(self) -> float:
        """Noise-free dU/dI (ohm) between the mounted contacts."""
        return self.sample.dynamic_resistance(
            self.cryostat.sample_temperature,
            bias_current=self.bias_current,
            excitation_amplitude=self.excitation_amplitude,
            contacts=self.environment.contacts,
        )

    def _input_settings(self) -> tuple:
        """Everything a put can change that changes the lock-ins' inputs at once."""
        return (self.source.measure(), self.sample.kind, self.environment.insert,
                self.environment.contacts, self.environment.field_dc_oe,
                tuple((lockin.frequency, lockin.amplitude, lockin.harmonic)
                      for lockin in self.lockins))

    def _evaluate_sample(self) -> None:
        """Evaluate the sample's noise-free responses once per step."""
        self.chi = self.true_susceptibility()
        self.dudi = self.true_dynamic_resistance()

    def true_onsets(self) -> dict:
        """True transition onsets of the mounted sample under the present conditions."""
        return self.sample.true_onsets(
            frequency=self.susceptometer_lockin.frequency,
            hac_oe=self.hac_oe,
            hdc_oe=self.environment.field_dc_oe,
            bias_current=self.bias_current,
            excitation_amplitude=self.excitation_amplitude,
            contacts=self.environment.contacts,
        )

    def susceptometer_input(self) -> complex:
        lockin = self.susceptometer_lockin
        if self.environment.insert != "susceptometer" or lockin.harmonic != 1:
            return 0j
        volts_per_unit = PICKUP_VOLTS_PER_HZ_OE * lockin.frequency * self.hac_oe
        rotation = complex(math.cos(math.radians(PICKUP_PHASE_DEG)),
                           math.sin(math.radians(PICKUP_PHASE_DEG)))
        return volts_per_unit * (self.chi + self.drift) * rotation

    def transport_input(self) -> complex:
        lockin = self.transport_lockin
        if self.environment.insert != "transport" or lockin.harmonic != 1:
            return 0j
        excitation_rms = self.excitation_amplitude / math.sqrt(2.0)
        return complex(self.dudi * excitation_rms, 0.0)

    def start_exposure(self, minutes: float) -> None:
        """Take the sample out to room temperature for ``minutes`` of simulated time."""
        self.exposure_remaining = minutes * 60.0
        self.cryostat.sample_held_at = ROOM_TEMPERATURE

    def mount(self, kind: str) -> None:
        self.sample.mount(kind)
        self.exposure_remaining = 0.0
        self.cryostat.sample_held_at = None

    def advance(self, dt: float) -> None:
        if dt <= 0:
            return
        settings = self._input_settings()
        if settings != self._settings:
            # A put (a bias step, a new insert) changes the input at once, at the start of
            # this step: a step, not a ramp spread over the step.
            self._evaluate_sample()
            self._inputs = (self.susceptometer_input(), self.transport_input())
            self._settings = settings
        self.time += dt
        self.cryostat.advance(dt)
        if self.exposure_remaining > 0:
            self.exposure_remaining = max(0.0, self.exposure_remaining - dt)
            if self.exposure_remaining == 0.0:
                self.cryostat.sample_held_at = None
        self.sample.advance(dt, self.cryostat.sample_temperature)
        rng = self.rng if self.noise else None
        if rng is not None:
            keep = math.exp(-dt / PICKUP_DRIFT_TIME)
            self.drift = self.drift * keep + PICKUP_DRIFT_UNITS * math.sqrt(
                1.0 - keep**2
            ) * rng.standard_normal()
        else:
            self.drift = 0.0
        self._evaluate_sample()
        inputs = (self.susceptometer_input(), self.transport_input())
        densities = (
            math.hypot(PICKUP_NOISE_DENSITY,
                       input_noise_density(self.susceptometer_lockin.frequency)),
            input_noise_density(self.transport_lockin.frequency),
        )
        for lockin, start, end, density in zip(
            self.lockins, self._inputs, inputs, densities, strict=True
        ):
            lockin.advance(dt, start, end, density, rng)
        self._inputs = inputs


MAX_RESTORED_DOWNTIME = 4 * 3600.0
"""Simulated seconds at most that a restored simulation catches up on."""


def simulation_state(simulation: StationSimulation) -> dict:
    """The physical state and the settings, as JSON-able values."""
    cryostat = simulation.cryostat
    return {
        "time": simulation.time,
        "exposure_remaining": simulation.exposure_remaining,
        "noise": simulation.noise,
        "cryostat": {name: getattr(cryostat, name) for name in (
            "stage_temperature", "sample_temperature", "setpoint", "ramp_setpoint",
            "ramp_rate", "ramp_enabled", "mode", "control_input", "heater_range",
            "manual_output", "pid", "sample_held_at", "input_limits")},
        "sample": {"kind": simulation.sample.kind, "theta": simulation.sample.theta,
                   "warm_seconds": simulation.sample.warm_seconds},
        "environment": {"insert": simulation.environment.insert,
                        "contacts": simulation.environment.contacts,
                        "field_dc_oe": simulation.environment.field_dc_oe},
        "source": {"setpoint": simulation.source.setpoint,
                   "output_on": simulation.source.output_on,
                   "voltage_limit": simulation.source.voltage_limit},
        "lockins": [{name: getattr(lockin, name) for name in (
            "frequency", "amplitude", "phase_deg", "harmonic", "sensitivity_index",
            "time_constant_index", "slope_index")} for lockin in simulation.lockins],
    }


def restore_simulation(simulation: StationSimulation, state: dict, downtime: float) -> None:
    """Put a saved state back and let ``downtime`` simulated seconds pass.

    The cryostat, its controller and the sample carried on while the IOC was
    down (an IOC restart is software; the hardware keeps its state), so the
    simulation catches up on the downtime, at most ``MAX_RESTORED_DOWNTIME``.
    """
    simulation.time = state["time"]
    simulation.noise = state["noise"]
    for name, value in state["cryostat"].items():
        if name == "pid":
            value = tuple(value)
        elif name == "input_limits":
            # A state saved with fewer inputs leaves the others' limits off.
            value = [float(limit) for limit in value]
            value += [0.0] * (len(simulation.cryostat.input_limits) - len(value))
        setattr(simulation.cryostat, name, value)
    simulation.sample.mount(state["sample"]["kind"])
    simulation.sample.theta = state["sample"]["theta"]
    simulation.sample.warm_seconds = state["sample"]["warm_seconds"]
    for name, value in state["environment"].items():
        setattr(simulation.environment, name, value)
    for name, value in state["source"].items():
        setattr(simulation.source, name, value)
    for lockin, settings in zip(simulation.lockins, state["lockins"], strict=True):
        for name, value in settings.items():
            setattr(lockin, name, value)
    simulation.exposure_remaining = state["exposure_remaining"]
    simulation._evaluate_sample()
    simulation._inputs = (simulation.susceptometer_input(), simulation.transport_input())
    for lockin, value in zip(simulation.lockins, simulation._inputs, strict=True):
        lockin.stages[:] = value
    remaining = min(max(downtime, 0.0), MAX_RESTORED_DOWNTIME)
    while remaining > 0:
        step = min(remaining, 10.0)
        simulation.advance(step)
        remaining -= step
