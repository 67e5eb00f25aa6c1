"""Cool-down, room-temperature exposure, mounting, and calibration plans."""

from __future__ import annotations

import time

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp

from tcstation.analysis.transitions import find_susceptibility_transition
from tcstation.devices.clock import PhysicalInterval
from tcstation.devices.station import Station
from tcstation.instruments.environment import SAMPLE_KINDS
from tcstation.ledger import (
    LedgerError,
    check_preparation,
    check_sample_id,
    make_sample_id,
    warm_tolerance,
)
from tcstation.plans import validation
from tcstation.plans.policy import RESUME_MARGIN
from tcstation.plans.ramps import (
    SUSCEPTOMETER_FIELD,
    SUSCEPTOMETER_FREQUENCY,
    build_susceptibility_ramp,
    configure_susceptometer,
    prepare_cryostat,
    sample_metadata,
)
from tcstation.plans.safety import station_safety_wrapper

REFERENCE_TCS = {"pb": 7.2, "nb": 9.25, "mgb2": 39.0}
"""K, nominal transition temperatures of the calibration references."""
REFERENCE_KINDS = tuple(REFERENCE_TCS)
THERMOMETRY_TOLERANCE = 0.5  # K
CALIBRATION_TEMPERATURE = 4.5  # K, deep in Pb's and Nb's superconducting state
EXPOSURE_POLL = 1.0  # physical minutes between exposure progress readings
COOL_BACK_POLL = 10.0  # physical seconds between readings while the sample cools back
COOL_BACK_TIMEOUT = 1800.0  # physical seconds the sample may take to cool back below its limit


class ThermometryError(RuntimeError):
    """The MgB2 check found a transition too far from 39 K: the thermometry is off."""


def mount_sample(station: Station, kind: str, sample_id: str | None = None,
                 preparation: str = "", md: dict | None = None):
    """Mount a sample (on the simulator a fresh one) and record it as a run of its own.

    The run's start document carries the sample (``sample``: its id, kind, preparation,
    mount time, insert, contacts, limit) and the sample ledger (:mod:`tcstation.ledger`)
    appends a mount from it; every later run is appended to this sample until the next.

    Parameters
    ----------
    station : Station
        The station's devices.
    kind : str
        One of pure_mg, mg_mgo, pb, nb, mgb2.
    sample_id : str, optional
        The operator's id of the sample (or ``md["sample_id"]``): 1 to 64 letters, digits
        or _ . : -; default the kind and the UTC mount time, e.g. mg_mgo-20261206T214501Z.
    preparation : str
        How the sample was made (free text, at most 500 characters).
    md : dict, optional
        Metadata merged into the start document (not ``sample``: the mount writes it).
    """
    kind = validation.choice("kind", kind, SAMPLE_KINDS)
    md = validation.metadata(md)
    if "sample" in md:
        raise validation.PlanArgumentError(
            f"md['sample'] = {md['sample']!r}: mount_sample writes the sample's record itself "
            "from kind, sample_id and preparation; leave md['sample'] out")
    named = md.get("sample_id")
    if sample_id is not None and named is not None and sample_id != named:
        raise validation.PlanArgumentError(
            f"sample_id = {sample_id!r} but md['sample_id'] = {named!r}; give one of them")
    sample_id = sample_id if sample_id is not None else named
    try:
        if sample_id is not None:
            sample_id = check_sample_id(sample_id)
        preparation = check_preparation(preparation)
    except LedgerError as error:
        raise validation.PlanArgumentError(str(error)) from None
    environment = station.environment
    yield from bps.mv(environment.sample, kind)
    mounted = time.time()
    limit = yield from bps.rd(environment.max_safe_temperature)
    yield from bps.mv(station.cryostat.sample_temperature_limit, float(limit))
    sample = yield from sample_metadata(station)
    identity = sample_id or make_sample_id(kind, mounted)
    sample.update({"sample_id": identity, "preparation": preparation, "mounted": mounted,
                   "warm_tolerance": warm_tolerance(kind)})
    _md = {"plan_name": "mount_sample",
           "plan_args": {"kind": kind, "sample_id": sample_id, "preparation": preparation},
           "sample": sample}
    _md.update(md)
    _md["sample_id"] = identity

    @bpp.run_decorator(md=_md)
    def record():
        yield from bps.trigger_and_read([environment])

    return (yield from record())


