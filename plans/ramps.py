"""Heating ramps: continuous with interleaved bias steps, stepped grids, susceptibility.

A continuous ramp sets the controller ramping to ``stop`` and, while it heats,
cycles the dc bias through ``biases`` and takes a settled lock-in reading at
each: one heating ramp gives every bias curve. Each event carries the bias,
the stage and sample sensor temperatures, and the sample temperature with the
thermal lag and the lock-in filter delay taken out (``transport_sample_temperature``
of the lag-corrected estimate, hinted as the plot's x axis).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass

from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp

from tcstation.analysis.transitions import DEFAULT_CRITERIA
from tcstation.devices import sr830_tables
from tcstation.devices.station import Station
from tcstation.plans import validation
from tcstation.plans.adaptive import (
    ADAPTIVE_FAST_RATE,
    ADAPTIVE_SLOW_RATE,
    DEVELOPING_STEP_THRESHOLD,
    StepEvidenceRule,
)
from tcstation.plans.safety import station_safety_wrapper

DEFAULT_BIASES = (0.0, 0.2, 0.3, 0.4)
"""A, the source experiment's dc biases."""
TRANSPORT_FREQUENCY = 13.0  # Hz
TRANSPORT_EXCITATION = 0.024  # A, amplitude
SUSCEPTOMETER_FREQUENCY = 1550.0  # Hz
SUSCEPTOMETER_FIELD = 0.2  # Oe, amplitude
LOCKIN_TIME_CONSTANT_INDEX = 9
"""OFLT 9 = 300 ms: settles in 2.1 s at 12 dB/oct, so four biases cycle in about 9 s."""
END_TOLERANCE = 0.2
"""K: the ramp ends once the sample sensor is this close to ``stop``."""
POINTS_PER_DEPARTURE_WINDOW = 3
"""Points each curve needs within the analysis's departure window (the shortfall below a
candidate onset is averaged over it, :class:`tcstation.analysis.transitions.TransitionCriteria`)."""
REQUIRED_SPACING = DEFAULT_CRITERIA.departure_window / POINTS_PER_DEPARTURE_WINDOW
"""K between two points of one curve that the transition analysis needs at most."""
READING_OVERHEAD = 0.02
"""Wall seconds a reading spends outside the lock-in's settle (bias put and confirmation,
Channel Access, software) that count as physical time: on the simulator the settle itself
costs next to no wall time (the clock asks the IOC to run to its end), and the rest counts
at the speed-up: 0.1 to 1.8 simulated s beyond the settle at 120x, 0.2 to 0.4 s at 60x
(benchmarks/reading_cost.py, 2026-12-02, 2-core machine). A lock-in device with a
``reading_overhead`` attribute (its own measurement) overrides it."""

logger = logging.getLogger(__name__)


class RampInterruptedError(RuntimeError):
    """The controller stopped ramping to the plan's target (e.g. the temperature guard)."""


RateRule = Callable[[dict], float | None]
"""Called with the latest event's data; returns a new ramp rate (K/min) or None."""


def sample_metadata(station: Station) -> Generator:
    """Sample, insert and contacts as the sample environment reports them."""
    environment = station.environment
    sample = yield from bps.rd(environment.sample)
    insert = yield from bps.rd(environment.insert)
    contacts = yield from bps.rd(environment.contacts)
    limit = yield from bps.rd(station.cryostat.sample_temperature_limit)
    warm = yield from bps.rd(environment.warm_time)
    return {"name": sample, "insert": insert, "contacts": contacts,
            "max_safe_temperature": float(limit), "warm_seconds_before": float(warm)}


def configure_transport(station: Station, contacts: str, excitation: float,
                        frequency: float) -> Generator:
    """Transport insert on the given contacts, the lock-in's excitation, the bias source on at 0."""
    lockin = station.transport
    gain = yield from bps.rd(lockin.excitation_gain)
    amplitude = excitation / (math.sqrt(2.0) * float(gain))
    yield from bps.mv(station.environment.insert, "transport",
                      station.environment.contacts, contacts)
    yield from bps.mv(lockin.frequency, frequency, lockin.sine_amplitude, amplitude,
                      lockin.time_constant, LOCKIN_TIME_CONSTANT_INDEX)
    yield from bps.mv(station.bias_source.current, 0.0)
    yield from bps.mv(station.bias_source.output_enabled, "On")


