"""The Keithley 2400 bridged: the simulated IOC's ``SRC:`` PVs, served from the source.

The source sources current and reports ``VOLT,CURR`` (set at every connection).
Its readings are polled with ``:READ?`` only while ``:OUTP?`` says the output
is on (with it off the source refuses a reading, and the measured current and
voltage are 0, as the simulated source serves them). The error queue
(``:SYST:ERR?``) is read and logged with every read of the settings.

Safety: when the bridge stops, and when it gets the source back after losing
it (a timeout, a garbled reply, a closed line), it ramps the current to 0 A at
``ramp_rate`` and switches the output off before it serves anything new.
"""

from __future__ import annotations

import asyncio
import logging
import math

from tcstation.bridge.connection import CommunicationError
from tcstation.bridge.group import BridgeGroup, build_group_class
from tcstation.instruments import sourcemeter as contract
from tcstation.instruments.signal import by_suffix
from tcstation.protocol import ProtocolError
from tcstation.protocol import sourcemeter as protocol

logger = logging.getLogger(__name__)

SIGNALS = by_suffix(contract.SIGNALS)
RAMP_STEP_PERIOD = 0.05  # s between the current steps of a ramp to 0 A
ERROR_QUEUE_READS = 10

SETTING_QUERIES = {
    protocol.CURRENT_QUERY: lambda c, r: {"Curr": protocol.parse_number(c, r)},
    protocol.OUTPUT_QUERY: lambda c, r: {"Output": "On" if protocol.parse_flag(c, r) else "Off"},
    protocol.VOLTAGE_LIMIT_QUERY: lambda c, r: {"VoltLimit": protocol.parse_number(c, r)},
}
COMMANDS = {
    "Curr": (protocol.current_command, protocol.CURRENT_QUERY),
    "Output": (lambda choice: protocol.output_command(choice == "On"), protocol.OUTPUT_QUERY),
    "VoltLimit": (protocol.voltage_limit_command, protocol.VOLTAGE_LIMIT_QUERY),
}


def _read(command, reply):
    volts, amps = protocol.parse_read(reply)
    return {"VoltMeas": volts, "CurrMeas": amps}


MEASUREMENT_QUERIES = [
    (protocol.READ, _read),
    (protocol.TRIPPED_QUERY, lambda c, r: {"Tripped": "Yes" if protocol.parse_flag(c, r)
                                           else "No"}),
]


def ramp_steps(start: float, rate: float, period: float = RAMP_STEP_PERIOD) -> list[float]:
    """The currents from ``start`` to 0 A at ``rate`` A/s, one per ``period``, ending at 0."""
    count = max(1, math.ceil(abs(start) / (rate * period)))
    return [start * (1.0 - k / count) for k in range(1, count + 1)]


class SourceMeterBridgeBase(BridgeGroup):
    instrument = protocol.INSTRUMENT

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ever_connected = False

    def check_idn(self, reply: str) -> None:
        protocol.check_idn(reply)

    async def setup(self) -> None:
        await self.connection.transaction([("write", protocol.SOURCE_CURRENT),
                                           ("write", protocol.ELEMENTS)])
        if self.ever_connected:
            logger.warning("%s back after a fault: ramping to 0 A and switching off",
                           self.config.name)
            await self.make_safe()
        self.ever_connected = True

    async def make_safe(self) -> None:
        """Ramp the current to 0 A at ``ramp_rate`` and switch the output off."""
        (reply,) = await self.connection.transaction([("query", protocol.CURRENT_QUERY)])
        start = protocol.parse_number(protocol.CURRENT_QUERY, reply)
        for amps in ramp_steps(start, self.config.ramp_rate):
            await self.connection.transaction([("write", protocol.current_command(amps))])
            await asyncio.sleep(RAMP_STEP_PERIOD)
        await self.connection.transaction([("write", protocol.output_command(False))])

    async def read_settings(self) -> None:
        values = await self.exchange_chained(list(SETTING_QUERIES.items()))
        await self.publish(values, write_setpoints=True)
        await self.report_errors()

    async def report_errors(self) -> None:
        """Log what the source's error queue holds (at most ``ERROR_QUEUE_READS`` entries)."""
        for _ in range(ERROR_QUEUE_READS):
            reply = await self.connection.query(protocol.ERROR_QUERY)
            try:
                code, message = protocol.parse_error(reply)
            except ProtocolError as error:
                await self.connection.run(self.connection.close)
                raise CommunicationError(str(error)) from error
            if code == protocol.NO_ERROR:
                return
            logger.warning("%s reports error %+d, %r", self.config.name, code, message)

    async def read_measurements(self) -> None:
        # the output state first: a :READ? with the output off (switched off at the front
        # panel since the last poll) gets no reply, only an error in the queue
        output = await self.exchange_chained([(protocol.OUTPUT_QUERY,
                                               SETTING_QUERIES[protocol.OUTPUT_QUERY])])
        if output["Output"] != self.state.get("Output"):
            await self.publish(output, write_setpoints=True)
        if self.state.get("Output") == "On":
            values = await self.exchange_chained(MEASUREMENT_QUERIES)
        else:
            values = {"VoltMeas": 0.0, "CurrMeas": 0.0, "Tripped": "No"}
        await self.publish(values, write_setpoints=False)

    async def put_setting(self, suffix: str, instance, value):
        command_of, readback = COMMANDS[suffix]
        got = await self.write_setting(suffix, instance, value,
                                       lambda checked_value: (command_of(checked_value), readback),
                                       SETTING_QUERIES[readback])
        self._poll_now.set()  # the measurement the put changed, at once
        return got

    async def shutdown(self) -> None:
        if not self.connected:
            return
        logger.warning("%s: bridge stopping: ramping to 0 A and switching off",
                       self.config.name)
        await self.make_safe()


SourceMeterBridge = build_group_class(contract.SIGNALS, SourceMeterBridgeBase,
                                      "SourceMeterBridge")
