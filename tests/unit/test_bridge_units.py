"""The bridge without an instrument: its TOML, the PVs it serves (the simulated IOC's),
the commands a put becomes, the ramp to 0 A."""

from __future__ import annotations

import pytest

from tcstation.bridge.config import ConfigError, InstrumentConfig, parse_config
from tcstation.bridge.group import parse_chained
from tcstation.bridge.lakeshore336 import LakeShore336Bridge, setting_command, setting_queries
from tcstation.bridge.sourcemeter import SourceMeterBridge, ramp_steps
from tcstation.bridge.sr830 import SR830Bridge, setting_values
from tcstation.ioc_sim.lakeshore336 import LakeShore336
from tcstation.ioc_sim.sourcemeter import SourceMeter
from tcstation.ioc_sim.sr830 import SR830
from tcstation.protocol import ProtocolError
from tcstation.protocol import lakeshore336 as ls

BRIDGE_ONLY = {"IDN_RBV", "Connected_RBV"}


def config(kind: str) -> InstrumentConfig:
    return parse_config({"instruments": {"x": {
        "kind": kind, "resource": "TCPIP0::127.0.0.1::7777::SOCKET"}}}).instruments[0]


def served(group) -> set[str]:
    return {name[len(group.prefix):] for name in group.pvdb}


@pytest.mark.parametrize("bridged, simulated, kind", [
    (LakeShore336Bridge, LakeShore336, "lakeshore336"),
    (SourceMeterBridge, SourceMeter, "sourcemeter"),
    (SR830Bridge, lambda prefix: SR830(prefix=prefix, channel="susceptometer"), "sr830"),
])
def test_the_bridge_serves_the_simulated_iocs_pvs(bridged, simulated, kind):
    bridge = bridged(prefix="P:", config=config(kind))
    simulation = simulated(prefix="P:")
    assert served(bridge) - BRIDGE_ONLY == served(simulation)
    for suffix, instance in bridge.by_suffix.items():
        if suffix in BRIDGE_ONLY:
            continue
        twin = simulation.pvdb[f"P:{suffix}"]
        assert type(instance).__name__ == type(twin).__name__, suffix
        assert getattr(instance, "units", None) == getattr(twin, "units", None), suffix
        assert getattr(instance, "enum_strings", None) == getattr(twin, "enum_strings",
                                                                  None), suffix


def test_config_defaults_and_errors():
    cryostat = config("lakeshore336")
    assert (cryostat.prefix, cryostat.read_termination, cryostat.write_termination) == (
        "TC:", "\r\n", "\n")
    assert config("sourcemeter").read_termination == "\n"
    bad = [
        ({}, "nothing to bridge"),
        ({"instruments": {"x": {"kind": "hp34401", "resource": "A::B"}}}, "kind"),
        ({"instruments": {"x": {"kind": "sr830", "resource": "COM1"}}}, "VISA resource"),
        ({"instruments": {"x": {"kind": "sr830", "resource": "A::B", "timeout": 0}}},
         "positive"),
        ({"instruments": {"x": {"kind": "sr830", "resource": "A::B", "baud": 9600}}},
         "unknown keys"),
    ]
    for data, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_config(data)


def test_a_put_is_the_controllers_command_with_the_other_parameters_it_holds():
    state = {"OUT1:Mode": "Closed Loop", "OUT1:Cntrl": "A", "_powerup1": False,
             "P1": 50.0, "I1": 20.0, "D1": 0.0, "OnRamp1": "Off", "RampR1": 1.0,
             "_intype2": (3, 1, 0, 1)}
    assert setting_command("OUT1:SP", 12.5, state) == ("SETP 1,12.5000", "SETP? 1")
    assert setting_command("OUT1:Cntrl", "B", state) == ("OUTMODE 1,1,2,0", "OUTMODE? 1")
    assert setting_command("I1", 35.0, state) == ("PID 1,50.0,35.0,0", "PID? 1")
    assert setting_command("OnRamp1", "On", state) == ("RAMP 1,1,1.000", "RAMP? 1")
    assert setting_command("HTR1:Range", "High", state) == ("RANGE 1,3", "RANGE? 1")
    assert setting_command("IN2:Units", "C", state) == ("INTYPE B,3,1,0,1,2", "INTYPE? B")
    assert setting_command("IN1:TLimit", 300.0, state) == ("TLIMIT A,300.000", "TLIMIT? A")


def test_readbacks_and_a_garbled_chain():
    queries = setting_queries()
    assert queries["OUTMODE? 1"]("OUTMODE? 1", "1,2,0") == {
        "OUT1:Mode": "Closed Loop", "OUT1:Cntrl": "B", "_powerup1": False}
    assert queries["RAMP? 2"]("RAMP? 2", "1,+02.000") == {"OnRamp2": "On", "RampR2": 2.0}
    chain = [(ls.kelvin_query("A"), lambda c, r: {"IN1": ls.parse_reading(c, r)}),
             (ls.heater_query(1), lambda c, r: {"HTR1": ls.parse_reading(c, r)})]
    assert parse_chained("LakeShore 336", chain, "+004.2000;+01.50") == {
        "IN1": 4.2, "HTR1": 1.5}
    with pytest.raises(ProtocolError, match=r"LakeShore 336: reply '\+004.2000' to "
                       r"'KRDG\? A;HTR\? 1'"):
        parse_chained("LakeShore 336", chain, "+004.2000")
    with pytest.raises(ProtocolError, match="'HTR\\? 1'"):
        parse_chained("LakeShore 336", chain, "+004.2000;garbage")


def test_ramp_to_zero():
    assert ramp_steps(0.0, 0.1) == [0.0]
    steps = ramp_steps(-0.1, 0.5, period=0.05)
    assert steps[-1] == 0.0 and len(steps) == 4
    starts = [-0.1] + steps[:-1]
    assert all(abs(b - a) <= 0.5 * 0.05 + 1e-12 for a, b in zip(starts, steps, strict=True))


def test_sr830_readbacks_carry_their_table_values():
    assert setting_values("SENS", "SENS?", "17") == {"SENS": 17, "SENS:Value_RBV": 1e-3}
    assert setting_values("OFLT", "OFLT?", "9") == {"OFLT": 9, "OFLT:Value_RBV": 0.3}
    assert setting_values("OFSL", "OFSL?", "1") == {"OFSL": "12 dB/oct"}
    with pytest.raises(ProtocolError, match="SR830: reply '27' to 'SENS\\?'"):
        setting_values("SENS", "SENS?", "27")
