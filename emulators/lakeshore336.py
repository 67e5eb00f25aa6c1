"""LakeShore 336 emulator: the controller's commands over TCP, answered from the cryostat
model of the shared simulation (input A the stage, B the sample, loop 1 heats the stage).

It ignores a command it does not understand or whose parameter is out of range,
as the controller does, and takes about 20 commands a second.
"""

from __future__ import annotations

from tcstation.instruments.lakeshore336 import (
    CONTROL_INPUTS,
    DERIVATIVE_RANGE,
    GAIN_RANGE,
    HEATER_RANGES,
    OUTPUT_RANGE,
    RAMP_RATE_RANGE,
    SETPOINT_RANGE,
    TEMPERATURE_LIMIT_RANGE,
    TEMPERATURE_UNITS,
)
from tcstation.ioc_sim.lakeshore336 import INPUT_NAMES, sensor_reading
from tcstation.protocol import lakeshore336 as protocol

from .base import CommandError, InstrumentEmulator, number, parameters, unknown, whole

IDN = "LSCI,MODEL336,LSA12345,2.9"
SENSOR_TYPE = (3, 1, 0, 1)  # NTC RTD, autorange on, range 0, compensation on


class LoopState:
    """Settings of an idle loop (2): taken and read back, heating nothing."""

    def __init__(self):
        self.setpoint = 0.0
        self.ramp_enabled = False
        self.ramp_rate = 1.0
        self.heater_range = "Off"
        self.pid = (50.0, 20.0, 0.0)
        self.mode = "Off"
        self.control_input = "None"
        self.powerup = False
        self.manual_output = 0.0


