"""Keithley 2400 emulator: the source's SCPI over TCP, answered from the shared
simulation's source model (the load is the transport insert's leads and contacts).

Errors go to the queue ``:SYST:ERR?`` reads; a ``:READ?`` with the output off
queues ``+803,"Output disabled"`` and answers nothing, as the instrument does.
Headers are matched in the short form or the long one (``:SOUR``/``:SOURCE``,
``:CURR``/``:CURRENT``), the leading ``:`` optional.
"""

from __future__ import annotations

from collections import deque

from tcstation.instruments.sourcemeter import CURRENT_RANGE, VOLTAGE_LIMIT_RANGE
from tcstation.protocol import sourcemeter as protocol

from .base import CommandError, InstrumentEmulator, number

IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4100001,C30   Mar 17 2006 09:29:29/A02  /K/J"
LONG_FORMS = {"SOURCE": "SOUR", "CURRENT": "CURR", "VOLTAGE": "VOLT", "SENSE": "SENS",
              "PROTECTION": "PROT", "OUTPUT": "OUTP", "FORMAT": "FORM", "ELEMENTS": "ELEM",
              "SYSTEM": "SYST", "ERROR": "ERR", "FUNCTION": "FUNC", "TRIPPED": "TRIP",
              "LEVEL": "", "AMPLITUDE": "", "IMMEDIATE": "", "LEV": "", "AMPL": "",
              "IMM": "", "STATE": "", "STAT": ""}
ERROR_QUEUE_SIZE = 10
RESET_VOLTAGE_LIMIT = 21.0  # V, the compliance after *RST


def canonical(header: str) -> str:
    """``:SOURCE:CURRENT:LEVEL`` -> ``SOUR:CURR``."""
    query = header.endswith("?")
    parts = [LONG_FORMS.get(part, part) for part in header.rstrip("?").strip(":").split(":")]
    return ":".join(part for part in parts if part) + ("?" if query else "")


class SourceMeterEmulator(InstrumentEmulator):
    name = protocol.INSTRUMENT
    write_termination = protocol.READ_TERMINATION

    def __init__(self, clock):
        super().__init__(clock)
        self.errors: deque[tuple[int, str]] = deque(maxlen=ERROR_QUEUE_SIZE)
        self.function = "CURR"
        self.elements = ("VOLT", "CURR", "RES", "TIME", "STAT")

    @property
    def model(self):
        return self.simulation.source

    def refuse(self, error: CommandError, command: str) -> None:
        self.errors.append(protocol.UNDEFINED_HEADER if error.kind == "header"
                           else protocol.OUT_OF_RANGE)
        super().refuse(error, command)

    def split(self, text):
        head, argument = super().split(text)
        return canonical(head), argument

    def handle(self, command: str, argument: str) -> str | None:
        model = self.model
        if command == "*IDN?":
            return IDN
        if command == "*RST":
            model.output_on = False
            model.setpoint = 0.0
            model.voltage_limit = RESET_VOLTAGE_LIMIT
            self.elements = ("VOLT", "CURR", "RES", "TIME", "STAT")
            return None
        if command == "*CLS":
            self.errors.clear()
            return None
        if command == "SYST:ERR?":
            return protocol.format_error(*self.errors.popleft()) if self.errors else \
                protocol.format_error(0, "")
        if command == "SOUR:FUNC":
            if argument.upper() not in ("CURR", "CURRENT"):
                raise CommandError("range", f"this emulator sources current only: {argument}")
            return None
        if command == "SOUR:FUNC?":
            return self.function
        if command == "SOUR:CURR":
            model.setpoint = number(command, argument, *CURRENT_RANGE)
            return None
        if command == "SOUR:CURR?":
            return f"{model.setpoint:+.6E}"
        if command == "SENS:VOLT:PROT":
            model.voltage_limit = number(command, argument, *VOLTAGE_LIMIT_RANGE)
            return None
        if command == "SENS:VOLT:PROT?":
            return f"{model.voltage_limit:+.6E}"
        if command == "SENS:VOLT:PROT:TRIP?":
            return "1" if model.measure()[2] else "0"
        if command == "OUTP":
            word = argument.upper()
            if word not in ("ON", "OFF", "1", "0"):
                raise CommandError("range", f":OUTP {argument!r}")
            model.output_on = word in ("ON", "1")
            return None
        if command == "OUTP?":
            return "1" if model.output_on else "0"
        if command == "FORM:ELEM":
            elements = tuple(canonical(item.strip().upper()) for item in argument.split(","))
            if not elements or any(item not in ("VOLT", "CURR", "RES", "TIME", "STAT")
                                   for item in elements):
                raise CommandError("range", f":FORM:ELEM {argument!r}")
            self.elements = elements
            return None
        if command in ("READ?", "MEAS?", "MEAS:VOLT?"):
            if not model.output_on:
                self.errors.append(protocol.OUTPUT_DISABLED)
                return None
            amps, volts, tripped = model.measure()
            values = {"VOLT": f"{volts:+.6E}", "CURR": f"{amps:+.6E}",
                      "RES": "+9.910000E+37", "TIME": f"{self.simulation.time:+.6E}",
                      "STAT": f"{(1 << 3) if tripped else 0:+.6E}"}
            return ",".join(values[item] for item in self.elements)
        raise CommandError("header", f"undefined header {command!r}")
