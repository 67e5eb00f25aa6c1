"""LakeShore 336 remote protocol (manual, chapter 6): commands, queries and replies.

Commands are a mnemonic, a space and comma-separated parameters (``SETP 1,10.5``);
queries end the mnemonic with ``?`` (``SETP? 1``). The controller takes ``\\n``
or ``\\r\\n`` after a message and ends each reply with ``\\r\\n``; several
commands or queries go in one message separated by ``;`` and their replies come
back in one line, ``;`` between them. It answers nothing to a command (only to
a query), ignores a command it does not understand or whose value is out of
range, and takes no more than about 20 commands a second.

Functions named after a command build the string the bridge sends; ``parse_*``
turn a reply into a value (a :class:`ProtocolError` naming the command and the
reply when it does not parse); ``format_*`` build the replies (the emulator's).
"""

from __future__ import annotations

from tcstation.instruments.lakeshore336 import (
    CONTROL_INPUTS,
    CONTROL_MODES,
    HEATER_RANGES,
    INPUT_LETTERS,
    TEMPERATURE_UNITS,
)

from .common import ProtocolError, parse_float, parse_idn, parse_int, split_fields

INSTRUMENT = "LakeShore 336"
MODEL = "MODEL336"
READ_TERMINATION = "\r\n"
WRITE_TERMINATION = "\n"
COMMANDS_PER_SECOND = 20.0
"""The manual's pace: the controller may miss commands sent faster."""
LETTERS = tuple(INPUT_LETTERS.values())
OUTPUT_MODES = CONTROL_MODES + ("Monitor Out", "Warmup Supply")
"""``OUTMODE`` modes 0 to 5; the contract's enum serves the first four (outputs 1, 2)."""

IDN = "*IDN?"


def _letter(letter: str) -> str:
    letter = str(letter).upper()
    if letter not in LETTERS:
        raise ValueError(f"{INSTRUMENT}: input {letter!r} is not one of {LETTERS}")
    return letter


def _loop(loop: int) -> int:
    if loop not in (1, 2, 3, 4):
        raise ValueError(f"{INSTRUMENT}: output {loop!r} is not 1 to 4")
    return int(loop)


def check_idn(reply: str) -> tuple[str, str, str, str]:
    """``*IDN?`` -> (maker, model, serial, firmware) of a Model 336."""
    return parse_idn(INSTRUMENT, reply, MODEL)


# --- readings -------------------------------------------------------------------------

def kelvin_query(letter: str) -> str:
    return f"KRDG? {_letter(letter)}"


def celsius_query(letter: str) -> str:
    return f"CRDG? {_letter(letter)}"


def sensor_query(letter: str) -> str:
    return f"SRDG? {_letter(letter)}"


READING_QUERIES = {"K": kelvin_query, "C": celsius_query, "Sensor": sensor_query}
"""The reading query of each display unit (``INTYPE`` units)."""


def parse_reading(command: str, reply: str) -> float:
    """``+004.2000`` -> 4.2 (``KRDG?``, ``CRDG?``, ``SRDG?``, ``HTR?``, ``SETP?``, ...)."""
    return parse_float(INSTRUMENT, command, reply)


def format_reading(value: float) -> str:
    return f"{value:+09.4f}" if abs(value) < 1000 else f"{value:+.3f}"


def heater_query(loop: int) -> str:
    return f"HTR? {_loop(loop)}"


def format_heater(percent: float) -> str:
    return f"{percent:+06.2f}"


def ramp_status_query(loop: int) -> str:
    return f"RAMPST? {_loop(loop)}"


def parse_ramp_status(command: str, reply: str) -> bool:
    return bool(parse_int(INSTRUMENT, command, reply, allowed=range(2)))


# --- settings -------------------------------------------------------------------------

def setpoint_command(loop: int, kelvin: float) -> str:
    return f"SETP {_loop(loop)},{kelvin:.4f}"


def setpoint_query(loop: int) -> str:
    return f"SETP? {_loop(loop)}"


def ramp_command(loop: int, on: bool, rate: float) -> str:
    """``RAMP <output>,<off 0/on 1>,<K/min>``."""
    return f"RAMP {_loop(loop)},{int(bool(on))},{rate:.3f}"


def ramp_query(loop: int) -> str:
    return f"RAMP? {_loop(loop)}"


def parse_ramp(command: str, reply: str) -> tuple[bool, float]:
    """``1,+1.000`` -> (True, 1.0)."""
    on, rate = split_fields(INSTRUMENT, command, reply, 2)
    return (bool(parse_int(INSTRUMENT, command, reply, on, range(2))),
            parse_float(INSTRUMENT, command, reply, rate))


def format_ramp(on: bool, rate: float) -> str:
    return f"{int(on)},{rate:+07.3f}"


