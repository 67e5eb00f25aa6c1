"""LakeShore 336 temperature controller: the PVs of the EPICS lakeshore336 module.

Two heater loops (outputs 1 and 2, ``OUT{n}:*``, ``HTR{n}``) and four sensor
inputs (A to D, ``IN{n}``). Names and enum strings follow the EPICS support
module, so facility device classes (apstools' ``LakeShore336Device``) connect
unchanged; the commands are the controller's own (LakeShore 336 manual,
chapter 6). Beyond the module: ``IN{n}:Kelvin`` (``KRDG?``, kelvin whatever
the display units) and ``IN{n}:TLimit`` (``TLIMIT``: above it the controller
turns every control output off; 0 = off).
"""

from __future__ import annotations

from .signal import (
    ACTION,
    ENUM,
    FLOAT,
    INT,
    MEASUREMENT,
    READBACK,
    SETTING,
    STRING,
    Signal,
    numbered,
)

KIND = "LakeShore 336"

LOOPS = (1, 2)
INPUTS = (1, 2, 3, 4)
INPUT_LETTERS = {1: "A", 2: "B", 3: "C", 4: "D"}

SETPOINT_RANGE = (0.0, 325.0)  # K, SETP
RAMP_RATE_RANGE = (0.1, 100.0)  # K/min, RAMP
GAIN_RANGE = (0.1, 1000.0)  # P and I of PID
DERIVATIVE_RANGE = (0.0, 200.0)  # D of PID, percent
OUTPUT_RANGE = (0.0, 100.0)  # %, MOUT and HTR?
TEMPERATURE_LIMIT_RANGE = (0.0, 9999.0)  # K, TLIMIT +nnnn.nnn (0 = off)
READING_RANGE = (0.0, 400.0)  # K, what the sensors report (display limits)

HEATER_RANGES = ("Off", "Low", "Medium", "High")  # RANGE 0..3
CONTROL_MODES = ("Off", "Closed Loop", "Zone", "Open Loop")  # OUTMODE mode 0..3
CONTROL_INPUTS = ("None", "A", "B", "C", "D")  # OUTMODE input 0..4
CONTROLLING_MODES = ("Closed Loop", "Zone")  # the modes that drive the heater to the setpoint
TEMPERATURE_UNITS = ("K", "C", "Sensor")  # INTYPE units 1..3
OFF_ON = ("Off", "On")  # RAMP off/on

LOOP = (
    Signal("OUT{n}:SP", SETTING, FLOAT, "Loop {n} setpoint", units="K", precision=3,
           limits=SETPOINT_RANGE, command="SETP {n},<K>", query="SETP? {n}"),
    Signal("OUT{n}:Mode", SETTING, ENUM, "Loop {n} control mode", choices=CONTROL_MODES,
           command="OUTMODE {n},<mode>,<input>,<powerup>", query="OUTMODE? {n}"),
    Signal("OUT{n}:Cntrl", SETTING, ENUM, "Loop {n} control input", choices=CONTROL_INPUTS,
           command="OUTMODE {n},<mode>,<input>,<powerup>", query="OUTMODE? {n}"),
    Signal("OUT{n}:MOUT", SETTING, FLOAT, "Loop {n} manual (open loop) output",
           units="%", precision=2, limits=OUTPUT_RANGE, command="MOUT {n},<%>",
           query="MOUT? {n}"),
    Signal("HTR{n}", MEASUREMENT, FLOAT, "Heater {n} output", units="%", precision=2,
           limits=OUTPUT_RANGE, query="HTR? {n}"),
    Signal("HTR{n}:Range", SETTING, ENUM, "Heater {n} range", choices=HEATER_RANGES,
           command="RANGE {n},<0..3>", query="RANGE? {n}"),
    Signal("P{n}", SETTING, FLOAT, "Loop {n} proportional gain", precision=1,
           limits=GAIN_RANGE, command="PID {n},<P>,<I>,<D>", query="PID? {n}"),
    Signal("I{n}", SETTING, FLOAT, "Loop {n} integral gain", precision=1, limits=GAIN_RANGE,
           command="PID {n},<P>,<I>,<D>", query="PID? {n}"),
    Signal("D{n}", SETTING, FLOAT, "Loop {n} derivative gain", units="%", precision=1,
           limits=DERIVATIVE_RANGE, command="PID {n},<P>,<I>,<D>", query="PID? {n}"),
    Signal("RampR{n}", SETTING, FLOAT, "Loop {n} setpoint ramp rate", units="K/min",
           precision=3, limits=RAMP_RATE_RANGE, command="RAMP {n},<on>,<K/min>",
           query="RAMP? {n}"),
    Signal("OnRamp{n}", SETTING, ENUM, "Loop {n} setpoint ramping", choices=OFF_ON,
           command="RAMP {n},<0/1>,<rate>", query="RAMP? {n}"),
)
"""One heater loop; ``{n}`` is the output number (1 or 2)."""

INPUT = (
    Signal("IN{n}", MEASUREMENT, FLOAT, "Input {letter} in its display units", units="K",
           precision=4, query="KRDG? {letter} / CRDG? / SRDG?"),
    Signal("IN{n}:Units", SETTING, ENUM, "Input {letter} display units",
           choices=TEMPERATURE_UNITS, command="INTYPE {letter},...,<units>",
           query="INTYPE? {letter}"),
    Signal("IN{n}:Name_RBV", READBACK, STRING, "Input {letter} sensor name",
           query="INNAME? {letter}"),
    Signal("IN{n}:Kelvin", MEASUREMENT, FLOAT, "Input {letter} in kelvin", units="K",
           precision=4, limits=READING_RANGE, query="KRDG? {letter}"),
    Signal("IN{n}:TLimit", SETTING, FLOAT, "Input {letter} temperature limit (0 = off)",
           units="K", precision=3, limits=TEMPERATURE_LIMIT_RANGE,
           command="TLIMIT {letter},<K>", query="TLIMIT? {letter}"),
)
"""One sensor input; ``{n}`` is 1 to 4, ``{letter}`` A to D."""


RECORDS = (
    Signal("read", ACTION, INT, "Process: read every input and heater", record="seq"),
    Signal("readAll", ACTION, INT, "Process: read every setting", record="seq"),
    Signal("serial", READBACK, STRING, "The controller's serial port", record="asyn"),
)
"""The module's own records (scan and processing, the asyn port), whose fields clients use."""


def loop(n: int) -> tuple[Signal, ...]:
    """The signals of heater loop ``n``."""
    return tuple(numbered(signal, n) for signal in LOOP)


def sensor_input(n: int) -> tuple[Signal, ...]:
    """The signals of sensor input ``n`` (1 = A ... 4 = D)."""
    return tuple(numbered(signal, n, INPUT_LETTERS[n]) for signal in INPUT)


SIGNALS = tuple(signal for n in INPUTS for signal in sensor_input(n)) + tuple(
    signal for n in LOOPS for signal in loop(n)) + RECORDS
"""Every signal of the controller."""
