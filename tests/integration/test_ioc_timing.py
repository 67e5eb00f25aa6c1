"""The station IOC's Channel Access timing, seen by a real client (pyepics).

EPICS database semantics: a put posts its new value, its readback and the
measurements it changes to monitors before the put completes.  And the IOC does
not republish values that did not change, while its readings stay new each tick.
"""

from __future__ import annotations

import threading
import time

import epics
import numpy as np
import pytest
from caproto._utils import ErrorResponseReceived
from caproto.sync.client import write as caproto_write

pytestmark = pytest.mark.integration

LOAD_RESISTANCE = 1.5  # ohm, SRC's simulated leads and contacts (ENV:LoadRes_RBV)


class Monitor:
    """Every monitor update of one PV, in arrival order (pyepics' CA thread)."""

    def __init__(self, name: str):
        self.values: list = []
        self._lock = threading.Lock()
        self.pv = epics.PV(name, auto_monitor=True, callback=self._record)
        deadline = time.monotonic() + 10.0
        while not self.values and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.values, f"no monitor update from {name} within 10 s"

    def _record(self, value=None, **kwargs):
        with self._lock:
            self.values.append(value)

    @property
    def last(self):
        with self._lock:
            return self.values[-1]

    def count(self) -> int:
        with self._lock:
            return len(self.values)

    def close(self) -> None:
        self.pv.clear_callbacks()
        self.pv.disconnect()


def put(name: str, value) -> None:
    assert epics.caput(name, value, wait=True, timeout=10.0) == 1, f"put to {name} failed"


@pytest.fixture(scope="module")
def station(station_factory):
    station = station_factory(speedup=60.0, noise=False)
    put(f"{station.prefix}ENV:Insert", "transport")
    return station


@pytest.fixture
def monitors():
    opened: list[Monitor] = []

    def open_monitor(name: str) -> Monitor:
        monitor = Monitor(name)
        opened.append(monitor)
        return monitor

    yield open_monitor
    for monitor in opened:
        monitor.close()


def test_a_bias_put_completes_after_its_readback_and_measurement_are_posted(station, monitors):
    prefix = station.prefix
    put(f"{prefix}SRC:VoltLimit", 2.0)
    put(f"{prefix}SRC:Output", "On")
    readback = monitors(f"{prefix}SRC:Curr_RBV")
    current = monitors(f"{prefix}SRC:CurrMeas")
    voltage = monitors(f"{prefix}SRC:VoltMeas")
    tripped = monitors(f"{prefix}SRC:Tripped")  # enum index: 0 No, 1 Yes
    for amps in (0.1, 0.4, -0.2, 0.3, 0.0, 0.05, 0.6, 0.2, 0.4, 0.1):
        put(f"{prefix}SRC:Curr", amps)
        # No waiting: put completion itself is the synchronisation under test.
        assert readback.last == pytest.approx(amps), f"Curr_RBV not posted before {amps} A"
        assert current.last == pytest.approx(amps), f"CurrMeas not posted before {amps} A"
        assert voltage.last == pytest.approx(amps * LOAD_RESISTANCE)
        assert tripped.last == 0
    put(f"{prefix}SRC:Curr", 1.0)
    assert tripped.last == 0 and current.last == pytest.approx(1.0)
    # 1 A x 1.5 ohm is beyond a 1 V compliance: the source limits and says so at once.
    put(f"{prefix}SRC:VoltLimit", 1.0)
    assert tripped.last == 1
    assert voltage.last == pytest.approx(1.0)
    assert current.last == pytest.approx(1.0 / LOAD_RESISTANCE)
    put(f"{prefix}SRC:VoltLimit", 5.0)
    assert tripped.last == 0, "raising the compliance posts the new measurement at once"
    assert current.last == pytest.approx(1.0)
    put(f"{prefix}SRC:Output", "Off")
    assert current.last == 0.0 and voltage.last == 0.0
    put(f"{prefix}SRC:Curr", 0.0)


@pytest.mark.parametrize(("suffix", "values"), [
    ("TC:OUT1:SP", (10.0, 4.2, 12.5)),
    ("TC:RampR1", (1.5, 0.5, 1.0)),
    ("LIA2:SENS", (16, 14, 15)),
    ("LIA2:OFLT", (8, 10, 9)),
    ("ENV:FieldDC", (10.0, 0.0, -5.0)),
])
def test_a_setting_put_completes_after_its_readback_is_posted(station, monitors, suffix,
                                                               values):
    prefix = station.prefix
    setpoint = monitors(f"{prefix}{suffix}")
    readback = monitors(f"{prefix}{suffix}_RBV")
    for value in values:
        put(f"{prefix}{suffix}", value)
        assert setpoint.last == pytest.approx(value)
        assert readback.last == pytest.approx(value)
    put(f"{prefix}ENV:FieldDC", 0.0)