def configure_susceptometer(station: Station, field: float, frequency: float) -> Generator:
    """Susceptometer insert with the given drive field (Oe amplitude) and frequency."""
    lockin = station.susceptometer
    coil = yield from bps.rd(station.environment.coil_constant)
    yield from bps.mv(station.environment.insert, "susceptometer")
    yield from bps.mv(lockin.frequency, frequency, lockin.sine_amplitude, field / float(coil),
                      lockin.time_constant, LOCKIN_TIME_CONSTANT_INDEX)


def prepare_cryostat(station: Station) -> Generator:
    """Closed-loop control with the heater on its high range, ramping off."""
    controller = station.cryostat
    yield from bps.mv(controller.control_mode, "Closed Loop", controller.heater_range, "High")
    yield from bps.mv(controller.ramp_enabled, "Off")


@dataclass(frozen=True)
class SpacingEstimate:
    """The point spacing (K) each curve of a ramp will get, and what it is made of."""

    rate: float
    """K/min."""
    curves: int
    """Readings per cycle (biases), each its own curve."""
    settle: float
    """Physical seconds of the lock-in's settle per reading."""
    overhead: float
    """Physical (simulated) seconds per reading outside the settle."""
    spacing: float
    """K between two points of one curve."""
    required: float = REQUIRED_SPACING

    @property
    def coarse(self) -> bool:
        return self.spacing > self.required

    def describe(self) -> str:
        return (f"{self.spacing:.2f} K between points of each curve = {self.rate:g} K/min x "
                f"{self.curves} curve(s) x {self.settle + self.overhead:.1f} s a reading "
                f"({self.settle:.1f} s settle + {self.overhead:.1f} s overhead)")


def expected_spacing(station: Station, lockin, rate: float, curves: int) -> SpacingEstimate:
    """The spacing each curve will get: rate x curves x the expected reading time.

    The reading time is the lock-in's settle time at the ramps' time constant
    (:data:`LOCKIN_TIME_CONSTANT_INDEX`, physical seconds) plus the
    overhead (:data:`READING_OVERHEAD` wall seconds, or the lock-in's own
    ``reading_overhead``), which the simulator's speed-up turns into that many
    times more physical seconds.
    """
    try:
        settle = sr830_tables.settle_time(LOCKIN_TIME_CONSTANT_INDEX, int(lockin.slope.get()))
    except Exception:
        settle = float(lockin.settle_time())
    overhead_wall = float(getattr(lockin, "reading_overhead", READING_OVERHEAD))
    time_scale = float(getattr(station.cryostat, "time_scale", 1.0)) or 1.0
    overhead = overhead_wall / time_scale
    spacing = rate / 60.0 * curves * (settle + overhead)
    return SpacingEstimate(rate, curves, settle, overhead, spacing)


def check_spacing(estimate: SpacingEstimate) -> None:
    """Log the spacing; warn, with the numbers, when it is coarser than the analysis needs."""
    if estimate.coarse:
        logger.warning("the ramp will be too coarse for the transition analysis: %s, "
                       "coarser than the %.2f K it needs; slow the ramp to %.2g K/min or "
                       "measure fewer biases", estimate.describe(), estimate.required,
                       estimate.rate * estimate.required / estimate.spacing)
    else:
        logger.info("ramp spacing: %s", estimate.describe())


def start_ramp(station: Station, stop: float, rate: float) -> Generator:
    """Ramp the setpoint from where it is to ``stop`` at ``rate`` K/min.

    Waits for the setpoint put to land (its readback reads ``stop``), so that
    whatever reads the setpoint next sees the ramp's target; it does not wait for
    the ramp.
    """
    controller = station.cryostat
    yield from bps.mv(controller.ramp_rate, rate, controller.ramp_enabled, "On")
    yield from bps.mv(controller.setpoint, stop)


