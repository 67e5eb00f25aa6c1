"""SourceMeter-class (Keithley 2400) dc current source with voltage compliance.

The commands are the instrument's SCPI (Keithley 2400 manual, chapter 18).
"""

from __future__ import annotations

from .signal import ENUM, FLOAT, MEASUREMENT, SETTING, Signal

KIND = "SourceMeter"

CURRENT_LIMIT = 1.05  # A: the 1 A range with its over-range
CURRENT_RANGE = (-CURRENT_LIMIT, CURRENT_LIMIT)  # A, :SOUR:CURR
VOLTAGE_LIMIT_RANGE = (0.2, 21.0)  # V, :SENS:VOLT:PROT on the 1 A range
VOLTAGE_RANGE = (-21.0, 21.0)  # V, what :READ? can report
OFF_ON = ("Off", "On")
NO_YES = ("No", "Yes")

SIGNALS = (
    Signal("Curr", SETTING, FLOAT, "Bias current setpoint", units="A", precision=6,
           limits=CURRENT_RANGE, command=":SOUR:CURR <A>", query=":SOUR:CURR?"),
    Signal("Output", SETTING, ENUM, "Output enable", choices=OFF_ON,
           command=":OUTP ON|OFF", query=":OUTP?"),
    Signal("VoltLimit", SETTING, FLOAT, "Voltage compliance", units="V", precision=3,
           limits=VOLTAGE_LIMIT_RANGE, command=":SENS:VOLT:PROT <V>",
           query=":SENS:VOLT:PROT?"),
    Signal("CurrMeas", MEASUREMENT, FLOAT, "Measured current", units="A", precision=6,
           limits=CURRENT_RANGE, query=":READ? (current)"),
    Signal("VoltMeas", MEASUREMENT, FLOAT, "Measured voltage", units="V", precision=6,
           limits=VOLTAGE_RANGE, query=":READ? (voltage)"),
    Signal("Tripped", MEASUREMENT, ENUM, "Output limited by the compliance", choices=NO_YES,
           query=":SENS:VOLT:PROT:TRIP?"),
)
"""Every signal of the source."""
