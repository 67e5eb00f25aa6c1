"""The protocol layer: every command the bridge sends, every reply it parses, and the
error a malformed reply raises (naming the instrument, the command and the reply)."""

from __future__ import annotations

import pytest

from tcstation.protocol import ProtocolError
from tcstation.protocol import lakeshore336 as ls
from tcstation.protocol import sourcemeter as sm
from tcstation.protocol import sr830 as lia


def raises_naming(instrument: str, command: str, reply: str):
    """A pytest.raises whose message must carry the instrument, the command and the reply."""

    class Check:
        def __enter__(self):
            self.context = pytest.raises(ProtocolError)
            self.info = self.context.__enter__()
            return self.info

        def __exit__(self, *exc):
            handled = self.context.__exit__(*exc)
            text = str(self.info.value)
            assert instrument in text and repr(command) in text and repr(reply) in text, text
            return handled

    return Check()


# --- LakeShore 336 ------------------------------------------------------------------------

def test_lakeshore_commands():
    assert ls.kelvin_query("a") == "KRDG? A"
    assert ls.celsius_query("B") == "CRDG? B"
    assert ls.sensor_query("C") == "SRDG? C"
    assert ls.setpoint_command(1, 10.25) == "SETP 1,10.2500"
    assert ls.setpoint_query(2) == "SETP? 2"
    assert ls.ramp_command(1, True, 2.5) == "RAMP 1,1,2.500"
    assert ls.ramp_command(1, False, 1) == "RAMP 1,0,1.000"
    assert ls.ramp_query(1) == "RAMP? 1"
    assert ls.ramp_status_query(1) == "RAMPST? 1"
    assert ls.range_command(1, 3) == "RANGE 1,3"
    assert ls.range_query(1) == "RANGE? 1"
    assert ls.heater_query(1) == "HTR? 1"
    assert ls.pid_command(1, 50, 20, 0) == "PID 1,50.0,20.0,0"
    assert ls.pid_query(1) == "PID? 1"
    assert ls.outmode_command(1, "Closed Loop", "A", False) == "OUTMODE 1,1,1,0"
    assert ls.outmode_command(2, "Open Loop", "None", True) == "OUTMODE 2,3,0,1"
    assert ls.outmode_query(1) == "OUTMODE? 1"
    assert ls.manual_output_command(1, 12.5) == "MOUT 1,12.50"
    assert ls.temperature_limit_command("B", 310) == "TLIMIT B,310.000"
    assert ls.temperature_limit_query("B") == "TLIMIT? B"
    assert ls.input_name_query("A") == "INNAME? A"
    assert ls.input_type_query("D") == "INTYPE? D"
    assert ls.input_type_command("A", 3, 1, 0, 1, "C") == "INTYPE A,3,1,0,1,2"
    with pytest.raises(ValueError, match="input 'E'"):
        ls.kelvin_query("E")
    with pytest.raises(ValueError, match="output 5"):
        ls.setpoint_command(5, 1.0)


def test_lakeshore_replies():
    assert ls.check_idn("LSCI,MODEL336,LSA12345,2.9")[1] == "MODEL336"
    assert ls.parse_reading("KRDG? A", "+004.2000") == 4.2
    assert ls.parse_ramp("RAMP? 1", "1,+01.500") == (True, 1.5)
    assert ls.parse_ramp_status("RAMPST? 1", "0") is False
    assert ls.parse_range("RANGE? 1", "2") == "Medium"
    assert ls.parse_pid("PID? 1", "+0050.0,+0020.0,+000") == (50.0, 20.0, 0.0)
    assert ls.parse_outmode("OUTMODE? 1", "1,1,0") == ("Closed Loop", "A", False)
    assert ls.parse_outmode("OUTMODE? 2", "3,0,1") == ("Open Loop", "None", True)
    assert ls.parse_input_name("INNAME? A", "Stage          ") == "Stage"
    assert ls.parse_input_type("INTYPE? A", "3,1,0,1,1") == (3, 1, 0, 1, "K")
    assert ls.parse_input_type("INTYPE? A", "3,1,0,1,3")[-1] == "Sensor"


@pytest.mark.parametrize("parse, command, reply", [
    (ls.parse_reading, "KRDG? A", ""),
    (ls.parse_reading, "KRDG? A", "+004.2?00"),
    (ls.parse_reading, "KRDG? A", "nan"),
    (ls.parse_ramp, "RAMP? 1", "+01.500"),
    (ls.parse_ramp, "RAMP? 1", "2,+01.500"),
    (ls.parse_range, "RANGE? 1", "7"),
    (ls.parse_pid, "PID? 1", "+0050.0,+0020.0"),
    (ls.parse_outmode, "OUTMODE? 1", "9,1,0"),
    (ls.parse_input_type, "INTYPE? A", "3,1,0,1,4"),
    (ls.parse_input_name, "INNAME? A", "a name far too long for it"),
    (ls.parse_ramp_status, "RAMPST? 1", "yes"),
])
def test_lakeshore_malformed_replies(parse, command, reply):
    with raises_naming("LakeShore 336", command, reply):
        parse(command, reply)