def _ramp_is_running(station: Station, stop: float) -> Generator:
    setpoint = yield from bps.rd(station.cryostat.setpoint)
    return abs(float(setpoint) - stop) < 1e-6


def _check_ramp_running(station: Station, stop: float) -> Generator:
    """Raise :class:`RampInterruptedError` if the setpoint is no longer ``stop``."""
    running = yield from _ramp_is_running(station, stop)
    if not running:
        setpoint = yield from bps.rd(station.cryostat.setpoint)
        sample = yield from bps.rd(station.cryostat.sample_temperature)
        raise RampInterruptedError(
            f"the controller setpoint is {float(setpoint):g} K, not the ramp's {stop:g} K "
            f"(sample at {float(sample):.2f} K): the ramp was stopped, e.g. by the "
            "temperature guard; the run ends here")


def _heat_until(station: Station, stop: float, read_cycle: Callable[[], Generator]) -> Generator:
    """Repeat ``read_cycle`` until the sample sensor is at ``stop``.

    A setpoint that is no longer ``stop`` (the temperature guard held the
    cryostat, or someone changed it) ends the run with an error, even if the
    sample has passed ``stop`` on the way. The last check follows a checkpoint,
    so a suspension at the very end rewinds to it and the check sees the hold.
    """
    while True:
        yield from read_cycle()
        sample = yield from bps.rd(station.cryostat.sample_temperature)
        yield from _check_ramp_running(station, stop)
        if float(sample) >= stop - END_TOLERANCE:
            break
    yield from bps.checkpoint()
    yield from _check_ramp_running(station, stop)


Observer = Callable[[dict], None]
"""Called with every event's data (field name -> value), e.g. to collect a curve."""


def _read(station: Station, detectors: list, rate_rule: RateRule | None,
          observer: Observer | None) -> Generator:
    """One settled reading; the data go to the observer and the rate rule."""
    reading = yield from bps.trigger_and_read(detectors)
    if not reading:
        return
    values = {key: entry["value"] for key, entry in reading.items()}
    if observer is not None:
        observer(values)
    if rate_rule is not None:
        new_rate = rate_rule(values)
        if new_rate is not None:
            yield from bps.mv(station.cryostat.ramp_rate, new_rate)


def transport_settings(station: Station, biases: Sequence[float], contacts: str,
                       excitation: float, frequency: float) -> tuple:
    """The transport arguments, checked: (biases, contacts, excitation, frequency)."""
    return (validation.bias_currents(biases, float(station.bias_source.current_limit.get())),
            validation.choice("contacts", contacts, validation.CONTACTS),
            validation.number_in_range("excitation", excitation,
                                       *validation.EXCITATION_RANGE, "A"),
            validation.number_in_range("frequency", frequency,
                                       *validation.FREQUENCY_RANGE, "Hz"))


def transport_fields(station: Station) -> dict:
    """Event fields by role, for the analysis of a transport run."""
    return {"temperature": station.transport_temperature.temperature.name,
            "signal": station.transport.dynamic_resistance.name,
            "bias": station.bias_source.measured_current.name}


def susceptibility_fields(station: Station) -> dict:
    """Event fields by role, for the analysis of a susceptibility run."""
    return {"temperature": station.susceptometer_temperature.temperature.name,
            "signal": station.susceptometer.chi_real.name,
            "chi_imag": station.susceptometer.chi_imag.name}


def _ramp_metadata(plan_name: str, plan_args: dict, sample: dict, estimate,
                   md: dict | None, fields: dict | None = None) -> dict:
    _md = {
        "plan_name": plan_name,
        "plan_args": plan_args,
        "sample": sample,
        "fields": fields or {},
        "hints": {"dimensions": [([estimate.temperature.name], "primary")]},
        "ramp": {key: plan_args[key] for key in ("start", "stop", "rate") if key in plan_args},
    }
    _md.update(md or {})
    return _md


