"""Ophyd devices of the station; :mod:`devices.station` builds and names them."""

from devices.clock import SimulationClock, WallClock
from devices.environment import SampleEnvironment, SimulationDiagnostics
from devices.lockin import AutorangeError, LockIn, LockInOverloadError
from devices.signals import SettingRangeError, SettingTimeoutError
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
from devices.waiting import InstrumentOutageError

__all__ = [
    "AutorangeError",
    "ComplianceError",
    "InstrumentOutageError",
    "CurrentLimitError",
    "CurrentSource",
    "LockIn",
    "LockInOverloadError",
    "SampleEnvironment",
    "SettingRangeError",
    "SettingTimeoutError",
    "SimulationClock",
    "SimulationDiagnostics",
    "Station",
    "StationConnectionError",
    "Susceptometer",
    "TemperatureController",
    "TemperatureLimitError",
    "TemperatureMoveInterruptedError",
    "TemperatureTimeoutError",
    "TransportProbe",
    "WallClock",
    "build_station",
]