def test_lakeshore_idn_of_another_instrument():
    reply = "Stanford_Research_Systems,SR830,s/n1,ver1.07"
    with raises_naming("LakeShore 336", "*IDN?", reply):
        ls.check_idn(reply)


def test_lakeshore_formats_parse_back():
    assert ls.parse_reading("KRDG? A", ls.format_reading(4.21)) == pytest.approx(4.21)
    assert ls.parse_ramp("RAMP? 1", ls.format_ramp(True, 2.5)) == (True, 2.5)
    assert ls.parse_pid("PID? 1", ls.format_pid(50, 20, 10)) == (50, 20, 10)
    assert ls.parse_outmode("OUTMODE? 1", ls.format_outmode("Zone", "B", True)) == (
        "Zone", "B", True)


# --- SR830 --------------------------------------------------------------------------------

def test_sr830_commands():
    assert lia.interface_command(gpib=False) == "OUTX 0"
    assert lia.frequency_command(1550) == "FREQ 1550.0000"
    assert lia.amplitude_command(1) == "SLVL 1.000"
    assert lia.phase_command(-8) == "PHAS -8.00"
    assert lia.harmonic_command(2) == "HARM 2"
    assert lia.sensitivity_command(17) == "SENS 17"
    assert lia.time_constant_command(9) == "OFLT 9"
    assert lia.slope_command(1) == "OFSL 1"
    assert lia.query("SENS") == "SENS?"
    assert lia.output_query(3) == "OUTP? 3"
    assert lia.snap_query() == "SNAP? 1,2,3,4"
    assert lia.AUTO_GAIN == "AGAN" and lia.LOCKIN_STATUS == "LIAS?"
    with pytest.raises(ValueError):
        lia.output_query(5)
    with pytest.raises(ValueError):
        lia.query("BOGUS")


def test_sr830_replies():
    assert lia.check_idn("Stanford_Research_Systems,SR830,s/n10001,ver1.07")[1] == "SR830"
    assert lia.parse_setting("FREQ", "1550") == 1550.0
    assert lia.parse_setting("SENS", "17") == 17
    assert lia.parse_snap("SNAP? 1,2,3,4", "1e-6,-2e-7,1.02e-6,-11.3") == (
        1e-6, -2e-7, 1.02e-6, -11.3)
    assert lia.parse_status("LIAS?", "4") & lia.LIAS_OUTPUT_OVERLOAD


@pytest.mark.parametrize("parse, command, reply", [
    (lambda c, r: lia.parse_setting("SENS", r), "SENS?", "27"),
    (lambda c, r: lia.parse_setting("OFLT", r), "OFLT?", "9.5"),
    (lambda c, r: lia.parse_setting("FREQ", r), "FREQ?", "fast"),
    (lia.parse_snap, "SNAP? 1,2,3,4", "1e-6,2e-6,3e-6"),
    (lia.parse_snap, "SNAP? 1,2,3,4", "1e-6,2e-6,x,4"),
    (lia.parse_status, "LIAS?", "256"),
])
def test_sr830_malformed_replies(parse, command, reply):
    with raises_naming("SR830", command, reply):
        parse(command, reply)


# --- Keithley 2400 ------------------------------------------------------------------------

def test_sourcemeter_commands():
    assert sm.current_command(0.0125) == ":SOUR:CURR 1.250000e-02"
    assert sm.voltage_limit_command(2) == ":SENS:VOLT:PROT 2.0000"
    assert sm.output_command(True) == ":OUTP ON"
    assert sm.output_command(False) == ":OUTP OFF"
    assert (sm.SOURCE_CURRENT, sm.ELEMENTS, sm.READ) == (
        ":SOUR:FUNC CURR", ":FORM:ELEM VOLT,CURR", ":READ?")
    assert sm.TRIPPED_QUERY == ":SENS:VOLT:PROT:TRIP?"


def test_sourcemeter_replies():
    assert sm.check_idn("KEITHLEY INSTRUMENTS INC.,MODEL 2400,4100001,C30")[1] == "MODEL 2400"
    assert sm.parse_read("+1.500000E-02,+1.000000E-02") == (0.015, 0.01)
    assert sm.parse_read(sm.format_read(-1.5, -1.0)) == (-1.5, -1.0)
    assert sm.parse_error('-113,"Undefined header"') == (-113, "Undefined header")
    assert sm.parse_error(sm.format_error(0, "")) == (0, "No error")
    assert sm.parse_flag(":OUTP?", "1") is True
    assert sm.parse_number(":SOUR:CURR?", "+1.000000E-02") == 0.01


@pytest.mark.parametrize("parse, command, reply", [
    (lambda c, r: sm.parse_read(r), ":READ?", "+1.5E-02"),
    (lambda c, r: sm.parse_read(r), ":READ?", "+1.5E-02,+1.0E-02,+9.91E+37"),
    (lambda c, r: sm.parse_error(r), ":SYST:ERR?", "-113 Undefined header"),
    (sm.parse_flag, ":OUTP?", "ON"),
    (sm.parse_number, ":SOUR:CURR?", ""),
])
def test_sourcemeter_malformed_replies(parse, command, reply):
    with raises_naming("SourceMeter", command, reply):
        parse(command, reply)