def heating_run(station: Station, plan_name: str, measurement: str, configure: Generator,
                start: float, stop: float, rate: float, read_cycle: Callable[[], Generator],
                estimate, plan_args: dict, md: dict | None, fields: dict,
                spacing: SpacingEstimate | None = None) -> Generator:
    """Configure, settle at ``start``, then one run heating to ``stop`` with ``read_cycle``.

    The station is made safe however the plan ends.
    """

    def inner() -> Generator:
        yield from configure
        yield from prepare_cryostat(station)
        yield from bps.mv(station.cryostat, start)
        sample = yield from sample_metadata(station)
        _md = _ramp_metadata(plan_name, plan_args, sample, estimate, md, fields)
        _md["measurement"] = measurement
        if spacing is not None:
            _md["expected_spacing"] = {**asdict(spacing), "coarse": spacing.coarse}

        @bpp.run_decorator(md=_md)
        def ramp() -> Generator:
            yield from start_ramp(station, stop, rate)
            yield from _heat_until(station, stop, read_cycle)

        return (yield from ramp())

    return (yield from station_safety_wrapper(inner(), station))


def build_transport_ramp(station: Station, start: float, stop: float, rate: float,
                         biases: Sequence[float], contacts: str, excitation: float,
                         frequency: float, md: dict | None, *,
                         rate_rule: RateRule | None = None, observer: Observer | None = None,
                         plan_name: str = "transport_ramp", extra_args: dict | None = None,
                         spacing_rate: float | None = None) -> Generator:
    """The transport ramp with optional live rate rule and reading observer.

    ``spacing_rate`` (K/min, default ``rate``) is the rate whose point spacing is checked
    against what the analysis needs: an adaptive ramp's rate through a transition.
    """
    md = validation.metadata(md)
    rate = validation.ramp_rate(rate)
    limit = float(station.cryostat.sample_temperature_limit.get())
    start, stop = validation.temperature_span(start, stop, limit)
    biases, contacts, excitation, frequency = transport_settings(
        station, biases, contacts, excitation, frequency)
    estimate = station.transport_temperature
    detectors = [station.transport, station.cryostat, estimate]
    plan_args = {"start": start, "stop": stop, "rate": rate, "biases": list(biases),
                 "contacts": contacts, "excitation": excitation, "frequency": frequency,
                 **(extra_args or {})}

    def read_cycle() -> Generator:
        for bias in biases:
            yield from bps.checkpoint()
            yield from bps.mv(station.bias_source, bias)
            yield from _read(station, detectors, rate_rule, observer)

    spacing = expected_spacing(station, station.transport,
                               rate if spacing_rate is None else spacing_rate, len(biases))
    check_spacing(spacing)
    configure = configure_transport(station, contacts, excitation, frequency)
    return (yield from heating_run(station, plan_name, "transport", configure, start, stop, rate,
                                   read_cycle, estimate, plan_args, md,
                                   transport_fields(station), spacing))


def build_susceptibility_ramp(station: Station, start: float, stop: float, rate: float,
                              field: float, frequency: float, md: dict | None, *,
                              rate_rule: RateRule | None = None,
                              observer: Observer | None = None,
                              plan_name: str = "susceptibility_ramp",
                              extra_args: dict | None = None) -> Generator:
    """The susceptibility ramp with optional live rate rule and reading observer."""
    md = validation.metadata(md)
    rate = validation.ramp_rate(rate)
    limit = float(station.cryostat.sample_temperature_limit.get())
    start, stop = validation.temperature_span(start, stop, limit)
    field = validation.number_in_range("field", field, *validation.SUSCEPTOMETER_FIELD_RANGE,
                                       "Oe")
    frequency = validation.number_in_range("frequency", frequency,
                                           *validation.FREQUENCY_RANGE, "Hz")
    estimate = station.susceptometer_temperature
    detectors = [station.susceptometer, station.cryostat, estimate]
    plan_args = {"start": start, "stop": stop, "rate": rate, "field": field,
                 "frequency": frequency, **(extra_args or {})}

    def read_cycle() -> Generator:
        yield from bps.checkpoint()
        yield from _read(station, detectors, rate_rule, observer)

    spacing = expected_spacing(station, station.susceptometer, rate, 1)
    check_spacing(spacing)
    configure = configure_susceptometer(station, field, frequency)
    return (yield from heating_run(station, plan_name, "susceptibility", configure, start, stop,
                                   rate, read_cycle, estimate, plan_args, md,
                                   susceptibility_fields(station), spacing))