def cool_down(station: Station, temperature: float = 4.5, md: dict | None = None):
    """Cool to ``temperature`` and hold there, recording the sample temperature on the way.

    Parameters
    ----------
    station : Station
        The station's devices.
    temperature : float
        Target (K), 4.2 to 1 K below the sample's limit.
    md : dict, optional
        Metadata merged into the start document.
    """
    md = validation.metadata(md)
    limit = float(station.cryostat.sample_temperature_limit.get())
    temperature = validation.target_temperature("temperature", temperature, limit)
    _md = {"plan_name": "cool_down", "plan_args": {"temperature": temperature}}
    _md.update(md)

    @bpp.run_decorator(md=_md)
    def inner():
        yield from prepare_cryostat(station)
        yield from bps.trigger_and_read([station.cryostat])
        yield from bps.mv(station.cryostat, temperature)
        yield from bps.trigger_and_read([station.cryostat])

    return (yield from inner())


class RoomTemperatureExposure:
    """A movable for the RunEngine: ``set(minutes)`` runs one exposure, done when it is over.

    The sample environment's exposure action returns to Idle at once, so a plain
    ``mv`` of the action PV would wait for a readback that never comes.
    """

    def __init__(self, environment):
        self.environment = environment
        self.name = f"{environment.name}_exposure"
        self.parent = None

    def set(self, minutes: float):
        return self.environment.expose(minutes)


def expose_to_room_temperature(station: Station, minutes: float = 30.0, md: dict | None = None):
    """Take the sample out to room temperature for ``minutes``, recording how long it was warm.

    On the simulator this is the sample environment's exposure action; the
    run's events follow the warm time and the remaining minutes. The run ends
    once the sample has cooled back below its limit less ``RESUME_MARGIN``: until
    then the controller's input limit (TLIMIT) keeps its heater off and refuses
    a heater range, so the next plan could not heat.

    Parameters
    ----------
    station : Station
        The station's devices.
    minutes : float
        Time at room temperature, 0 to 600 min.
    md : dict, optional
        Metadata merged into the start document.
    """
    md = validation.metadata(md)
    minutes = validation.number_in_range("minutes", minutes, *validation.EXPOSURE_RANGE, "min")
    environment = station.environment
    _md = {"plan_name": "expose_to_room_temperature", "plan_args": {"minutes": minutes},
           "hints": {"dimensions": [(["time"], "primary")]}}
    exposure = RoomTemperatureExposure(environment)

    def outer():
        _md["sample"] = yield from sample_metadata(station)
        _md.update(md or {})
        return (yield from inner())

    @bpp.run_decorator(md=_md)
    def inner():
        yield from bps.trigger_and_read([environment, station.cryostat])
        exposed = yield from bps.abs_set(exposure, minutes, group="exposure")
        # A progress reading every EXPOSURE_POLL physical minutes, however fast the clock runs.
        interval = PhysicalInterval(environment, cut_short=lambda: exposed.done)
        while True:
            yield from bps.abs_set(interval, EXPOSURE_POLL * 60.0, wait=True)
            yield from bps.trigger_and_read([environment, station.cryostat])
            exposing = yield from bps.rd(environment.exposing)
            if not exposing or exposed.done:
                break
        yield from bps.wait(group="exposure")
        yield from bps.trigger_and_read([environment, station.cryostat])
        limit = float(station.cryostat.sample_temperature_limit.get())
        cool_back_poll = COOL_BACK_POLL * station.cryostat.time_scale
        for _ in range(int(COOL_BACK_TIMEOUT / COOL_BACK_POLL)):
            sample = yield from bps.rd(station.cryostat.sample_temperature)
            if float(sample) < limit - RESUME_MARGIN:
                return
            yield from bps.sleep(cool_back_poll)
            yield from bps.trigger_and_read([environment, station.cryostat])
        raise RuntimeError(
            f"the sample is still at {float(sample):.1f} K, above {limit - RESUME_MARGIN:g} K "
            f"(its limit {limit:g} K less {RESUME_MARGIN:g} K), {COOL_BACK_TIMEOUT:g} s after "
            "the exposure ended: check the insert is back in the cryostat")

    return (yield from outer())


