"""SR830 remote protocol (manual, chapter 5): commands, queries and replies.

A command is a four-letter mnemonic and comma-separated parameters (``SENS 17``),
a query the mnemonic with ``?`` (``SENS?``). The lock-in takes ``\\n`` or
``\\r\\n`` after a message and here ends each reply with ``\\r\\n``; commands
go several to a message separated by ``;``. A command it does not know sets
the command-error bit (5, CME) of the standard event status (``*ESR?``); a
parameter out of range sets the execution-error bit (4, EXE); either way the
command is ignored. ``LIAS?`` holds the overload bits (0 input, 1 filter,
2 output) latched until read. ``OUTX 0`` sends replies to the RS-232 port,
``OUTX 1`` to GPIB: a bridge sends ``OUTX`` for its interface first.
"""

from __future__ import annotations

from tcstation.instruments.sr830 import SENSITIVITIES, SLOPES_DB, TIME_CONSTANTS

from .common import ProtocolError, parse_float, parse_idn, parse_int, split_fields

INSTRUMENT = "SR830"
MODEL = "SR830"
READ_TERMINATION = "\r\n"
WRITE_TERMINATION = "\n"

IDN = "*IDN?"
EVENT_STATUS = "*ESR?"
LOCKIN_STATUS = "LIAS?"
AUTO_GAIN = "AGAN"
ESR_EXECUTION_ERROR = 1 << 4
ESR_COMMAND_ERROR = 1 << 5
LIAS_INPUT_OVERLOAD = 1 << 0
LIAS_FILTER_OVERLOAD = 1 << 1
LIAS_OUTPUT_OVERLOAD = 1 << 2
OVERLOAD_BITS = LIAS_INPUT_OVERLOAD | LIAS_FILTER_OVERLOAD | LIAS_OUTPUT_OVERLOAD
OUTPUTS = {1: "X", 2: "Y", 3: "R", 4: "THETA"}
"""``OUTP?`` and ``SNAP?`` parameters 1 to 4."""


def check_idn(reply: str) -> tuple[str, str, str, str]:
    return parse_idn(INSTRUMENT, reply, MODEL)


def interface_command(gpib: bool) -> str:
    return f"OUTX {int(bool(gpib))}"


def frequency_command(hertz: float) -> str:
    return f"FREQ {hertz:.4f}"


def amplitude_command(volts: float) -> str:
    return f"SLVL {volts:.3f}"


def phase_command(degrees: float) -> str:
    return f"PHAS {degrees:.2f}"


def harmonic_command(harmonic: int) -> str:
    return f"HARM {int(harmonic)}"


def sensitivity_command(index: int) -> str:
    return f"SENS {int(index)}"


def time_constant_command(index: int) -> str:
    return f"OFLT {int(index)}"


def slope_command(index: int) -> str:
    return f"OFSL {int(index)}"


SETTING_MNEMONICS = ("FREQ", "SLVL", "PHAS", "HARM", "SENS", "OFLT", "OFSL")
INDEX_RANGES = {"HARM": range(1, 20000), "SENS": range(len(SENSITIVITIES)),
                "OFLT": range(len(TIME_CONSTANTS)), "OFSL": range(len(SLOPES_DB))}


def query(mnemonic: str) -> str:
    """``FREQ?`` and the like."""
    if mnemonic not in SETTING_MNEMONICS:
        raise ValueError(f"{INSTRUMENT}: {mnemonic!r} is not one of {SETTING_MNEMONICS}")
    return f"{mnemonic}?"


def parse_setting(mnemonic: str, reply: str) -> float | int:
    """The reply to ``<mnemonic>?``: a float (FREQ, SLVL, PHAS) or an index."""
    command = query(mnemonic)
    if mnemonic in INDEX_RANGES:
        return parse_int(INSTRUMENT, command, reply, allowed=INDEX_RANGES[mnemonic])
    return parse_float(INSTRUMENT, command, reply)


def output_query(number: int) -> str:
    if number not in OUTPUTS:
        raise ValueError(f"{INSTRUMENT}: OUTP? takes 1 to 4, not {number!r}")
    return f"OUTP? {number}"


def snap_query(numbers=(1, 2, 3, 4)) -> str:
    return "SNAP? " + ",".join(str(int(number)) for number in numbers)


def parse_snap(command: str, reply: str, count: int = 4) -> tuple[float, ...]:
    """``1.2e-06,-3e-08,1.2e-06,-1.4`` -> the values asked for."""
    fields = split_fields(INSTRUMENT, command, reply, count)
    return tuple(parse_float(INSTRUMENT, command, reply, field) for field in fields)


def parse_status(command: str, reply: str) -> int:
    """A status byte (``LIAS?``, ``*ESR?``, ``ERRS?``), 0 to 255."""
    return parse_int(INSTRUMENT, command, reply, allowed=range(256))


def format_value(value: float) -> str:
    return f"{value:.6g}"


def parse_output(command: str, reply: str) -> float:
    return parse_float(INSTRUMENT, command, reply)


__all__ = ["ProtocolError"]
