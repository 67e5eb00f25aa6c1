"""The station: every device, built and named once. The only module that knows PV prefixes.

Two ways to say where the IOCs are:

* a station prefix (``build_station("TCS:")``): every instrument under it with
  the simulated station's sub-prefixes (``TC:``, ``LIA1:``, ``LIA2:``, ``SRC:``,
  ``ENV:`` and, simulation only, ``SIM:``);
* a TOML file naming each instrument's own prefix, for real IOCs::

      [prefixes]
      cryostat = "LS336:"           # LakeShore 336
      susceptometer = "SR830A:"     # SR830 on the susceptometer
      transport = "SR830B:"         # SR830 on the four-probe voltage
      bias_source = "K2400:"        # SourceMeter
      environment = "CRYO:ENV:"     # sample environment
      # simulation = "TCS:SIM:"     # only for the simulator

``Station.connect`` waits for every PV at once and reports all that are
missing; it then copies the sample environment's constants into the devices
(sample temperature limit, excitation gain, a nominal susceptometer
calibration), arms the controller's temperature limit on the sample and the
stage inputs from the mounted sample's limit (and again whenever a sample is mounted), and
gives the timed devices one clock: the simulation clock when the simulator
answers, the wall clock otherwise (:mod:`tcstation.devices.clock`).
"""

from __future__ import annotations

import logging
import math
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ophyd import Device

from tcstation.devices.clock import SimulationClock, WallClock
from tcstation.devices.derived import LagCorrectedTemperature
from tcstation.devices.environment import SampleEnvironment, SimulationDiagnostics
from tcstation.devices.source import CurrentSource
from tcstation.devices.susceptometer import Susceptometer
from tcstation.devices.temperature import TemperatureController
from tcstation.devices.transport import TransportProbe

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "TCS:"
SUB_PREFIXES = {
    "cryostat": "TC:",
    "susceptometer": "LIA1:",
    "transport": "LIA2:",
    "bias_source": "SRC:",
    "environment": "ENV:",
    "simulation": "SIM:",
}
REQUIRED_INSTRUMENTS = ("cryostat", "susceptometer", "transport", "bias_source", "environment")

NOMINAL_PICKUP_VOLTS = 0.3e-3
"""Susceptometer pickup, V rms per unit of 4 pi chi at the nominal drive (physics note, 6)."""
NOMINAL_PICKUP_FREQUENCY = 1550.0  # Hz
NOMINAL_PICKUP_FIELD = 0.2  # Oe, Hac amplitude

SIMULATION_GRACE = 1.0
"""Wall seconds the optional simulation PVs get once every instrument has connected."""
INPUT_LIMIT_TIMEOUT = 5.0
"""Wall seconds connect() waits for the controller to read back the sample input's limit."""


class StationConnectionError(ConnectionError):
    """Some PVs did not connect; ``missing`` maps each device to its missing PVs."""

    def __init__(self, missing: dict[str, list[str]], timeout: float):
        self.missing = missing
        count = sum(len(pvs) for pvs in missing.values())
        lines = [f"{count} PV(s) did not connect within {timeout:g} s:"]
        for device_name, pvs in missing.items():
            lines.append(f"  {device_name}: {', '.join(pvs)}")
        super().__init__("\n".join(lines))


def unconnected_pvs(signal) -> list[str]:
    """PV names of ``signal`` that are not connected (none for a soft signal)."""
    states = getattr(signal, "_connection_states", None)
    if states is not None:
        names = [pv for pv, connected in states.items() if not connected]
        if names or signal.connected:
            return sorted(names)
    if signal.connected:
        return []
    return [getattr(signal, "pvname", signal.name)]


def missing_pvs(devices: list[Device]) -> dict[str, list[str]]:
    """Every unconnected PV of ``devices``, by device name (devices with none left out)."""
    missing: dict[str, list[str]] = {}
    for device in devices:
        names = []
        for walk in device.walk_signals():
            names.extend(pv for pv in unconnected_pvs(walk.item) if pv not in names)
        if names:
            missing[device.name] = names
    return missing


