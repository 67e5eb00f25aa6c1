"""Ophyd devices of the station; :mod:`tcstation.devices.station` builds and names them."""

from tcstation.devices.clock import SimulationClock, WallClock
from tcstation.devices.environment import SampleEnvironment, SimulationDiagnostics
from tcstation.devices.lockin import AutorangeError, LockIn, LockInOverloadError
from tcstation.devices.signals import SettingRangeError, SettingTimeoutError
from tcstation.devices.source import ComplianceError, CurrentLimitError, CurrentSource
from tcstation.devices.station import Station, StationConnectionError, build_station
from tcstation.devices.susceptometer import Susceptometer
from tcstation.devices.temperature import (
    TemperatureController,
    TemperatureLimitError,
    TemperatureMoveInterruptedError,
    TemperatureTimeoutError,
)
from tcstation.devices.transport import TransportProbe
from tcstation.devices.waiting import InstrumentOutageError

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
