"""SR830 emulator: one lock-in's commands over TCP, answered from one of the shared
simulation's lock-in models (the susceptometer's or the transport one).

A command it does not know sets the command-error bit of ``*ESR?``, a parameter
out of range the execution-error bit; either way the command is ignored. The
overload bits of ``LIAS?`` latch until read.
"""

from __future__ import annotations

import cmath
import math

from tcstation.instruments.sr830 import (
    AMPLITUDE_RANGE,
    FREQUENCY_RANGE,
    HARMONIC_RANGE,
    PHASE_RANGE,
    SENSITIVITIES,
    SLOPES_DB,
    TIME_CONSTANTS,
)
from tcstation.protocol import sr830 as protocol

from .base import CommandError, InstrumentEmulator, number, parameters, unknown, whole

IDN = "Stanford_Research_Systems,SR830,s/n{serial},ver1.07"
SETTINGS = {
    # mnemonic: (model attribute, parser, reply format)
    "FREQ": "frequency", "SLVL": "amplitude", "PHAS": "phase_deg", "HARM": "harmonic",
    "SENS": "sensitivity_index", "OFLT": "time_constant_index", "OFSL": "slope_index",
}


class SR830Emulator(InstrumentEmulator):
    name = protocol.INSTRUMENT
    write_termination = protocol.READ_TERMINATION

    def __init__(self, clock, channel: str, serial: int = 10001):
        super().__init__(clock)
        self.channel = channel
        self.serial = serial
        self.event_status = 0
        self.lockin_status = 0
        self.interface = 1
        clock.listeners.append(self.latch_overload)

    def latch_overload(self) -> None:
        """Latch the output-overload bit of ``LIAS?`` whenever the model overloads."""
        if self.model.output()[1]:
            self.lockin_status |= protocol.LIAS_OUTPUT_OVERLOAD

    @property
    def model(self):
        return getattr(self.simulation, f"{self.channel}_lockin")

    def refuse(self, error: CommandError, command: str) -> None:
        self.event_status |= (protocol.ESR_COMMAND_ERROR if error.kind == "header"
                              else protocol.ESR_EXECUTION_ERROR)
        super().refuse(error, command)

    def outputs(self) -> tuple[float, float, float, float]:
        value, overloaded = self.model.output()
        if overloaded:
            self.lockin_status |= protocol.LIAS_OUTPUT_OVERLOAD
        theta = math.degrees(cmath.phase(value)) if value else 0.0
        return value.real, value.imag, abs(value), theta

    def handle(self, command: str, argument: str) -> str | None:
        model = self.model
        if command == "*IDN?":
            return IDN.format(serial=self.serial)
        if command == "*RST" or command == "*CLS":
            self.event_status = 0
            self.lockin_status = 0
            return None
        if command == "*ESR?":
            value, self.event_status = self.event_status, 0
            return str(value)
        if command == "ERRS?":
            return "0"
        if command == "LIAS?":
            self.outputs()
            value, self.lockin_status = self.lockin_status, 0
            return str(value)
        if command == "OUTX":
            self.interface = whole(command, argument, 0, 1)
            return None
        if command == "OUTX?":
            return str(self.interface)
        if command == "AGAN":
            parameters(command, argument, 0)
            model.auto_gain()
            return None
        if command == "OUTP?":
            return protocol.format_value(self.outputs()[whole(command, argument, 1, 4) - 1])
        if command == "SNAP?":
            fields = parameters(command, argument, (2, 3, 4, 5, 6))
            values = self.outputs()
            chosen = [whole(command, field, 1, 4) for field in fields]
            return ",".join(protocol.format_value(values[index - 1]) for index in chosen)
        if command.endswith("?") and command[:-1] in SETTINGS:
            parameters(command, argument, 0)
            value = getattr(model, SETTINGS[command[:-1]])
            return protocol.format_value(value) if isinstance(value, float) else str(value)
        if command in SETTINGS:
            self._set(command, argument)
            return None
        raise unknown(command)

    def _set(self, command: str, argument: str) -> None:
        model = self.model
        (text,) = parameters(command, argument, 1)
        if command == "FREQ":
            hertz = number(command, text, *FREQUENCY_RANGE)
            if hertz * model.harmonic > FREQUENCY_RANGE[1]:
                raise CommandError("range", f"FREQ {hertz:g} at harmonic {model.harmonic}")
            model.frequency = hertz
        elif command == "SLVL":
            model.amplitude = number(command, text, *AMPLITUDE_RANGE)
        elif command == "PHAS":
            model.phase_deg = number(command, text, *PHASE_RANGE)
        elif command == "HARM":
            harmonic = whole(command, text, *HARMONIC_RANGE)
            if harmonic * model.frequency > FREQUENCY_RANGE[1]:
                raise CommandError("range", f"HARM {harmonic} at {model.frequency:g} Hz")
            model.harmonic = harmonic
        elif command == "SENS":
            model.sensitivity_index = whole(command, text, 0, len(SENSITIVITIES) - 1)
        elif command == "OFLT":
            model.time_constant_index = whole(command, text, 0, len(TIME_CONSTANTS) - 1)
        else:
            model.slope_index = whole(command, text, 0, len(SLOPES_DB) - 1)