def test_unchanged_values_are_not_republished_while_readings_stay_new(station, monitors):
    prefix = station.prefix
    put(f"{prefix}TC:HTR1:Range", "Off")
    put(f"{prefix}SIM:Noise", "On")
    fraction = monitors(f"{prefix}SIM:ScFraction_RBV")
    warm_time = monitors(f"{prefix}ENV:WarmTime_RBV")
    heater = monitors(f"{prefix}TC:HTR1")
    reading = monitors(f"{prefix}LIA2:X")
    clock = monitors(f"{prefix}SIM:Time_RBV")
    # The counts are taken between two clock updates, so that both bracket whole ticks.
    start = clock.count()
    counts = (fraction.count(), warm_time.count(), heater.count(), reading.count())
    deadline = time.monotonic() + 60.0
    while clock.count() < start + 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    ticks = clock.count() - start
    assert ticks >= 30, f"only {ticks} clock updates within 60 s"
    new = [after.count() - before for after, before in
           zip((fraction, warm_time, heater, reading), counts, strict=True)]
    put(f"{prefix}SIM:Noise", "Off")
    # At base temperature with the heater off nothing of these changes.
    assert new[:3] == [0, 0, 0], f"unchanged values republished over {ticks} ticks: {new[:3]}"
    # A noisy reading is new every tick (one tick's slack for the bracketing).
    assert new[3] >= ticks - 1, f"{new[3]} lock-in readings over {ticks} ticks"


def test_kelvin_reads_kelvin_whatever_the_display_units(station, monitors):
    prefix = station.prefix
    put(f"{prefix}TC:IN1:Units", "C")
    try:
        display = monitors(f"{prefix}TC:IN1")
        kelvin = monitors(f"{prefix}TC:IN1:Kelvin")
        clock = monitors(f"{prefix}SIM:Time_RBV")
        start = clock.count()
        deadline = time.monotonic() + 30.0
        while clock.count() < start + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert clock.count() >= start + 2, "no tick within 30 s"
        assert display.last == pytest.approx(kelvin.last - 273.15, abs=0.05)
        assert 4.0 < kelvin.last < 4.6
        assert epics.caget(f"{prefix}TC:IN2:Kelvin", use_monitor=False) == pytest.approx(
            epics.caget(f"{prefix}SIM:SampleTemp_RBV", use_monitor=False), abs=0.05)
    finally:
        put(f"{prefix}TC:IN1:Units", "K")


def test_a_wake_request_runs_the_simulation_to_exactly_that_time(station_factory, monitors):
    """A client waiting for a simulated time gets it at full speed, in published steps.

    At 2x, 30 simulated seconds would take 15 wall seconds at the speed-up; the IOC
    runs to the requested time in steps of at most ``FAST_STEP``, each published,
    readings before the clock, and lands on exactly that time.
    """
    from tcstation.ioc_sim.station import FAST_STEP, MAX_WAKE_AHEAD

    station = station_factory(speedup=2.0, noise=True)
    prefix = station.prefix
    clock = monitors(f"{prefix}SIM:Time_RBV")
    reading = monitors(f"{prefix}LIA1:X")
    at_request = clock.count()
    readings_before = reading.count()
    wake = clock.last + 30.0 + 0.0123
    requested = time.monotonic()
    put(f"{prefix}SIM:WakeAt", wake)
    deadline = requested + 30.0
    while clock.last < wake and time.monotonic() < deadline:
        time.sleep(0.01)
    reached = time.monotonic() - requested
    times = list(clock.values)
    assert wake in times, f"no step at exactly {wake}: {[t for t in times if t > wake - 2]}"
    at = times.index(wake)
    steps = np.diff(times[at_request - 1:at + 1])
    assert steps.max() <= FAST_STEP + 1e-9, f"a step of {steps.max():g} s while waking"
    assert reached < 0.5 * 30.0 / 2.0, (
        f"30 simulated s took {reached:.1f} wall s: not faster than the 2x speed-up")
    assert reading.count() - readings_before >= 30 / FAST_STEP - 1, "every step is published"
    # The clock goes on at the speed-up afterwards.
    deadline = time.monotonic() + 30.0
    while clock.count() <= at + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert clock.values[at + 1] > wake
    # Too far ahead is refused, with the allowed range.
    too_far = clock.last + MAX_WAKE_AHEAD + 100.0
    with pytest.raises(ErrorResponseReceived) as refused:
        caproto_write(f"{prefix}SIM:WakeAt", [too_far], notify=True, timeout=5.0)
    message = bytes(refused.value.args[0].error_message).decode().rstrip("\x00")
    assert f"{MAX_WAKE_AHEAD:g} s ahead" in message and f"{too_far:g}" in message, message
    put(f"{prefix}SIM:WakeAt", 1.0)