def range_command(loop: int, heater_range: int) -> str:
    """``RANGE <output>,<0 off .. 3 high>`` (outputs 1 and 2)."""
    return f"RANGE {_loop(loop)},{int(heater_range)}"


def range_query(loop: int) -> str:
    return f"RANGE? {_loop(loop)}"


def parse_range(command: str, reply: str) -> str:
    """``2`` -> ``'Medium'``."""
    return HEATER_RANGES[parse_int(INSTRUMENT, command, reply, allowed=range(len(HEATER_RANGES)))]


def pid_command(loop: int, p: float, i: float, d: float) -> str:
    return f"PID {_loop(loop)},{p:.1f},{i:.1f},{d:.0f}"


def pid_query(loop: int) -> str:
    return f"PID? {_loop(loop)}"


def parse_pid(command: str, reply: str) -> tuple[float, float, float]:
    """``+0050.0,+0020.0,+000`` -> (50.0, 20.0, 0.0)."""
    fields = split_fields(INSTRUMENT, command, reply, 3)
    p, i, d = (parse_float(INSTRUMENT, command, reply, field) for field in fields)
    return p, i, d


def format_pid(p: float, i: float, d: float) -> str:
    return f"{p:+07.1f},{i:+07.1f},{d:+04.0f}"


def outmode_command(loop: int, mode: str, control_input: str, powerup: bool) -> str:
    """``OUTMODE <output>,<mode 0..5>,<input 0 none, 1 A .. 4 D>,<powerup enable 0/1>``."""
    return (f"OUTMODE {_loop(loop)},{OUTPUT_MODES.index(mode)},"
            f"{CONTROL_INPUTS.index(control_input)},{int(bool(powerup))}")


def outmode_query(loop: int) -> str:
    return f"OUTMODE? {_loop(loop)}"


def parse_outmode(command: str, reply: str) -> tuple[str, str, bool]:
    """``1,1,0`` -> ('Closed Loop', 'A', False)."""
    mode, control_input, powerup = split_fields(INSTRUMENT, command, reply, 3)
    return (OUTPUT_MODES[parse_int(INSTRUMENT, command, reply, mode,
                                   range(len(OUTPUT_MODES)))],
            CONTROL_INPUTS[parse_int(INSTRUMENT, command, reply, control_input,
                                     range(len(CONTROL_INPUTS)))],
            bool(parse_int(INSTRUMENT, command, reply, powerup, range(2))))


def format_outmode(mode: str, control_input: str, powerup: bool) -> str:
    return f"{OUTPUT_MODES.index(mode)},{CONTROL_INPUTS.index(control_input)},{int(powerup)}"


def manual_output_command(loop: int, percent: float) -> str:
    return f"MOUT {_loop(loop)},{percent:.2f}"


def manual_output_query(loop: int) -> str:
    return f"MOUT? {_loop(loop)}"


def temperature_limit_command(letter: str, kelvin: float) -> str:
    """``TLIMIT <input>,<K>``: above it every control output turns off (0 = off)."""
    return f"TLIMIT {_letter(letter)},{kelvin:.3f}"


def temperature_limit_query(letter: str) -> str:
    return f"TLIMIT? {_letter(letter)}"


def format_temperature_limit(kelvin: float) -> str:
    return f"{kelvin:+09.3f}"


def input_name_query(letter: str) -> str:
    return f"INNAME? {_letter(letter)}"


def parse_input_name(command: str, reply: str) -> str:
    name = reply.strip()
    if len(name) > 15:
        raise ProtocolError(INSTRUMENT, command, reply, "a sensor name has at most 15 "
                            "characters")
    return name


def input_type_query(letter: str) -> str:
    return f"INTYPE? {_letter(letter)}"


def input_type_command(letter: str, sensor_type: int, autorange: int, sensor_range: int,
                       compensation: int, units: str) -> str:
    """``INTYPE <input>,<type>,<autorange>,<range>,<compensation>,<units 1 K, 2 C, 3 sensor>``."""
    return (f"INTYPE {_letter(letter)},{sensor_type},{autorange},{sensor_range},"
            f"{compensation},{TEMPERATURE_UNITS.index(units) + 1}")


def parse_input_type(command: str, reply: str) -> tuple[int, int, int, int, str]:
    """``3,1,0,1,1`` -> (type, autorange, range, compensation, units ``'K'``)."""
    fields = split_fields(INSTRUMENT, command, reply, 5)
    numbers = [parse_int(INSTRUMENT, command, reply, field) for field in fields]
    if not 1 <= numbers[4] <= len(TEMPERATURE_UNITS):
        raise ProtocolError(INSTRUMENT, command, reply,
                            f"units {numbers[4]} are not 1 (K), 2 (C) or 3 (sensor)")
    return numbers[0], numbers[1], numbers[2], numbers[3], TEMPERATURE_UNITS[numbers[4] - 1]