def calibrate_susceptometer(station: Station, reference: str = "pb", readings: int = 10,
                            md: dict | None = None):
    """Calibrate the susceptometer's scale and phase on a superconducting reference.

    Cools the mounted reference (Pb or Nb) deep into its superconducting state,
    averages ``readings`` settled readings and sets the calibration so that the
    reference reads 4 pi chi' = -1, chi'' = 0. The readings and the resulting
    calibration are recorded in the run.

    Parameters
    ----------
    station : Station
        The station's devices.
    reference : str
        "pb" or "nb"; it must be the mounted sample.
    readings : int
        Number of readings averaged, 1 to 100.
    md : dict, optional
        Metadata merged into the start document.
    """
    md = validation.metadata(md)
    reference = validation.choice("reference", reference, ("pb", "nb"))
    readings = validation.whole_number("readings", readings, 1, 100)
    lockin = station.susceptometer
    _md = {"plan_name": "calibrate_susceptometer",
           "plan_args": {"reference": reference, "readings": readings}}
    _md.update(md or {})

    def inner():
        mounted = yield from bps.rd(station.environment.sample)
        if mounted != reference:
            raise validation.PlanArgumentError(
                f"reference = {reference!r} but the mounted sample is {mounted!r}; mount the "
                "reference first (mount_sample)")
        yield from configure_susceptometer(station, SUSCEPTOMETER_FIELD, SUSCEPTOMETER_FREQUENCY)
        yield from prepare_cryostat(station)
        yield from bps.mv(station.cryostat, CALIBRATION_TEMPERATURE)

        @bpp.run_decorator(md=_md)
        def measure():
            xs, ys = [], []
            for _ in range(readings):
                reading = yield from bps.trigger_and_read([lockin, station.cryostat])
                xs.append(reading[lockin.x.name]["value"])
                ys.append(reading[lockin.y.name]["value"])
            lockin.calibrate(float(np.mean(xs)), float(np.mean(ys)),
                             source=f"{reference} at {CALIBRATION_TEMPERATURE:g} K")
            yield from bps.trigger_and_read([lockin, station.cryostat], name="calibrated")

        return (yield from measure())

    return (yield from station_safety_wrapper(inner(), station))


def check_thermometry(station: Station, rate: float = 1.0, md: dict | None = None):
    """Ramp the mounted MgB2 reference through 39 K and fail loudly if its Tc is off.

    Parameters
    ----------
    station : Station
        The station's devices; MgB2 must be mounted.
    rate : float
        Ramp rate, 0.1 to 5 K/min.
    md : dict, optional
        Metadata merged into the start document.

    Raises
    ------
    ThermometryError
        If the onset found differs from 39 K by more than 0.5 K, or none is found.
    """
    md = validation.metadata(md)
    validation.ramp_rate(rate)
    mounted = yield from bps.rd(station.environment.sample)
    if mounted != "mgb2":
        raise validation.PlanArgumentError(
            f"check_thermometry needs the MgB2 reference mounted; the mounted sample is "
            f"{mounted!r}")
    nominal = REFERENCE_TCS["mgb2"]
    estimate = station.susceptometer_temperature.temperature.name
    chi_real = station.susceptometer.chi_real.name
    curve: list[tuple[float, float]] = []
    uid = yield from build_susceptibility_ramp(
        station, nominal - 6.0, nominal + 8.0, rate, SUSCEPTOMETER_FIELD,
        SUSCEPTOMETER_FREQUENCY, {"purpose": "thermometry check", **(md or {})},
        observer=lambda data: curve.append((data[estimate], data[chi_real])),
        plan_name="check_thermometry")
    temperatures, values = (np.array(column) for column in zip(*curve, strict=True))
    transition = find_susceptibility_transition(temperatures, values)
    if not transition.found or abs(transition.onset - nominal) > THERMOMETRY_TOLERANCE:
        found = f"{transition.onset:.2f} K" if transition.found else f"none ({transition.reason})"
        raise ThermometryError(
            f"MgB2 onset {found}, expected {nominal:g} +- {THERMOMETRY_TOLERANCE:g} K: "
            "check the thermometer calibration before measuring")
    return uid
