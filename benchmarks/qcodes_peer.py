"""QCoDeS as a peer: the four-bias transport measurement written the QCoDeS way, against ours.

On the same simulated station (a fresh IOC per method, same sample, seed and
speed-up, the cryostat settled at the start temperature first), three ways of
measuring dU/dI at the dc biases 0, 0.2, 0.3 and 0.4 A over the same span:

- ``qcodes dond``: what a QCoDeS user writes. Instruments whose parameters
  read and write our IOC's PVs (``epics.caget``/``caput``), a LakeShore-style
  ``blocking_t`` parameter that sets the setpoint and polls the sample sensor
  until it has stayed within a tolerance for an equilibration time (as
  ``qcodes.instrument_drivers.Lakeshore`` does, with an absolute tolerance),
  and ``dond(LinSweep(blocking_t, ...), ArraySweep(bias, ..., post_actions=(settle,)),
  dudi, T_sample, I_measured)`` into an SQLite dataset, ``settle`` sleeping the
  lock-in's settle time (7 time constants) on the simulated clock (on a real
  station: ``delay=settle_time``; see ``SimulatedClock`` for why not here).
- ``bluesky transport_ramp``: our interleaved ramp, one continuous heating ramp.
- ``bluesky adaptive ramp``: ``adaptive_transport_ramp``, fast away from the
  transition and slow near it.

For each: simulated cryostat minutes (``SIM:Time_RBV``), the dU/dI onset found
by ``analysis.transitions`` against the simulator's truth
(``SampleModel.true_onsets``) at every bias, and the software's own overhead
per point: (wall time - time waiting on the instruments) / points, where

- QCoDeS waits = wall time inside ``blocking_t.set`` (setpoint put and the
  stability loop, its polls included), inside every parameter set
  (``caput(wait=True)``: the IOC's put completion, as a bluesky ``mv`` waits
  for a readback) and inside the settle action after each bias step, each
  timed by a wrapper;
- bluesky waits = time the RunEngine spends in its ``wait`` and ``sleep``
  commands (a RunEngine subclass times them): blocked on device statuses
  (temperature hold, bias source settling, lock-in settle and fresh reading,
  setting readbacks).

Everything else (QCoDeS's Channel Access reads, dataset writes, the loops; the
RunEngine's messages, reads of monitored signals, documents, the rate rule) is
software overhead. Our side keeps its events in memory (no Tiled); QCoDeS
writes its SQLite dataset, its normal path.

Then the raw floor of each framework in-process, no IOC: ``dond`` of a 2-D
``LinSweep`` on ``DummyInstrument`` reading ``DummyInstrumentWithMeasurement.v2``
against ``grid_scan`` on ``ophyd.sim`` ``motor1``, ``motor2``, ``det4`` with a
bare RunEngine (no subscribers), the same number of points, alternated and
repeated: points per second and their ratio.

    python benchmarks/qcodes_peer.py [--quick] [--json PATH]

Needs the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tcstation.ioc_process import SimulatedStationProcess, free_port, loopback_client_environment

BIASES = (0.0, 0.2, 0.3, 0.4)  # A
EXCITATION = 0.024  # A amplitude
FREQUENCY = 13.0  # Hz
TIME_CONSTANT_INDEX = 9  # OFLT 9 = 300 ms
CONTACTS = "surface"
SAMPLE = "mg_mgo"
SEED = 1
PRESETTLE_TOLERANCE = 0.05  # K
PRESETTLE_HOLD = 30.0  # physical s


@dataclass(frozen=True)
class Conditions:
    """What one run of this script measures under."""

    speedup: float = 20.0  # as helium_budget.py: a reading costs ~5 simulated s, not ~8
    start: float = 40.0  # K
    stop: float = 64.0  # K
    step: float = 0.25  # K, dond's temperature step
    tolerance: float = 0.05  # K, |T_sample - setpoint| for stability
    equilibration: float = 10.0  # physical s inside the tolerance
    poll: float = 1.0  # physical s between stability polls
    ramp_rate: float = 1.5  # K/min, transport_ramp
    fast: float = 1.5  # K/min, adaptive ramp
    slow: float = 0.3  # K/min, adaptive ramp
    floor_shape: tuple[int, int] = (20, 50)  # raw floor grid
    floor_repeats: int = 3

    @property
    def temperatures(self) -> int:
        return int(round((self.stop - self.start) / self.step)) + 1


QUICK = Conditions(start=46.0, stop=60.0, step=0.5, floor_shape=(10, 20),
                   floor_repeats=1)


@dataclass
class MethodResult:
    name: str
    points: int
    simulated_minutes: float
    wall_seconds: float
    wait_seconds: float
    onsets: dict[str, float]
    errors: dict[str, float]
    reasons: dict[str, str]
    notes: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_ms_per_point(self) -> float:
        return 1e3 * (self.wall_seconds - self.wait_seconds) / max(self.points, 1)

    @property
    def found(self) -> int:
        return sum(math.isfinite(value) for value in self.errors.values())

    @property
    def max_abs_error(self) -> float:
        """Largest |onset error| over the biases where an onset was found (nan if none)."""
        values = [abs(value) for value in self.errors.values() if math.isfinite(value)]
        return max(values) if values else math.nan


def truth_onsets() -> dict[float, float]:
    from tcstation.ioc_sim.sample import SampleModel

    model = SampleModel(SAMPLE)
    return {bias: model.true_onsets(bias_current=bias, excitation_amplitude=EXCITATION,
                                    contacts=CONTACTS)["dudi_onset"] for bias in BIASES}


def onset_errors(table: dict, truth: dict[float, float]) -> tuple[dict, dict, dict]:
    """Onsets found in a table with columns temperature, dudi, bias; errors; why not found."""
    from tcstation.analysis.transitions import transitions_by_bias

    found = transitions_by_bias(table, temperature="temperature", signal="dudi", bias="bias",
                                bias_tolerance=5e-3)
    onsets, errors, reasons = {}, {}, {}
    for bias, expected in truth.items():
        key = f"{bias:g}"
        nearest = min(found, key=lambda value: abs(value - bias), default=None)
        onset = math.nan
        if nearest is None or abs(nearest - bias) > 5e-3:
            reasons[key] = "no readings at this bias"
        elif found[nearest].found:
            onset = found[nearest].onset
        else:
            reasons[key] = found[nearest].reason
        onsets[key] = onset
        errors[key] = onset - expected
    return onsets, errors, reasons


# -- Channel Access helpers (pyepics, imported once the environment is set) -----------------


def ca_get(pvname: str, **kwargs):
    import epics

    value = epics.caget(pvname, timeout=5.0, **kwargs)
    if value is None:
        raise TimeoutError(f"no answer from {pvname}")
    return value


def ca_put(pvname: str, value) -> None:
    import epics

    if epics.caput(pvname, value, wait=True, timeout=5.0) is None:
        raise TimeoutError(f"put to {pvname} did not complete")


def simulated_seconds(prefix: str) -> float:
    return float(ca_get(prefix + "SIM:Time_RBV"))


def presettle(prefix: str, temperature: float, speedup: float) -> None:
    """Closed loop, heater High, ramping off, hold ``temperature``; wait until the sample holds."""
    tc = prefix + "TC:"
    ca_put(tc + "OUT1:Mode", "Closed Loop")
    ca_put(tc + "HTR1:Range", "High")
    ca_put(tc + "OnRamp1", "Off")
    ca_put(tc + "OUT1:SP", temperature)
    deadline = time.monotonic() + 1800.0 / speedup
    inside_since = None
    while time.monotonic() < deadline:
        now = simulated_seconds(prefix)
        if abs(float(ca_get(tc + "IN2")) - temperature) <= PRESETTLE_TOLERANCE:
            inside_since = now if inside_since is None else inside_since
            if now - inside_since >= PRESETTLE_HOLD:
                return
        else:
            inside_since = None
        time.sleep(0.5 / speedup)
    raise TimeoutError(f"the sample did not settle at {temperature:g} K")


# -- The QCoDeS peer --------------------------------------------------------------------------


class SimulatedClock:
    """The instrument's clock: ``SIM:Time_RBV``, monitored.

    On a real station a settle delay is ``time.sleep(seconds)``; against the
    simulator the same wait is ``seconds`` of *simulated* time, which at a high
    speed-up is not ``seconds / speedup`` of wall time: the IOC steps its physics
    in wall-clock ticks plus the time a step takes, and a put takes effect at the
    next step. Sleeping on this clock keeps the QCoDeS side's waits physical.
    """

    def __init__(self, prefix: str, time_scale: float):
        import epics

        self.pv = epics.PV(prefix + "SIM:Time_RBV", auto_monitor=True)
        if not self.pv.wait_for_connection(timeout=5.0):
            raise TimeoutError(f"no answer from {self.pv.pvname}")
        self.time_scale = time_scale

    def now(self) -> float:
        return float(self.pv.get())

    def sleep(self, seconds: float) -> None:
        """Until the simulated clock has advanced ``seconds`` from now."""
        target = self.now() + seconds
        time.sleep(seconds * self.time_scale)
        while self.now() < target:
            time.sleep(0.001)


class Stopwatch:
    """Wall seconds the QCoDeS side spends waiting, and in Channel Access reads outside waits."""

    def __init__(self):
        self.waiting = 0.0
        self.reads = 0.0
        self._depth = 0

    def reset(self) -> None:
        self.waiting = self.reads = 0.0

    def timed_wait(self, function):
        def wrapper(*args):
            began = time.perf_counter()
            self._depth += 1
            try:
                return function(*args)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.waiting += time.perf_counter() - began
        return wrapper

    def timed_read(self, pvname: str, **kwargs):
        def read():
            began = time.perf_counter()
            try:
                return ca_get(pvname, **kwargs)
            finally:
                if self._depth == 0:
                    self.reads += time.perf_counter() - began
        return read


def qcodes_instruments(prefix: str, simulated: SimulatedClock, clock: Stopwatch):
    """Cryostat, transport lock-in, bias source and sample environment as QCoDeS instruments."""
    from qcodes import validators as vals
    from qcodes.instrument import Instrument

    class EpicsInstrument(Instrument):
        """An instrument whose parameters are PVs under one prefix."""

        def __init__(self, name: str, pv_prefix: str, **kwargs):
            super().__init__(name, **kwargs)
            self.pv_prefix = pv_prefix

        def pv_parameter(self, name: str, pv: str, readback: str | None = None,
                         settable: bool = True, **kwargs):
            return self.add_parameter(
                name, get_cmd=clock.timed_read(self.pv_prefix + (readback or pv)),
                set_cmd=clock.timed_wait(lambda value, _pv=self.pv_prefix + pv: ca_put(_pv, value))
                if settable else False, **kwargs)

        def get_idn(self) -> dict:
            return {"vendor": "tcstation simulator", "model": self.name, "serial": None,
                    "firmware": None}

    class Cryostat(EpicsInstrument):
        """LakeShore 336 loop 1; ``blocking_t`` waits for the sample sensor to be stable."""

        def __init__(self, name: str, pv_prefix: str, **kwargs):
            super().__init__(name, pv_prefix, **kwargs)
            self.pv_parameter("setpoint", "OUT1:SP", "OUT1:SP_RBV", unit="K",
                              vals=vals.Numbers(0, 325))
            self.pv_parameter("sample_temperature", "IN2", settable=False, unit="K")
            self.pv_parameter("stage_temperature", "IN1", settable=False, unit="K")
            self.pv_parameter("heater_range", "HTR1:Range", "HTR1:Range_RBV",
                              vals=vals.Enum("Off", "Low", "Medium", "High"))
            self.pv_parameter("control_mode", "OUT1:Mode", "OUT1:Mode_RBV",
                              vals=vals.Enum("Off", "Closed Loop", "Zone", "Open Loop"))
            self.pv_parameter("ramp_enabled", "OnRamp1", "OnRamp1_RBV", vals=vals.Enum("Off", "On"))
            for name, value, unit in (("wait_tolerance", 0.05, "K"),
                                      ("wait_equilibration_time", 10.0, "s"),
                                      ("wait_cycle_time", 1.0, "s"),
                                      ("wait_timeout", 900.0, "s")):
                self.add_parameter(name, get_cmd=None, set_cmd=None, initial_value=value,
                                   unit=unit)
            self.add_parameter("blocking_t", unit="K", vals=vals.Numbers(0, 325),
                               get_cmd=False,
                               set_cmd=clock.timed_wait(self._set_blocking_t),
                               docstring="Set the setpoint and wait until the sample holds it")

        def _set_blocking_t(self, temperature: float) -> None:
            self.setpoint(temperature)
            self.wait_until_set_point_reached(temperature)

        def wait_until_set_point_reached(self, temperature: float) -> None:
            """Poll the sample sensor until it stays within tolerance for the equilibration time.

            As the QCoDeS LakeShore drivers do, with an absolute tolerance; times are
            physical seconds on the instrument's (simulated) clock.
            """
            tolerance = self.wait_tolerance()
            equilibration = self.wait_equilibration_time()
            cycle = self.wait_cycle_time() * simulated.time_scale
            deadline = simulated.now() + self.wait_timeout()
            entered = None
            while True:
                now = simulated.now()
                if now > deadline:
                    raise TimeoutError(f"{self.name}: the sample did not hold {temperature:g} K")
                if abs(self.sample_temperature() - temperature) > tolerance:
                    entered = None
                elif entered is None:
                    entered = now
                elif now - entered >= equilibration:
                    return
                time.sleep(cycle)

    class TransportLockIn(EpicsInstrument):
        """SR830 on the transport insert; ``dudi`` is X over the ac current."""

        def __init__(self, name: str, pv_prefix: str, environment_prefix: str, **kwargs):
            super().__init__(name, pv_prefix, **kwargs)
            self.pv_parameter("x", "X", settable=False, unit="V")
            self.pv_parameter("frequency", "FREQ", "FREQ_RBV", unit="Hz")
            self.pv_parameter("sine_amplitude", "SLVL", "SLVL_RBV", unit="V")
            self.pv_parameter("time_constant", "OFLT", "OFLT_RBV")
            self.pv_parameter("slope", "OFSL", "OFSL_RBV")
            self.add_parameter("excitation_gain", unit="A/V", set_cmd=False,
                               get_cmd=clock.timed_read(environment_prefix + "ExciteGain_RBV"))
            self.add_parameter("dudi", unit="ohm", get_cmd=self._dudi, set_cmd=False)

        def _dudi(self) -> float:
            current_rms = self.excitation_gain.cache.get() * self.sine_amplitude.cache.get()
            return self.x() / current_rms

        def settle_time(self) -> float:
            """Physical seconds to settle after a step (5/7/9/10 time constants)."""
            from tcstation.devices import sr830_tables

            return sr830_tables.settle_time(int(self.time_constant()), int(self.slope()))

    class BiasSource(EpicsInstrument):
        def __init__(self, name: str, pv_prefix: str, **kwargs):
            super().__init__(name, pv_prefix, **kwargs)
            self.add_parameter("current", unit="A", vals=vals.Numbers(-1.05, 1.05),
                               get_cmd=clock.timed_read(pv_prefix + "Curr_RBV"),
                               set_cmd=clock.timed_wait(self._set_current))
            self.pv_parameter("measured_current", "CurrMeas", settable=False, unit="A")
            self.pv_parameter("output", "Output", "Output_RBV", vals=vals.Enum("Off", "On"))

        def _set_current(self, value: float) -> None:
            ca_put(self.pv_prefix + "Curr", value)

    class Environment(EpicsInstrument):
        def __init__(self, name: str, pv_prefix: str, **kwargs):
            super().__init__(name, pv_prefix, **kwargs)
            self.pv_parameter("insert", "Insert", "Insert_RBV")
            self.pv_parameter("contacts", "Contacts", "Contacts_RBV")

    tag = uuid.uuid4().hex[:6]
    return (Cryostat(f"cryostat_{tag}", prefix + "TC:"),
            TransportLockIn(f"lockin_{tag}", prefix + "LIA2:", prefix + "ENV:"),
            BiasSource(f"source_{tag}", prefix + "SRC:"),
            Environment(f"environment_{tag}", prefix + "ENV:"))


def run_qcodes(prefix: str, conditions: Conditions, truth: dict, database: Path) -> MethodResult:
    from qcodes.dataset import (
        ArraySweep,
        LinSweep,
        dond,
        initialise_or_create_database_at,
        load_or_create_experiment,
    )
    from qcodes.station import Station as QcodesStation

    from tcstation.devices import sr830_tables

    simulated = SimulatedClock(prefix, 1.0 / conditions.speedup)
    clock = Stopwatch()
    cryostat, lockin, source, environment = qcodes_instruments(prefix, simulated, clock)
    station = QcodesStation(cryostat, lockin, source, environment)
    cryostat.wait_tolerance(conditions.tolerance)
    cryostat.wait_equilibration_time(conditions.equilibration)
    cryostat.wait_cycle_time(conditions.poll)
    initialise_or_create_database_at(database)
    experiment = load_or_create_experiment("qcodes_peer", sample_name=SAMPLE)

    def configure() -> None:
        environment.insert("transport")
        environment.contacts(CONTACTS)
        gain = lockin.excitation_gain()
        lockin.frequency(FREQUENCY)
        lockin.sine_amplitude(EXCITATION / (math.sqrt(2.0) * gain))
        lockin.time_constant(TIME_CONSTANT_INDEX)
        lockin.sine_amplitude()  # fill the caches dudi uses
        source.current(0.0)
        source.output("On")
        cryostat.control_mode("Closed Loop")
        cryostat.heater_range("High")
        cryostat.ramp_enabled("Off")

    def make_safe() -> None:
        source.current(0.0)
        source.output("Off")

    # After each bias step, the lock-in's settle time for OFLT 9 at the present slope
    # (``delay=`` that on a real station; here on the simulated clock, see SimulatedClock).
    settle_seconds = sr830_tables.settle_time(TIME_CONSTANT_INDEX, int(lockin.slope()))
    settle = clock.timed_wait(lambda: simulated.sleep(settle_seconds))
    clock.reset()
    sim_before = simulated_seconds(prefix)
    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # dond prints the run id
        dataset, _, _ = dond(
            LinSweep(cryostat.blocking_t, conditions.start, conditions.stop,
                     conditions.temperatures),
            ArraySweep(source.current, list(BIASES), post_actions=(settle,)),
            lockin.dudi, cryostat.sample_temperature, source.measured_current,
            exp=experiment, measurement_name="transport_dond",
            enter_actions=(configure,), exit_actions=(make_safe,),
            do_plot=False, show_progress=False)
    wall = time.perf_counter() - began
    sim_minutes = (simulated_seconds(prefix) - sim_before) / 60.0
    waiting = clock.waiting
    data = dataset.get_parameter_data()
    dudi = data[lockin.dudi.full_name]
    temperature = data[cryostat.sample_temperature.full_name]
    table = {"dudi": dudi[lockin.dudi.full_name].ravel(),
             "bias": dudi[source.current.full_name].ravel(),
             "temperature": temperature[cryostat.sample_temperature.full_name].ravel()}
    onsets, errors, reasons = onset_errors(table, truth)
    points = len(table["dudi"])
    station.close_all_registered_instruments()
    return MethodResult("qcodes dond (stepped)", points, sim_minutes, wall, waiting, onsets,
                        errors, reasons, notes={"ca_read_ms_per_point": 1e3 * clock.reads / points,
                                       "settle_seconds": settle_seconds,
                                       "temperatures": conditions.temperatures})


# -- Our ramps --------------------------------------------------------------------------------


def timed_run_engine():
    from bluesky import RunEngine

    class TimedRunEngine(RunEngine):
        """A RunEngine that adds up the wall time spent in its wait and sleep commands."""

        waited = 0.0

        async def _wait(self, msg):
            began = time.perf_counter()
            try:
                return await super()._wait(msg)
            finally:
                self.waited += time.perf_counter() - began

        async def _sleep(self, msg):
            began = time.perf_counter()
            try:
                return await super()._sleep(msg)
            finally:
                self.waited += time.perf_counter() - began

    return TimedRunEngine({})


def run_bluesky(prefix: str, conditions: Conditions, truth: dict, adaptive: bool
                ) -> MethodResult:
    from tcstation.devices.station import build_station
    from tcstation.plans.ramps import adaptive_transport_ramp, transport_fields, transport_ramp

    station = build_station(prefix).connect()
    fields = transport_fields(station)
    columns = {"temperature": [], "dudi": [], "bias": []}
    keys = {"temperature": fields["temperature"], "dudi": fields["signal"],
            "bias": fields["bias"]}

    def collect(name, document):
        for column, key in keys.items():
            columns[column].append(document["data"][key])

    RE = timed_run_engine()
    RE.subscribe(collect, "event")
    if adaptive:
        plan = adaptive_transport_ramp(station, start=conditions.start, stop=conditions.stop,
                                       fast=conditions.fast, slow=conditions.slow,
                                       biases=BIASES)
        name = "bluesky adaptive ramp"
    else:
        plan = transport_ramp(station, start=conditions.start, stop=conditions.stop,
                              rate=conditions.ramp_rate, biases=BIASES)
        name = "bluesky transport_ramp"
    sim_before = simulated_seconds(prefix)
    began = time.perf_counter()
    RE(plan)
    wall = time.perf_counter() - began
    sim_minutes = (simulated_seconds(prefix) - sim_before) / 60.0
    onsets, errors, reasons = onset_errors(columns, truth)
    for device in station.devices:
        device.destroy()
    return MethodResult(name, len(columns["dudi"]), sim_minutes, wall, RE.waited, onsets,
                        errors, reasons)


# -- The raw floor ----------------------------------------------------------------------------


def floor_qcodes(shape: tuple[int, int], database: Path) -> float:
    """Points per second of dond on the dummy instruments."""
    from qcodes.dataset import LinSweep, dond, load_or_create_experiment
    from qcodes.instrument_drivers.mock_instruments import (
        DummyInstrument,
        DummyInstrumentWithMeasurement,
    )

    tag = uuid.uuid4().hex[:6]
    dac = DummyInstrument(f"dac_{tag}", gates=["ch1", "ch2"])
    dmm = DummyInstrumentWithMeasurement(f"dmm_{tag}", setter_instr=dac)
    experiment = load_or_create_experiment("raw_floor", sample_name="dummy")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # dond prints the run id
            began = time.perf_counter()
            dond(LinSweep(dac.ch1, 0, 1, shape[0]), LinSweep(dac.ch2, 0, 1, shape[1]), dmm.v2,
                 exp=experiment, do_plot=False, show_progress=False)
            elapsed = time.perf_counter() - began
    finally:
        dmm.close()
        dac.close()
    return shape[0] * shape[1] / elapsed


def floor_bluesky(shape: tuple[int, int]) -> float:
    """Points per second of grid_scan on ophyd.sim with a bare RunEngine."""
    from bluesky import RunEngine
    from bluesky.plans import grid_scan
    from ophyd.sim import det4, motor1, motor2

    RE = RunEngine({})
    began = time.perf_counter()
    RE(grid_scan([det4], motor1, 0, 1, shape[0], motor2, 0, 1, shape[1]))
    elapsed = time.perf_counter() - began
    return shape[0] * shape[1] / elapsed


def raw_floor(conditions: Conditions, database: Path) -> dict:
    from qcodes.dataset import initialise_or_create_database_at

    initialise_or_create_database_at(database)
    floor_bluesky((2, 5))  # warm up imports and first-call costs of both
    floor_qcodes((2, 5), database)
    qcodes_rates, bluesky_rates = [], []
    for _ in range(conditions.floor_repeats):
        qcodes_rates.append(floor_qcodes(conditions.floor_shape, database))
        bluesky_rates.append(floor_bluesky(conditions.floor_shape))
    qcodes_rate = statistics.median(qcodes_rates)
    bluesky_rate = statistics.median(bluesky_rates)
    return {"points": conditions.floor_shape[0] * conditions.floor_shape[1],
            "repeats": conditions.floor_repeats,
            "qcodes_points_per_s": qcodes_rate, "bluesky_points_per_s": bluesky_rate,
            "qcodes_over_bluesky": qcodes_rate / bluesky_rate,
            "qcodes_runs": qcodes_rates, "bluesky_runs": bluesky_rates}


# -- Report -----------------------------------------------------------------------------------


def figures(conditions: Conditions, results: list[MethodResult], floor: dict,
            truth: dict) -> list[dict]:
    """The figures for the combined table (see ``benchmarks/run_all.py``)."""
    shared = (f"{conditions.start:g} -> {conditions.stop:g} K, IOC at {conditions.speedup:g}x "
              f"(fresh IOC per method, {SAMPLE} {CONTACTS}, noise on, seed {SEED}), biases "
              + "/".join(f"{1e3 * bias:g}" for bias in BIASES) + " mA; truth "
              + ", ".join(f"{1e3 * bias:g} mA {value:.2f} K" for bias, value in truth.items()))
    how = {"qcodes dond (stepped)": (
               f"dond over {conditions.temperatures} setpoints ({conditions.step:g} K steps, "
               f"stable = within {conditions.tolerance:g} K for {conditions.equilibration:g} s, "
               f"polled every {conditions.poll:g} s) x 4 biases, the lock-in settle after "
               "each bias step, SQLite dataset"),
           "bluesky transport_ramp": f"one ramp at {conditions.ramp_rate:g} K/min, biases "
                                     "interleaved, events in memory",
           "bluesky adaptive ramp": f"one ramp at {conditions.fast:g} K/min, "
                                    f"{conditions.slow:g} K/min where dU/dI changes"}
    rows = []
    for result in results:
        error = (f"max |error| {result.max_abs_error:.2f} K" if result.found == len(BIASES)
                 else f"{result.found} of {len(BIASES)} onsets found")
        rows.append({
            "what": f"peer: {result.name}", "value": result.simulated_minutes,
            "text": (f"{result.simulated_minutes:.0f} cryostat min, {error}, software "
                     f"{result.overhead_ms_per_point:.1f} ms/pt ({result.points} points, "
                     f"{result.wall_seconds:.0f} s wall of which {result.wait_seconds:.0f} s "
                     "waiting on the instruments)"),
            "conditions": f"{how.get(result.name, '')}; {shared}"})
        if result.reasons:
            rows[-1]["note"] = "no onset at " + "; ".join(
                f"{float(bias) * 1e3:g} mA: {reason}" for bias, reason in result.reasons.items())
    by_name = {result.name: result for result in results}
    peer = by_name.get("qcodes dond (stepped)")
    for name in ("bluesky transport_ramp", "bluesky adaptive ramp"):
        ours = by_name.get(name)
        if peer is None or ours is None:
            continue
        minutes = peer.simulated_minutes / ours.simulated_minutes
        overhead = peer.overhead_ms_per_point / ours.overhead_ms_per_point
        rows.append({
            "what": f"peer: QCoDeS dond / {name.removeprefix('bluesky ')}",
            "value": minutes,
            "text": (f"cryostat minutes {minutes:.2f}x, software overhead per point "
                     f"{overhead:.2f}x"),
            "conditions": "ratios of the rows above (> 1: ours costs less)"})
    rows.append({
        "what": "raw floor in-process: QCoDeS dond (dummy instruments) / bluesky grid_scan "
                "(ophyd.sim)",
        "value": floor["qcodes_over_bluesky"],
        "text": (f"{floor['qcodes_points_per_s']:.0f} against "
                 f"{floor['bluesky_points_per_s']:.0f} points/s: "
                 f"{floor['qcodes_over_bluesky']:.2f}x "
                 f"({'QCoDeS' if floor['qcodes_over_bluesky'] > 1 else 'bluesky'} is faster)"),
        "conditions": (f"{floor['points']} points (2-D grid), median of {floor['repeats']}; "
                       "QCoDeS writes its SQLite dataset, the RunEngine has no subscriber")})
    return rows



def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("qcodes", "bluesky", "ophyd", "pyepics", "caproto")}


def print_report(conditions: Conditions, results: list[MethodResult], floor: dict,
                 truth: dict, meta: dict) -> None:
    print(f"# QCoDeS peer benchmark, {meta['date']}, {meta['machine']}, "
          f"{meta['cpus']} CPUs, Python {meta['python']}")
    print("# " + ", ".join(f"{name} {value}" for name, value in meta["versions"].items()))
    print(f"# simulated station: sample {SAMPLE}, {CONTACTS} contacts, seed {SEED}, noise on, "
          f"speed-up {conditions.speedup:g}, a fresh IOC per method, sample settled at "
          f"{conditions.start:g} K first")
    print(f"# span {conditions.start:g} -> {conditions.stop:g} K, biases "
          f"{', '.join(f'{b:g}' for b in BIASES)} A, excitation {EXCITATION * 1e3:g} mA, "
          f"{FREQUENCY:g} Hz, time constant 300 ms")
    print(f"# dond: {conditions.temperatures} temperatures, step {conditions.step:g} K; "
          f"stable = |T_sample - setpoint| <= {conditions.tolerance:g} K for "
          f"{conditions.equilibration:g} s, polled every {conditions.poll:g} s "
          f"(physical s); after each bias step the lock-in settle time")
    print(f"# transport_ramp {conditions.ramp_rate:g} K/min; adaptive ramp "
          f"{conditions.fast:g}/{conditions.slow:g} K/min")
    print("# truth (dU/dI onset, K): "
          + ", ".join(f"{b:g} A {t:.2f}" for b, t in truth.items()))
    header = (f"{'method':26s} {'points':>6s} {'sim min':>8s} {'wall s':>7s} {'wait s':>7s} "
              f"{'ovh ms/pt':>9s} " + " ".join(f"{f'dTc {b:g}A':>8s}" for b in BIASES)
              + f" {'found':>5s} {'max|dTc|':>8s}")
    print(header)
    for result in results:
        errors = " ".join(f"{value:+8.2f}" if math.isfinite(value) else f"{'none':>8s}"
                          for value in (result.errors[f"{b:g}"] for b in BIASES))
        print(f"{result.name:26s} {result.points:6d} {result.simulated_minutes:8.1f} "
              f"{result.wall_seconds:7.1f} {result.wait_seconds:7.1f} "
              f"{result.overhead_ms_per_point:9.2f} {errors} {result.found:3d}/{len(BIASES)} "
              f"{result.max_abs_error:8.2f}")
    for result in results:
        for bias, reason in result.reasons.items():
            print(f"# {result.name}, {bias} A, no onset: {reason[:120]}")
    print("# simulated seconds per reading: " + ", ".join(
        f"{result.name} {60.0 * result.simulated_minutes / max(result.points, 1):.1f}"
        for result in results))
    by_name = {result.name: result for result in results}
    peer = by_name.get("qcodes dond (stepped)")
    if peer is not None:
        for result in results:
            if result is peer:
                continue
            time_ratio = peer.simulated_minutes / result.simulated_minutes
            overhead_ratio = peer.overhead_ms_per_point / result.overhead_ms_per_point
            print(f"# ratio qcodes dond / {result.name}: simulated time {time_ratio:.2f} "
                  f"({'ours' if time_ratio > 1 else 'QCoDeS'} takes less cryostat time), "
                  f"overhead per point {overhead_ratio:.2f} "
                  f"({'ours' if overhead_ratio > 1 else 'QCoDeS'} has less)")
        print(f"# qcodes dond Channel Access reads: "
              f"{peer.notes['ca_read_ms_per_point']:.2f} ms/pt (inside its overhead)")
    print(f"# raw floor, in-process, no IOC, {floor['points']} points, median of "
          f"{floor['repeats']}: qcodes dond (DummyInstrument, SQLite) "
          f"{floor['qcodes_points_per_s']:.0f} points/s, bluesky grid_scan (ophyd.sim, no "
          f"subscribers) {floor['bluesky_points_per_s']:.0f} points/s, ratio qcodes/bluesky "
          f"{floor['qcodes_over_bluesky']:.2f} "
          f"({'QCoDeS' if floor['qcodes_over_bluesky'] > 1 else 'bluesky'} is faster)")
    print(f"# script wall time {meta['script_seconds']:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run (narrower span, coarser step, small floor)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    try:
        import qcodes  # noqa: F401
    except ImportError:
        print("qcodes is not installed; install the bench extra: pip install -e '.[bench]'",
              file=sys.stderr)
        return 2
    script_began = time.perf_counter()
    conditions = QUICK if args.quick else Conditions()
    port = free_port()
    os.environ.update(loopback_client_environment(port))
    truth = truth_onsets()
    results = []
    with tempfile.TemporaryDirectory(prefix="qcodes-peer-") as scratch:
        database = Path(scratch) / "qcodes_peer.db"
        for method in ("qcodes", "ramp", "adaptive"):
            prefix = f"QP{uuid.uuid4().hex[:6]}:"
            ioc = SimulatedStationProcess(prefix, port, speedup=conditions.speedup,
                                          sample=SAMPLE, noise=True, seed=SEED)
            with ioc:
                presettle(prefix, conditions.start, conditions.speedup)
                if method == "qcodes":
                    results.append(run_qcodes(prefix, conditions, truth, database))
                else:
                    results.append(run_bluesky(prefix, conditions, truth,
                                               adaptive=method == "adaptive"))
        floor = raw_floor(conditions, Path(scratch) / "raw_floor.db")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "versions": versions(), "quick": args.quick,
            "script_seconds": time.perf_counter() - script_began}
    print_report(conditions, results, floor, truth, meta)
    if args.json:
        details = {"conditions": {**asdict(conditions), "temperatures": conditions.temperatures,
                                  "biases": list(BIASES), "sample": SAMPLE, "seed": SEED,
                                  "contacts": CONTACTS},
                   "meta": meta, "truth": {f"{b:g}": t for b, t in truth.items()},
                   "methods": [{**asdict(result),
                                "overhead_ms_per_point": result.overhead_ms_per_point,
                                "found": result.found,
                                "max_abs_error": result.max_abs_error} for result in results],
                   "raw_floor": floor}
        args.json.write_text(json.dumps({
            "benchmark": "qcodes_peer", "title": "A peer: QCoDeS on the same simulated station",
            "conditions": f"speed-up {conditions.speedup:g}",
            "figures": figures(conditions, results, floor, truth), "details": details,
        }, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
