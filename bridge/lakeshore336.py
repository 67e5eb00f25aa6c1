"""The LakeShore 336 bridged: the simulated IOC's ``TC:`` PVs, served from the controller.

The PVGroup is built from the contract (``tcstation.instruments.lakeshore336``)
with the simulated IOC's helpers, so it serves the same names, types, limits,
units and enum strings. A put is checked against the contract, sent as the
controller's command and read back with its query in the same exchange; the
put completes with the value the controller reads back, and fails if the
controller did not take it. The readings (``KRDG?``, ``HTR?``) are polled every
``poll_period`` in one chained query, every setting every ``settings_period``
(a front-panel change shows up), the readbacks from the replies.

Beyond the simulated IOC's PVs: ``IDN_RBV`` (the controller's ``*IDN?``) and
``Connected_RBV`` (No/Yes), both the bridge's own.
"""

from __future__ import annotations

import logging
import re

from tcstation.bridge.group import BridgeGroup, build_group_class
from tcstation.instruments import lakeshore336 as contract
from tcstation.instruments.lakeshore336 import (
    CONTROL_MODES,
    HEATER_RANGES,
    INPUT_LETTERS,
    LOOPS,
)
from tcstation.instruments.signal import by_suffix
from tcstation.ioc_sim.lakeshore336 import SENSOR_UNITS
from tcstation.ioc_sim.putchecks import (
    checked,
)
from tcstation.protocol import ProtocolError
from tcstation.protocol import lakeshore336 as protocol

logger = logging.getLogger(__name__)

SIGNALS = by_suffix(contract.SIGNALS)

# --- what the controller is asked, per PV -------------------------------------------------

def setting_queries() -> dict[str, object]:
    """Every query that reads settings, with the parser of its reply to ``{suffix: value}``."""
    queries = {}
    for n in LOOPS:
        queries[protocol.setpoint_query(n)] = lambda c, r, n=n: {
            f"OUT{n}:SP": protocol.parse_reading(c, r)}
        queries[protocol.outmode_query(n)] = lambda c, r, n=n: _outmode(n, c, r)
        queries[protocol.manual_output_query(n)] = lambda c, r, n=n: {
            f"OUT{n}:MOUT": protocol.parse_reading(c, r)}
        queries[protocol.range_query(n)] = lambda c, r, n=n: {
            f"HTR{n}:Range": protocol.parse_range(c, r)}
        queries[protocol.pid_query(n)] = lambda c, r, n=n: dict(
            zip((f"P{n}", f"I{n}", f"D{n}"), protocol.parse_pid(c, r), strict=True))
        queries[protocol.ramp_query(n)] = lambda c, r, n=n: _ramp(n, c, r)
    for n, letter in INPUT_LETTERS.items():
        queries[protocol.input_type_query(letter)] = lambda c, r, n=n: _input_type(n, c, r)
        queries[protocol.temperature_limit_query(letter)] = lambda c, r, n=n: {
            f"IN{n}:TLimit": protocol.parse_reading(c, r)}
        queries[protocol.input_name_query(letter)] = lambda c, r, n=n: {
            f"IN{n}:Name_RBV": protocol.parse_input_name(c, r)}
    return queries


def _outmode(n, command, reply):
    mode, control_input, powerup = protocol.parse_outmode(command, reply)
    if mode not in CONTROL_MODES:
        raise ProtocolError(protocol.INSTRUMENT, command, reply,
                            f"mode {mode!r} is not one of {CONTROL_MODES}")
    return {f"OUT{n}:Mode": mode, f"OUT{n}:Cntrl": control_input, f"_powerup{n}": powerup}


def _ramp(n, command, reply):
    on, rate = protocol.parse_ramp(command, reply)
    return {f"OnRamp{n}": "On" if on else "Off", f"RampR{n}": rate}


def _input_type(n, command, reply):
    *sensor, units = protocol.parse_input_type(command, reply)
    return {f"IN{n}:Units": units, f"_intype{n}": tuple(sensor)}