def transport_ramp(
    station: Station,
    start: float = 4.5,
    stop: float = 70.0,
    rate: float = 1.5,
    biases: Sequence[float] = DEFAULT_BIASES,
    contacts: str = "surface",
    excitation: float = TRANSPORT_EXCITATION,
    frequency: float = TRANSPORT_FREQUENCY,
    md: dict | None = None,
) -> Generator:
    """Heat from ``start`` to ``stop`` once, reading dU/dI at every bias in turn.

    Parameters
    ----------
    station : Station
        The station's devices.
    start : float
        Temperature (K) the sample settles at before the ramp, >= 4.2.
    stop : float
        Temperature (K) the ramp ends at, above ``start``, at most 1 K below the sample's limit.
    rate : float
        Ramp rate, 0.1 to 5 K/min (the source experiment: 1 to 1.5).
    biases : sequence of float
        dc bias currents (A) cycled at each step; non-empty, within the source's range.
    contacts : str
        "surface" (the oxidised surface) or "core" (the metallic core).
    excitation : float
        ac excitation amplitude (A), 1e-4 to 0.1.
    frequency : float
        Lock-in reference frequency (Hz).
    md : dict, optional
        Metadata merged into the start document.
    """
    return (yield from build_transport_ramp(station, start, stop, rate, biases, contacts,
                                            excitation, frequency, md))


def susceptibility_ramp(
    station: Station,
    start: float = 4.5,
    stop: float = 70.0,
    rate: float = 1.5,
    field: float = SUSCEPTOMETER_FIELD,
    frequency: float = SUSCEPTOMETER_FREQUENCY,
    md: dict | None = None,
) -> Generator:
    """Heat from ``start`` to ``stop`` reading 4 pi chi' and 4 pi chi''.

    Parameters
    ----------
    station : Station
        The station's devices.
    start, stop : float
        Temperatures (K) of the ramp, 4.2 <= start < stop <= 1 K below the sample's limit.
    rate : float
        Ramp rate, 0.1 to 5 K/min.
    field : float
        Drive field amplitude Hac (Oe), 0.01 to 1 (the source experiment: 0.2).
    frequency : float
        Drive frequency (Hz) (the source experiment: 1550).
    md : dict, optional
        Metadata merged into the start document.
    """
    return (yield from build_susceptibility_ramp(station, start, stop, rate, field, frequency,
                                                 md))


def transport_grid(
    station: Station,
    temperatures: Sequence[float],
    biases: Sequence[float] = DEFAULT_BIASES,
    contacts: str = "surface",
    excitation: float = TRANSPORT_EXCITATION,
    frequency: float = TRANSPORT_FREQUENCY,
    md: dict | None = None,
) -> Generator:
    """Settle at each temperature, then step the bias through ``biases``.

    Parameters
    ----------
    station : Station
        The station's devices.
    temperatures : sequence of float
        Temperatures (K), each within 4.2 K and 1 K below the sample's limit.
    biases : sequence of float
        dc bias currents (A); non-empty, within the source's range.
    contacts : str
        "surface" or "core".
    excitation : float
        ac excitation amplitude (A).
    frequency : float
        Lock-in reference frequency (Hz).
    md : dict, optional
        Metadata merged into the start document.
    """
    md = validation.metadata(md)
    limit = float(station.cryostat.sample_temperature_limit.get())
    temperatures = validation.temperature_list(temperatures, limit)
    biases, contacts, excitation, frequency = transport_settings(
        station, biases, contacts, excitation, frequency)
    estimate = station.transport_temperature
    detectors = [station.transport, station.cryostat, estimate]
    plan_args = {"temperatures": temperatures, "biases": list(biases), "contacts": contacts,
                 "excitation": excitation, "frequency": frequency}

    def inner() -> Generator:
        yield from configure_transport(station, contacts, excitation, frequency)
        yield from prepare_cryostat(station)
        sample = yield from sample_metadata(station)
        _md = _ramp_metadata("transport_grid", plan_args, sample, estimate, md,
                             transport_fields(station))
        _md["measurement"] = "transport"

        @bpp.run_decorator(md=_md)
        def grid() -> Generator:
            for temperature in temperatures:
                yield from bps.mv(station.cryostat, temperature)
                for bias in biases:
                    yield from bps.checkpoint()
                    yield from bps.mv(station.bias_source, bias)
                    yield from _read(station, detectors, None, None)

        return (yield from grid())

    return (yield from station_safety_wrapper(inner(), station))