def wait_for_pvs(devices: list[Device], deadline: float, poll: float = 0.05) -> None:
    """Return once every signal of ``devices`` is connected or ``deadline`` (monotonic) passes."""
    signals = [walk.item for device in devices for walk in device.walk_signals()]
    while True:
        if all(signal.connected for signal in signals):
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(poll, remaining))


def station_prefixes(prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Every instrument's prefix under one station prefix (the simulated layout)."""
    return {instrument: prefix + sub_prefix for instrument, sub_prefix in SUB_PREFIXES.items()}


def load_prefixes(config_path: str | Path) -> dict[str, str]:
    """Read the instruments' prefixes from a TOML file (see the module docstring).

    Raises
    ------
    ValueError
        If an instrument is missing or unknown, naming it and the file.
    """
    with open(config_path, "rb") as stream:
        config = tomllib.load(stream)
    prefixes = config.get("prefixes")
    if not isinstance(prefixes, dict):
        raise ValueError(f"{config_path}: no [prefixes] table")
    unknown = sorted(set(prefixes) - set(SUB_PREFIXES))
    if unknown:
        raise ValueError(f"{config_path}: unknown instrument(s) {', '.join(unknown)}; "
                         f"known: {', '.join(SUB_PREFIXES)}")
    absent = [name for name in REQUIRED_INSTRUMENTS if name not in prefixes]
    if absent:
        raise ValueError(f"{config_path}: no prefix for {', '.join(absent)}")
    bad = [name for name, value in prefixes.items() if not isinstance(value, str) or not value]
    if bad:
        raise ValueError(f"{config_path}: the prefix of {', '.join(bad)} is not a string")
    return dict(prefixes)


@dataclass
class Station:
    """The station's devices, named once.

    Attributes
    ----------
    cryostat : TemperatureController
    susceptometer : Susceptometer
    transport : TransportProbe
        Its ``bias`` is the dc bias source (also :attr:`bias_source`).
    environment : SampleEnvironment
    simulation : SimulationDiagnostics or None
        Present only with the simulator (after :meth:`connect`, only if it answered).
    transport_temperature, susceptometer_temperature : LagCorrectedTemperature
        The sample temperature each lock-in's reading refers to (made here, not passed).
    clock : WallClock or SimulationClock
        The clock every timed device measures physical waits on (set by :meth:`connect`).
    """

    cryostat: TemperatureController
    susceptometer: Susceptometer
    transport: TransportProbe
    environment: SampleEnvironment
    simulation: SimulationDiagnostics | None = None
    transport_temperature: LagCorrectedTemperature = field(init=False)
    susceptometer_temperature: LagCorrectedTemperature = field(init=False)
    clock: WallClock | SimulationClock = field(init=False, default_factory=WallClock)

    def __post_init__(self) -> None:
        self.transport_temperature = LagCorrectedTemperature(
            controller=self.cryostat, lockin=self.transport, name="transport_sample")
        self.susceptometer_temperature = LagCorrectedTemperature(
            controller=self.cryostat, lockin=self.susceptometer,
            name="susceptometer_sample")

    @property
    def bias_source(self) -> CurrentSource:
        return self.transport.bias

    @property
    def devices(self) -> list[Device]:
        """Every device of the station (the simulation only if present)."""
        present = [getattr(self, entry.name) for entry in fields(self)]
        return [device for device in present if isinstance(device, Device)]

    @property
    def timed_devices(self) -> list[Device]:
        """Devices whose waits are in physical seconds (they have a ``clock``)."""
        return [device for device in self.devices if hasattr(device, "clock")]

    def connect(self, timeout: float = 10.0) -> Station:
        """Wait for every PV; then set the devices up from the sample environment.

        Parameters
        ----------
        timeout : float
            Wall seconds to wait for the instruments' PVs.

        Returns
        -------
        Station
            Itself.

        Raises
        ------
        StationConnectionError
            Listing every PV that did not connect, by device.
        """
        required = [device for device in self.devices if device is not self.simulation]
        deadline = time.monotonic() + timeout
        wait_for_pvs(required, deadline)
        missing = missing_pvs(required)
        if missing:
            raise StationConnectionError(missing, timeout)
        if self.simulation is not None:
            wait_for_pvs([self.simulation],
                         max(deadline, time.monotonic() + SIMULATION_GRACE))
            simulation_missing = missing_pvs([self.simulation])
            if not self.simulation.speedup.connected:
                logger.info("no simulation PVs answer: real instruments, time scale 1")
                self.simulation.destroy()
                self.simulation = None
            elif simulation_missing:
                raise StationConnectionError(simulation_missing, timeout)
        self._apply_clock()
        self._apply_environment()
        return self

    def _apply_environment(self) -> None:
        environment = self.environment
        cryostat = self.cryostat
        limit = cryostat.sample_temperature_limit

        def follow_sample_limit(value=None, **kwargs):
            if value is not None:
                limit.put(float(value))
                self._arm_sample_input_limit(float(value))

        limit.put(float(environment.max_safe_temperature.get()))
        self.arm_sample_input_limit().wait(INPUT_LIMIT_TIMEOUT)
        environment.max_safe_temperature.subscribe(follow_sample_limit, run=False)
        self.transport.excitation_gain.put(float(environment.excitation_gain.get()))
        if not math.isfinite(float(self.susceptometer.calibration_scale.get())):
            coil_constant = float(environment.coil_constant.get())
            self.susceptometer.set_calibration(
                NOMINAL_PICKUP_VOLTS, 0.0, NOMINAL_PICKUP_FREQUENCY,
                NOMINAL_PICKUP_FIELD / coil_constant,
                source=f"nominal: {NOMINAL_PICKUP_VOLTS * 1e3:g} mV per unit at "
                       f"{NOMINAL_PICKUP_FREQUENCY:g} Hz, {NOMINAL_PICKUP_FIELD:g} Oe; "
                       f"phase not calibrated")

    def arm_sample_input_limit(self):
        """Write the controller's sample-input limit from the mounted sample's limit.

        Reads the sample environment's ``max_safe_temperature``; idempotent (a
        limit already read back is not written again).

        Returns
        -------
        ophyd.status.Status
            Finishes when the controller reads the limit back.
        """
        return self._arm_sample_input_limit(float(self.environment.max_safe_temperature.get()))

    def _arm_sample_input_limit(self, kelvin: float):
        status = self.cryostat.apply_sample_input_limit(kelvin)

        def report(done):
            if not done.success:
                logger.error("%s: the sample input's temperature limit was not armed at "
                             "%g K: %s", self.cryostat.name, kelvin, done.exception())

        status.add_callback(report)
        return status

    def _apply_clock(self) -> None:
        self.clock.close()
        if self.simulation is not None:
            self.clock = SimulationClock(self.simulation.simulated_time,
                                         speedup=float(self.simulation.speedup.get()),
                                         wake_signal=self.simulation.wake_at)
        else:
            self.clock = WallClock()
        for device in self.timed_devices:
            device.clock = self.clock


def build_station(prefix: str = DEFAULT_PREFIX, config_path: str | Path | None = None) -> Station:
    """Build (not connect) the station's devices.

    Parameters
    ----------
    prefix : str
        Station prefix of the simulated layout; ignored with ``config_path``.
    config_path : str or Path, optional
        TOML file with each instrument's prefix (see the module docstring).

    Returns
    -------
    Station
        Call :meth:`Station.connect` before use.
    """
    prefixes = load_prefixes(config_path) if config_path is not None else station_prefixes(prefix)
    simulation_prefix = prefixes.get("simulation")
    return Station(
        cryostat=TemperatureController(prefixes["cryostat"], name="cryostat"),
        susceptometer=Susceptometer(prefixes["susceptometer"], name="susceptometer"),
        transport=TransportProbe(prefixes["transport"],
                                 bias_source_prefix=prefixes["bias_source"], name="transport"),
        environment=SampleEnvironment(prefixes["environment"], name="environment"),
        simulation=(SimulationDiagnostics(simulation_prefix, name="simulation")
                    if simulation_prefix else None),
    )