def setting_command(suffix: str, value, state: dict) -> tuple[str, str]:
    """The command that puts ``value`` to setting ``suffix`` (the other parameters of a
    shared command from ``state``, what the controller last read back) and the query that
    reads it back."""
    match = re.fullmatch(r"(OUT|HTR|P|I|D|RampR|OnRamp|IN)(\d)(?::(\w+))?", suffix)
    if match is None:
        raise KeyError(suffix)
    head, n, tail = match.group(1), int(match.group(2)), match.group(3)
    if head == "OUT" and tail == "SP":
        return protocol.setpoint_command(n, value), protocol.setpoint_query(n)
    if head == "OUT" and tail in ("Mode", "Cntrl"):
        mode = value if tail == "Mode" else state[f"OUT{n}:Mode"]
        control_input = value if tail == "Cntrl" else state[f"OUT{n}:Cntrl"]
        return (protocol.outmode_command(n, mode, control_input, state[f"_powerup{n}"]),
                protocol.outmode_query(n))
    if head == "OUT" and tail == "MOUT":
        return protocol.manual_output_command(n, value), protocol.manual_output_query(n)
    if head == "HTR" and tail == "Range":
        return protocol.range_command(n, HEATER_RANGES.index(value)), protocol.range_query(n)
    if head in ("P", "I", "D"):
        pid = {term: state[f"{term}{n}"] for term in "PID"}
        pid[head] = value
        return protocol.pid_command(n, pid["P"], pid["I"], pid["D"]), protocol.pid_query(n)
    if head in ("RampR", "OnRamp"):
        on = (value if head == "OnRamp" else state[f"OnRamp{n}"]) == "On"
        rate = value if head == "RampR" else state[f"RampR{n}"]
        return protocol.ramp_command(n, on, rate), protocol.ramp_query(n)
    letter = INPUT_LETTERS[n]
    if tail == "Units":
        return (protocol.input_type_command(letter, *state[f"_intype{n}"], value),
                protocol.input_type_query(letter))
    if tail == "TLimit":
        return (protocol.temperature_limit_command(letter, value),
                protocol.temperature_limit_query(letter))
    raise KeyError(suffix)


def reading_queries(units: dict[int, str]) -> list[tuple[str, object]]:
    """The polled readings: each input in kelvin (and in its display units), each heater."""
    queries = []
    for n, letter in INPUT_LETTERS.items():
        kelvin = protocol.kelvin_query(letter)
        if units.get(n, "K") == "K":
            queries.append((kelvin, lambda c, r, n=n: dict.fromkeys(
                (f"IN{n}:Kelvin", f"IN{n}"), protocol.parse_reading(c, r))))
        else:
            queries.append((kelvin, lambda c, r, n=n: {
                f"IN{n}:Kelvin": protocol.parse_reading(c, r)}))
            display = protocol.READING_QUERIES[units[n]](letter)
            queries.append((display, lambda c, r, n=n: {f"IN{n}": protocol.parse_reading(c, r)}))
    for n in LOOPS:
        queries.append((protocol.heater_query(n), lambda c, r, n=n: {
            f"HTR{n}": protocol.parse_reading(c, r)}))
    return queries


# --- the PVGroup ----------------------------------------------------------------------------

class LakeShore336BridgeBase(BridgeGroup):
    instrument = protocol.INSTRUMENT
    """The LakeShore 336's polls and puts; the PVs are added by :func:`build_group_class`."""

    def check_idn(self, reply: str) -> None:
        protocol.check_idn(reply)

    async def read_settings(self) -> None:
        items = list(setting_queries().items())
        values: dict = {}
        for start in range(0, len(items), 8):  # 8 queries a message: under 0.5 s at 20/s
            values.update(await self.exchange_chained(items[start:start + 8]))
        await self.publish(values, write_setpoints=True)

    async def published(self, suffix: str, value) -> None:
        if suffix.endswith(":Units"):
            await self.show_units(int(suffix[2]), value)

    async def show_units(self, n: int, choice: str) -> None:
        reading = self.pv(f"IN{n}")
        units = SENSOR_UNITS[choice]
        if reading.units != units:
            await reading.write_metadata(units=units)
            reading.fields["EGU"]._data["value"] = units

    async def read_measurements(self) -> None:
        units = {n: self.state.get(f"IN{n}:Units", "K") for n in INPUT_LETTERS}
        values = await self.exchange_chained(reading_queries(units))
        for suffix, value in values.items():
            await self.pv(suffix).write(value)

    async def put_setting(self, suffix: str, instance, value):
        return await self.write_setting(
            suffix, instance, value, lambda checked_value: setting_command(
                suffix, checked_value, self.state),
            lambda query, reply: setting_queries()[query](query, reply))

    async def run_action(self, suffix: str, instance, value):
        value = checked(SIGNALS[suffix], value, instance.pvname)
        if suffix == "readAll":
            self._settings_now = True
        self._poll_now.set()
        return value


LakeShore336Bridge = build_group_class(
    contract.SIGNALS, LakeShore336BridgeBase, "LakeShore336Bridge")
