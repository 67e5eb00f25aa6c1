"""Ophyd devices of the station; :mod:`devices.station` builds and names them."""

from devices.environment import SampleEnvironment, SimulationDiagnostics
from devices.lockin import AutorangeError, LockIn, LockInOverloadError
from devices.source import ComplianceError, CurrentLimitError, CurrentSource
from devices.station import Station, StationConnectionError, build_station
from devices.susceptometer import Susceptometer
from devices.temperature import (
    TemperatureController,
    TemperatureLimitError,
    TemperatureMoveInterruptedError,
    TemperatureTimeoutError,
)
from devices.transport import TransportProbe

__all__ = [
    "AutorangeError",
    "ComplianceError",
    "CurrentLimitError",
    "CurrentSource",
    "LockIn",
    "LockInOverloadError",
    "SampleEnvironment",
    "SimulationDiagnostics",
    "Station",
    "StationConnectionError",
    "Susceptometer",
    "TemperatureController",
    "TemperatureLimitError",
    "TemperatureMoveInterruptedError",
    "TemperatureTimeoutError",
    "TransportProbe",
    "build_station",
]
