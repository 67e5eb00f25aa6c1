"""Every PV the devices use is one the simulated IOC serves, of the type and choices they expect.

No subprocess: the devices are built on ophyd's fake signals (:mod:`tcstation.devices.catalog`)
and compared with the IOC's pvdb, built but not served.
"""

from __future__ import annotations

import dataclasses

import pytest
from caproto import AccessRights, ChannelType

from tcstation.devices.catalog import DeviceSignal, station_signals
from tcstation.ioc_sim.station import build_ioc, build_parser

NUMERIC = (ChannelType.DOUBLE, ChannelType.FLOAT, ChannelType.LONG, ChannelType.INT)
WHOLE = (ChannelType.LONG, ChannelType.INT)


def _served_range(served) -> tuple[float, float] | None:
    if served.data_type == ChannelType.ENUM:
        return 0, len(served.enum_strings) - 1
    if served.lower_ctrl_limit == served.upper_ctrl_limit:
        return None
    return served.lower_ctrl_limit, served.upper_ctrl_limit


def _problems_of(entry: DeviceSignal, pv: str, served, written: bool) -> list[str]:
    kind = served.data_type
    problems = []
    if written and not served.check_access("localhost", "user") & AccessRights.WRITE:
        problems.append("is written by the device but read-only")
    if entry.choices is not None:
        if kind != ChannelType.ENUM:
            problems.append(f"is {kind.name}, the device writes the choices {entry.choices}")
        elif tuple(served.enum_strings) != entry.choices:
            problems.append(f"serves the choices {tuple(served.enum_strings)}, the device "
                            f"{entry.choices}")
    elif entry.string and kind not in (ChannelType.ENUM, ChannelType.STRING):
        problems.append(f"is {kind.name}, the device reads it as text")
    elif entry.flag and not (kind in WHOLE or (kind == ChannelType.ENUM
                                                and len(served.enum_strings) == 2)):
        problems.append(f"is {kind.name}, the device reads a two-state flag")
    elif entry.whole and kind not in WHOLE + (ChannelType.ENUM,):
        problems.append(f"is {kind.name}, the device writes an index")
    elif not (entry.string or entry.flag or entry.whole) and kind not in NUMERIC:
        problems.append(f"is {kind.name}, the device reads a number")
    if entry.allowed is not None and tuple(entry.allowed) != _served_range(served):
        problems.append(f"accepts {_served_range(served)}, the device checks {entry.allowed}")
    units = getattr(served, "units", "")
    if units and entry.units and entry.units != "dimensionless" and units != entry.units:
        problems.append(f"serves units {units!r}, the device describes {entry.units!r}")
    return [f"{entry.name}: {pv} {problem}" for problem in problems]


def mismatches(signals: list[DeviceSignal], pvdb: dict) -> list[str]:
    """Every way in which the devices' PVs differ from what ``pvdb`` serves."""
    problems = []
    for entry in signals:
        for pv in entry.pvs:
            served = pvdb.get(pv)
            if served is None:
                problems.append(f"{entry.name}: {pv} is not served")
                continue
            problems.extend(_problems_of(entry, pv, served, entry.writable and pv == entry.pv))
    return problems


@pytest.fixture(scope="module")
def pvdb():
    return build_ioc(build_parser().parse_args(["--prefix", "TCS:", "--no-noise"])).pvdb


@pytest.fixture(scope="module")
def signals():
    return station_signals("TCS:")


def test_every_device_pv_is_served_as_the_device_expects(signals, pvdb):
    assert sum(len(entry.pvs) for entry in signals) > 100
    assert mismatches(signals, pvdb) == []


def test_the_comparison_sees_a_change_on_either_side(signals, pvdb):
    setpoint = next(entry for entry in signals if entry.name == "cryostat_setpoint")
    renamed = dataclasses.replace(setpoint, pv="TCS:TC:OUT1:SetPoint")
    narrower = dataclasses.replace(setpoint, allowed=(0.0, 300.0))
    heater = next(entry for entry in signals if entry.name == "cryostat_heater_range")
    fewer = dataclasses.replace(heater, choices=heater.choices[:3])
    for changed, expected in ((renamed, "is not served"), (narrower, "accepts (0.0, 325.0)"),
                              (fewer, "serves the choices")):
        problems = mismatches([changed], pvdb)
        assert problems and expected in problems[0]
    without_rbv = {name: pv for name, pv in pvdb.items() if name != "TCS:TC:HTR1:Range_RBV"}
    assert mismatches([heater], without_rbv) == [
        "cryostat_heater_range: TCS:TC:HTR1:Range_RBV is not served"]
