"""Keithley 2400 SourceMeter SCPI (manual, chapter 18) as the station uses it.

The source reads ``\\n`` after a message and ends each reply with ``\\n``.
Several commands go in one message separated by ``;`` (a leading ``:`` starts
each at the root); the replies of several queries come back as one line joined
by ``;``. An error goes to the error queue read by ``:SYST:ERR?``
(``-113,"Undefined header"``, ``-222,"Parameter data out of range"``; ``0,"No
error"`` when empty); a ``:READ?`` with the output off is refused with
``+803,"Output disabled"`` and gives no reply (the client times out).
"""

from __future__ import annotations

from .common import ProtocolError, parse_float, parse_idn, parse_int, split_fields

INSTRUMENT = "SourceMeter"
MODEL = "2400"
READ_TERMINATION = "\n"
WRITE_TERMINATION = "\n"

IDN = "*IDN?"
RESET = "*RST"
SOURCE_CURRENT = ":SOUR:FUNC CURR"
ELEMENTS = ":FORM:ELEM VOLT,CURR"
READ = ":READ?"
ERROR_QUERY = ":SYST:ERR?"
CURRENT_QUERY = ":SOUR:CURR?"
VOLTAGE_LIMIT_QUERY = ":SENS:VOLT:PROT?"
OUTPUT_QUERY = ":OUTP?"
TRIPPED_QUERY = ":SENS:VOLT:PROT:TRIP?"
NO_ERROR = 0
UNDEFINED_HEADER = (-113, "Undefined header")
OUT_OF_RANGE = (-222, "Parameter data out of range")
OUTPUT_DISABLED = (803, "Output disabled")


def check_idn(reply: str) -> tuple[str, str, str, str]:
    return parse_idn(INSTRUMENT, reply, MODEL)


def current_command(amps: float) -> str:
    return f":SOUR:CURR {amps:.6e}"


def voltage_limit_command(volts: float) -> str:
    return f":SENS:VOLT:PROT {volts:.4f}"


def output_command(on: bool) -> str:
    return f":OUTP {'ON' if on else 'OFF'}"


def parse_number(command: str, reply: str) -> float:
    return parse_float(INSTRUMENT, command, reply)


def parse_flag(command: str, reply: str) -> bool:
    """``1``/``0`` (``:OUTP?``, ``:SENS:VOLT:PROT:TRIP?``)."""
    return bool(parse_int(INSTRUMENT, command, reply, allowed=range(2)))


def parse_read(reply: str) -> tuple[float, float]:
    """``:READ?`` with ``:FORM:ELEM VOLT,CURR`` -> (volts, amps)."""
    volts, amps = split_fields(INSTRUMENT, READ, reply, 2)
    return (parse_float(INSTRUMENT, READ, reply, volts),
            parse_float(INSTRUMENT, READ, reply, amps))


def format_read(volts: float, amps: float) -> str:
    return f"{volts:+.6E},{amps:+.6E}"


def parse_error(reply: str) -> tuple[int, str]:
    """``-113,"Undefined header"`` -> (-113, 'Undefined header')."""
    code, _, message = reply.strip().partition(",")
    if not message.startswith('"') or not message.endswith('"') or len(message) < 2:
        raise ProtocolError(INSTRUMENT, ERROR_QUERY, reply,
                            'expected <code>,"<message>"')
    return parse_int(INSTRUMENT, ERROR_QUERY, reply, code), message[1:-1]


def format_error(code: int, message: str) -> str:
    return f'{code:+d},"{message}"' if code else '0,"No error"'
