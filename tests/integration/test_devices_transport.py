"""The transport probe and its bias source against the simulated station IOC (Mg/MgO)."""

from __future__ import annotations

import statistics
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine
from bluesky.plans import count
from bluesky.utils import FailedStatus
from polling import events_of

from tcstation.devices import ComplianceError
from tcstation.ioc_sim.physics import PAPER_JUNCTIONS

pytestmark = pytest.mark.integration

LOCKIN_NOISE_OHM = 0.6e-6
"""One reading's noise in dU/dI: 15 nV/sqrt(Hz) over 1/(8 x 300 ms), over 17 mA rms."""


@pytest.fixture(scope="module", autouse=True)
def transport_insert(station):
    """The transport insert on the surface contacts, the source's output on."""
    RunEngine({})(bps.mv(station.environment.insert, "transport",
                         station.environment.contacts, "surface",
                         station.bias_source.output_enabled, "On"))


def wait_simulated_seconds(station, seconds: float, timeout: float = 10.0) -> None:
    clock = station.simulation.simulated_time
    start = clock.get()
    deadline = time.monotonic() + timeout
    while clock.get() < start + seconds:
        assert time.monotonic() < deadline, f"{seconds} s of simulated time did not pass"
        time.sleep(0.02)


def test_a_reading_right_after_a_bias_step_equals_the_settled_value(station, RE):
    transport, bias = station.transport, station.bias_source
    RE(bps.mv(bias, 0.0))
    before = events_of(RE, count([transport], num=3))

    def step_then_read():
        yield from bps.mv(bias, 0.4)
        yield from count([transport])

    (right_after,) = events_of(RE, step_then_read())
    wait_simulated_seconds(station, 20 * transport.settle_time())
    settled = events_of(RE, count([transport, station.simulation], num=6))

    key = "transport_dynamic_resistance"
    settled_values = [event[key] for event in settled]
    settled_mean = statistics.fmean(settled_values)
    tolerance = 5 * max(statistics.stdev(settled_values), LOCKIN_NOISE_OHM)
    step = settled_mean - statistics.fmean(event[key] for event in before)
    assert step > 100 * tolerance, "the bias step must move dU/dI well beyond the noise"
    # The trigger waits the SR830's settle time (7 tau at 12 dB/oct: 99 % of a step) on the
    # simulation clock, no more: what is left is under 1 % of the step.
    assert right_after[key] == pytest.approx(settled_mean, abs=0.01 * abs(step) + tolerance)
    assert right_after["transport_bias_measured_current"] == pytest.approx(0.4)
    assert settled_mean == pytest.approx(
        statistics.fmean(event["simulation_dynamic_resistance"] for event in settled),
        abs=tolerance)


def test_a_compliance_trip_is_reported(station, RE):
    bias = station.bias_source
    RE(bps.mv(bias, 0.0, bias.voltage_limit, 0.2))  # 0.4 A needs 0.6 V across 1.5 ohm
    try:
        with pytest.raises(FailedStatus) as raised:
            RE(bps.mv(bias, 0.4))
        assert isinstance(raised.value.__cause__, ComplianceError)
        assert "in compliance at 0.2 V" in str(raised.value.__cause__)
        (event,) = events_of(RE, count([bias]))
        assert event["transport_bias_compliance_tripped"] is True
        assert event["transport_bias_measured_current"] == pytest.approx(0.2 / 1.5)
    finally:
        RE(bps.mv(bias, 0.0, bias.voltage_limit, 2.0))


def test_dudi_of_the_surface_at_60_kelvin_is_the_normal_background(station, RE):
    cryostat, transport = station.cryostat, station.transport
    RE(bps.mv(station.bias_source, 0.0))
    RE(bps.mv(cryostat.heater_range, "High", cryostat.ramp_enabled, "Off"))
    RE(bps.mv(cryostat, 60.0))
    events = events_of(RE, count([transport, station.simulation], num=6))
    measured = statistics.fmean(event["transport_dynamic_resistance"] for event in events)
    # Above every junction's Tc the links are normal: Rb + RJ = 3.0 + 2.0 mOhm.
    normal_background = (PAPER_JUNCTIONS.background_resistance
                         + PAPER_JUNCTIONS.junction_resistance)
    assert measured == pytest.approx(normal_background, rel=2e-3)
    assert measured == pytest.approx(
        statistics.fmean(event["simulation_dynamic_resistance"] for event in events),
        abs=5 * LOCKIN_NOISE_OHM)
    assert events[0]["transport_excitation_amplitude"] == pytest.approx(0.024, rel=1e-3)
