"""The source experiment's whole measurement protocol as one plan."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Sequence

from tcstation.devices.station import Station
from tcstation.plans import validation
from tcstation.plans.maintenance import (
    calibrate_susceptometer,
    check_thermometry,
    expose_to_room_temperature,
    mount_sample,
)
from tcstation.plans.policy import LOWEST_SAMPLE_LIMIT
from tcstation.plans.ramps import (
    DEFAULT_BIASES,
    SUSCEPTOMETER_FIELD,
    SUSCEPTOMETER_FREQUENCY,
    TRANSPORT_EXCITATION,
    TRANSPORT_FREQUENCY,
    build_susceptibility_ramp,
    build_transport_ramp,
)

PROTOCOL_STEPS = (
    "calibrate the susceptometer on Pb",
    "check the thermometry on MgB2",
    "susceptibility of pure Mg",
    "susceptibility of Mg/MgO",
    "transport on the Mg core",
    "transport on the MgO surface at every bias",
    "room-temperature exposure",
    "transport on the surface after the exposure",
    "susceptibility after the exposure",
)


def source_protocol(
    station: Station,
    start: float = 4.5,
    stop: float = 70.0,
    rate: float = 1.5,
    biases: Sequence[float] = DEFAULT_BIASES,
    exposure_minutes: float = 30.0,
    transport_start: float | None = None,
    transport_rate: float | None = None,
    md: dict | None = None,
) -> Generator:
    """Calibrate, then measure pure Mg and Mg/MgO as the source experiment did.

    Steps: calibrate the susceptometer on Pb; check the thermometry on MgB2;
    susceptibility of pure Mg; susceptibility of Mg/MgO; transport on the Mg
    core; transport on the surface at every bias; expose the sample to room
    temperature; transport and susceptibility again. Every step is a run whose
    start document names the protocol, its uid and the step; each mount is a
    ``mount_sample`` run of its own, naming the protocol and its uid (no step).

    Parameters
    ----------
    station : Station
        The station's devices.
    start, stop : float
        Temperatures (K) of every ramp, 4.2 <= start < stop <= 76.
    rate : float
        Ramp rate, 0.1 to 5 K/min.
    biases : sequence of float
        dc biases (A) of the surface transport ramps.
    exposure_minutes : float
        Time at room temperature, 0 to 600 min (the source experiment: 30).
    transport_start : float, optional
        Start (K) of the transport ramps, default ``start``; the transitions lie at
        50 to 54 K, so a shorter run may start them higher.
    transport_rate : float, optional
        Ramp rate (K/min) of the transport ramps, default ``rate``: four interleaved
        biases share each ramp, so a slower ramp samples each curve more finely.
    md : dict, optional
        Metadata merged into every run's start document.
    """
    md = validation.metadata(md)
    rate = validation.ramp_rate(rate)
    start, stop = validation.temperature_span(start, stop, LOWEST_SAMPLE_LIMIT)
    biases = validation.bias_currents(biases, float(station.bias_source.current_limit.get()))
    exposure_minutes = validation.number_in_range("exposure_minutes", exposure_minutes,
                                                  *validation.EXPOSURE_RANGE, "min")
    transport_start = start if transport_start is None else transport_start
    transport_start, _ = validation.temperature_span(transport_start, stop,
                                                     LOWEST_SAMPLE_LIMIT)
    transport_rate = validation.ramp_rate(rate if transport_rate is None else transport_rate)
    protocol_uid = str(uuid.uuid4())
    uids = []

    def step_md(index: int, **extra) -> dict:
        return {"protocol": "source_experiment", "protocol_uid": protocol_uid,
                "protocol_step": index + 1, "protocol_steps": len(PROTOCOL_STEPS),
                "protocol_step_name": PROTOCOL_STEPS[index], **extra, **(md or {})}

    def mount(kind: str) -> Generator:
        mount_md = {"protocol": "source_experiment", "protocol_uid": protocol_uid,
                    **{key: value for key, value in (md or {}).items() if key != "sample_id"}}
        return mount_sample(station, kind, md=mount_md)

    def chi_ramp(index: int, **extra) -> Generator:
        return build_susceptibility_ramp(station, start, stop, rate, SUSCEPTOMETER_FIELD,
                                         SUSCEPTOMETER_FREQUENCY, step_md(index, **extra))

    def transport(index: int, contacts: str, currents: Sequence[float], **extra) -> Generator:
        return build_transport_ramp(station, transport_start, stop, transport_rate, currents,
                                    contacts,
                                    TRANSPORT_EXCITATION, TRANSPORT_FREQUENCY,
                                    step_md(index, **extra))

    yield from mount("pb")
    uids.append((yield from calibrate_susceptometer(station, "pb", md=step_md(0))))
    yield from mount("mgb2")
    uids.append((yield from check_thermometry(station, md=step_md(1))))
    yield from mount("pure_mg")
    uids.append((yield from chi_ramp(2)))
    yield from mount("mg_mgo")
    uids.append((yield from chi_ramp(3, state="fresh")))
    uids.append((yield from transport(4, "core", (0.0,), state="fresh")))
    uids.append((yield from transport(5, "surface", biases, state="fresh")))
    uids.append((yield from expose_to_room_temperature(station, exposure_minutes,
                                                       md=step_md(6))))
    uids.append((yield from transport(7, "surface", biases, state="degraded")))
    uids.append((yield from chi_ramp(8, state="degraded")))
    return uids