class LakeShore336Emulator(InstrumentEmulator):
    name = protocol.INSTRUMENT
    write_termination = protocol.READ_TERMINATION
    command_interval = 1.0 / protocol.COMMANDS_PER_SECOND

    def __init__(self, clock):
        super().__init__(clock)
        self.loop2 = LoopState()
        self.units = {letter: "K" for letter in protocol.LETTERS}
        self.powerup = {1: False, 2: False}

    @property
    def cryostat(self):
        return self.simulation.cryostat

    # --- helpers ------------------------------------------------------------------------

    def _input(self, command: str, argument: str) -> str:
        letter = argument.strip().upper()
        if letter not in protocol.LETTERS:
            raise CommandError("range", f"{command}: input {argument!r} is not A to D")
        return letter

    def _output(self, command: str, text: str, outputs=(1, 2)) -> int:
        loop = whole(command, text, 1, 4)
        if loop not in outputs:
            raise CommandError("range", f"{command}: output {loop} is not one of {outputs}")
        return loop

    def _kelvin(self, letter: str) -> float:
        kelvin = self.cryostat.input_kelvin(protocol.LETTERS.index(letter) + 1)
        rng = self.simulation.rng if self.simulation.noise and letter in "AB" else None
        return kelvin + (0.002 * rng.standard_normal() if rng is not None else 0.0)

    # --- the command set ----------------------------------------------------------------

    def handle(self, command: str, argument: str) -> str | None:
        cryostat = self.cryostat
        if command == "*IDN?":
            return IDN
        if command in ("*RST", "*CLS"):
            return None
        if command == "*OPC?":
            return "1"
        if command in ("KRDG?", "CRDG?", "SRDG?"):
            kelvin = self._kelvin(self._input(command, argument))
            units = {"KRDG?": "K", "CRDG?": "C", "SRDG?": "Sensor"}[command]
            return protocol.format_reading(sensor_reading(kelvin, units))
        if command == "INNAME?":
            letter = self._input(command, argument)
            return INPUT_NAMES[protocol.LETTERS.index(letter) + 1]
        if command == "INTYPE?":
            letter = self._input(command, argument)
            return ",".join(str(n) for n in SENSOR_TYPE) + \
                f",{TEMPERATURE_UNITS.index(self.units[letter]) + 1}"
        if command == "INTYPE":
            fields = parameters(command, argument, 6)
            letter = self._input(command, fields[0])
            self.units[letter] = TEMPERATURE_UNITS[whole(command, fields[5], 1, 3) - 1]
            return None
        if command == "TLIMIT?":
            letter = self._input(command, argument)
            return protocol.format_temperature_limit(
                cryostat.input_limits[protocol.LETTERS.index(letter)])
        if command == "TLIMIT":
            letter, kelvin = parameters(command, argument, 2)
            letter = self._input(command, letter)
            cryostat.input_limits[protocol.LETTERS.index(letter)] = number(
                command, kelvin, *TEMPERATURE_LIMIT_RANGE)
            cryostat.enforce_input_limits()
            return None
        if command.endswith("?"):
            return self._loop_query(command, argument)
        return self._loop_command(command, argument)

    def _loop_query(self, command: str, argument: str) -> str:
        if command not in ("SETP?", "RAMP?", "RAMPST?", "RANGE?", "HTR?", "PID?", "OUTMODE?",
                           "MOUT?"):
            raise unknown(command)
        loop = self._output(command, argument)
        state = self.cryostat if loop == 1 else self.loop2
        if command == "SETP?":
            return protocol.format_reading(state.setpoint)
        if command == "RAMP?":
            return protocol.format_ramp(state.ramp_enabled, state.ramp_rate)
        if command == "RAMPST?":
            return "1" if loop == 1 and self.cryostat.ramping else "0"
        if command == "RANGE?":
            return str(HEATER_RANGES.index(state.heater_range))
        if command == "HTR?":
            return protocol.format_heater(self.cryostat.heater_output if loop == 1 else 0.0)
        if command == "PID?":
            return protocol.format_pid(*state.pid)
        if command == "MOUT?":
            return protocol.format_heater(state.manual_output)
        powerup = self.powerup[1] if loop == 1 else state.powerup
        return protocol.format_outmode(state.mode, state.control_input, powerup)

    def _loop_command(self, command: str, argument: str) -> None:
        if command not in ("SETP", "RAMP", "RANGE", "PID", "OUTMODE", "MOUT"):
            raise unknown(command)
        fields = parameters(command, argument, {"SETP": 2, "RAMP": 3, "RANGE": 2, "PID": 4,
                                                "OUTMODE": 4, "MOUT": 2}[command])
        loop = self._output(command, fields[0])
        values = fields[1:]
        cryostat = self.cryostat
        if command == "SETP":
            kelvin = number(command, values[0], *SETPOINT_RANGE)
            if loop == 1:
                cryostat.change_setpoint(kelvin)
            else:
                self.loop2.setpoint = kelvin
        elif command == "RAMP":
            on = bool(whole(command, values[0], 0, 1))
            rate = number(command, values[1], 0.0, RAMP_RATE_RANGE[1])
            state = cryostat if loop == 1 else self.loop2
            if loop == 1 and on and not cryostat.ramp_enabled:
                cryostat.ramp_setpoint = cryostat.setpoint  # ramping starts from here
            state.ramp_enabled, state.ramp_rate = on, rate
        elif command == "RANGE":
            choice = HEATER_RANGES[whole(command, values[0], 0, len(HEATER_RANGES) - 1)]
            if choice != "Off" and cryostat.input_over_limit() is not None:
                raise CommandError("range", f"input over its temperature limit: {choice} "
                                   "refused")
            if loop == 1:
                cryostat.heater_range = choice
            else:
                self.loop2.heater_range = choice
        elif command == "PID":
            pid = (number(command, values[0], *GAIN_RANGE),
                   number(command, values[1], *GAIN_RANGE),
                   number(command, values[2], *DERIVATIVE_RANGE))
            (cryostat if loop == 1 else self.loop2).pid = pid
        elif command == "MOUT":
            (cryostat if loop == 1 else self.loop2).manual_output = number(
                command, values[0], *OUTPUT_RANGE)
        else:  # OUTMODE
            mode = protocol.OUTPUT_MODES[whole(command, values[0], 0, 3)]
            control_input = CONTROL_INPUTS[whole(command, values[1], 0, 4)]
            powerup = bool(whole(command, values[2], 0, 1))
            state = cryostat if loop == 1 else self.loop2
            state.mode, state.control_input = mode, control_input
            if loop == 1:
                self.powerup[1] = powerup
            else:
                state.powerup = powerup
        return None