def adaptive_transport_ramp(
    station: Station,
    start: float = 4.5,
    stop: float = 70.0,
    fast: float = ADAPTIVE_FAST_RATE,
    slow: float = ADAPTIVE_SLOW_RATE,
    biases: Sequence[float] = DEFAULT_BIASES,
    contacts: str = "surface",
    excitation: float = TRANSPORT_EXCITATION,
    frequency: float = TRANSPORT_FREQUENCY,
    md: dict | None = None,
    threshold: float = DEVELOPING_STEP_THRESHOLD,
) -> Generator:
    """A transport ramp at ``fast`` where dU/dI is smooth, at ``slow`` through a transition.

    Every bias curve is watched as it comes in (:class:`tcstation.plans.adaptive.
    StepEvidenceRule`): the ramp slows as soon as the likelihood-ratio z of a
    developing step (the newest points of a curve rising off the smooth background
    of the points before them, and steepening it) reaches ``threshold`` on any curve,
    and returns to ``fast`` once every curve is flat again over the 3.5 K the
    transition detector reads the normal level from (the other curves are watched
    alongside the one that slowed it). Each change of rate is
    logged with its reason and kept in the rule's ``decisions``.

    Since 2026-12 (issue 16) the defaults are 5 and 1.5 K/min (were 1.5 and 0.3, with
    a rule that decided from a fixed point count in a 2 K window and never slowed a
    four-bias ramp at 1.5 K/min); positional and keyword calls of the old signature
    keep working.

    Parameters
    ----------
    station : Station
        The station's devices.
    start, stop : float
        Temperatures (K) of the ramp, 4.2 <= start < stop <= 1 K below the sample's limit.
    fast : float
        Ramp rate (K/min) where nothing changes, within the fast-segment policy
        (:data:`tcstation.plans.validation.FAST_SEGMENT_RATE_RANGE`, 0.1 to 5).
    slow : float
        Ramp rate (K/min) through a transition, 0.1 to 5 and below ``fast``; the source
        experiment's 1.5 by default, the rate the analysis's spacing is checked at.
    biases : sequence of float
        dc bias currents (A) cycled at each step; every bias is its own watched curve.
    contacts : str
        "surface" or "core".
    excitation : float
        ac excitation amplitude (A).
    frequency : float
        Lock-in reference frequency (Hz).
    md : dict, optional
        Metadata merged into the start document.
    threshold : float
        Developing-step z that slows the ramp, 3 to 20 (5: about 1e-3 false alarms a ramp
        on white noise).
    """
    md = validation.metadata(md)
    fast, slow = validation.adaptive_rates(fast, slow)
    threshold = validation.number_in_range("threshold", threshold, 3.0, 20.0)
    rule = StepEvidenceRule(station.transport.dynamic_resistance.name,
                            station.transport_temperature.temperature.name,
                            bias_field=station.bias_source.measured_current.name,
                            fast=fast, slow=slow, threshold=threshold)
    return (yield from build_transport_ramp(
        station, start, stop, fast, biases, contacts, excitation, frequency, md,
        rate_rule=rule, plan_name="adaptive_transport_ramp",
        extra_args={"fast": fast, "slow": slow, "threshold": threshold},
        spacing_rate=slow))
