"""The station factory without an IOC: prefixes, configuration files, the connect report."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tcstation.devices import LockIn, StationConnectionError, build_station
from tcstation.devices.fakes import fake_device
from tcstation.devices.station import SUB_PREFIXES, load_prefixes, missing_pvs
from tcstation.devices.temperature import TemperatureController

PV_TABLE = Path(__file__).resolve().parents[2] / "docs" / "pv-table.md"

REAL_CONFIGURATION = """
[prefixes]
cryostat = "LS336:"
susceptometer = "SR830A:"
transport = "SR830B:"
bias_source = "K2400:"
environment = "CRYO:ENV:"
"""


def epics_pvs(device) -> set[str]:
    names = set()
    for walk in device.walk_signals():
        signal = walk.item
        for attribute in ("pvname", "setpoint_pvname"):
            if getattr(signal, attribute, None):
                names.add(getattr(signal, attribute))
    return names


@pytest.fixture
def station_without_ioc():
    station = build_station(f"NOIOC{uuid.uuid4().hex[:6]}:")
    yield station
    for device in station.devices:
        device.destroy()


def test_devices_are_named_once_under_their_instrument_prefix():
    station = build_station("TST:")
    try:
        names = [device.name for device in station.devices]
        assert len(names) == len(set(names))
        assert {"cryostat", "susceptometer", "transport", "environment",
                "simulation"} <= set(names)
        assert station.bias_source is station.transport.bias
        assert station.bias_source.name == "transport_bias"
        assert station.cryostat.sample_temperature.pvname == "TST:TC:IN2:Kelvin"
        assert station.cryostat.setpoint.setpoint_pvname == "TST:TC:OUT1:SP"
        assert station.cryostat.setpoint.pvname == "TST:TC:OUT1:SP_RBV"
        assert station.susceptometer.x.pvname == "TST:LIA1:X"
        assert station.transport.x.pvname == "TST:LIA2:X"
        assert station.bias_source.measured_current.pvname == "TST:SRC:CurrMeas"
        assert station.environment.max_safe_temperature.pvname == "TST:ENV:MaxSafeTemp_RBV"
        assert station.simulation.speedup.pvname == "TST:SIM:Speedup_RBV"
    finally:
        for device in station.devices:
            device.destroy()


def test_a_configuration_file_names_each_real_ioc(tmp_path):
    path = tmp_path / "station.toml"
    path.write_text(REAL_CONFIGURATION)
    station = build_station(config_path=path)
    try:
        assert station.simulation is None
        assert station.cryostat.sample_temperature.pvname == "LS336:IN2:Kelvin"
        assert station.susceptometer.frequency.setpoint_pvname == "SR830A:FREQ"
        assert station.transport.sensitivity.pvname == "SR830B:SENS_RBV"
        assert station.bias_source.current.setpoint_pvname == "K2400:Curr"
        assert station.environment.sample.pvname == "CRYO:ENV:Sample_RBV"
    finally:
        for device in station.devices:
            device.destroy()


@pytest.mark.parametrize(("text", "message"), [
    ("[prefixes]\ncryostat = 'A:'\n", "no prefix for susceptometer, transport, bias_source"),
    (REAL_CONFIGURATION + "magnet = 'M:'\n", "unknown instrument"),
    ("[other]\n", "no \\[prefixes\\] table"),
    (REAL_CONFIGURATION.replace('"K2400:"', "7"), "prefix of bias_source is not a string"),
])
def test_a_bad_configuration_file_is_refused_by_name(tmp_path, text, message):
    path = tmp_path / "station.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_prefixes(path)


def test_connect_reports_every_missing_pv_at_once(station_without_ioc):
    station = station_without_ioc
    with pytest.raises(StationConnectionError) as raised:
        station.connect(timeout=0.5)
    missing = raised.value.missing
    assert list(missing) == ["cryostat", "susceptometer", "transport", "environment"]
    for device in (station.cryostat, station.susceptometer, station.transport,
                   station.environment):
        assert set(missing[device.name]) == epics_pvs(device)
    message = str(raised.value)
    assert f"{sum(len(pvs) for pvs in missing.values())} PV(s) did not connect" in message
    assert station.cryostat.sample_temperature.pvname in message
    assert station.bias_source.compliance_tripped.pvname in message


def test_fake_devices_have_no_missing_pvs():
    assert missing_pvs([fake_device(TemperatureController, name="cryostat")]) == {}


def test_the_pv_table_lists_every_signal_and_pv():
    text = PV_TABLE.read_text()
    quoted = set(re.findall(r"`([^`]+)`", text))
    station = build_station("P:")
    try:
        prefixes = {station.cryostat: "P:TC:", station.susceptometer: "P:LIA1:",
                    station.transport: "P:LIA2:", station.environment: "P:ENV:",
                    station.simulation: "P:SIM:", station.bias_source: "P:SRC:"}
        for device, prefix in prefixes.items():
            for walk in device.walk_signals():
                signal = walk.item
                names = [getattr(signal, "pvname", None), getattr(signal, "setpoint_pvname", None)]
                for pv in filter(None, names):
                    owner = "P:SRC:" if pv.startswith("P:SRC:") else prefix
                    suffix = pv.removeprefix(owner).removesuffix("_RBV")
                    assert suffix in quoted or pv.removeprefix(owner) in quoted, (
                        f"{pv} of {signal.name} is not in docs/pv-table.md")
                # The transport's lock-in rows are the susceptometer's, written once.
                shared = device is station.transport and walk.dotted_name in LockIn.component_names
                if not shared:
                    assert signal.name in quoted, f"{signal.name} is not in docs/pv-table.md"
        for sub_prefix in SUB_PREFIXES.values():
            assert sub_prefix in text
    finally:
        for device in station.devices:
            device.destroy()
