"""An SR830 bridged: the simulated IOC's ``LIA1:`` (or ``LIA2:``) PVs, served from the
lock-in.

At every connection the bridge sends ``OUTX 1`` for a GPIB resource, else
``OUTX 0`` (RS-232, also behind a serial-to-Ethernet adapter), so the lock-in
answers on the interface it is asked on. The outputs are polled with one
``SNAP? 1,2,3,4;LIAS?``: X, Y, R, theta read at one instant, and the overload
bits latched since the last poll (``OVLD``). A put is the setting's command
and its query in one exchange; a value the lock-in refuses (it ignores the
command) fails the put with what it reads back.
"""

from __future__ import annotations

import logging

from tcstation.bridge.connection import CommunicationError
from tcstation.bridge.group import BridgeGroup, build_group_class
from tcstation.instruments import sr830 as contract
from tcstation.instruments.signal import by_suffix
from tcstation.instruments.sr830 import SENSITIVITIES, SLOPE_NAMES, TIME_CONSTANTS
from tcstation.ioc_sim.putchecks import RefusedPutError, checked
from tcstation.protocol import ProtocolError
from tcstation.protocol import sr830 as protocol

logger = logging.getLogger(__name__)

SIGNALS = by_suffix(contract.SIGNALS)
MNEMONICS = {"FREQ": protocol.frequency_command, "SLVL": protocol.amplitude_command,
             "PHAS": protocol.phase_command, "HARM": protocol.harmonic_command,
             "SENS": protocol.sensitivity_command, "OFLT": protocol.time_constant_command,
             "OFSL": protocol.slope_command}


def setting_values(mnemonic: str, command: str, reply: str) -> dict:
    """The PVs a setting's reply gives: itself, and the table value of an index."""
    value = protocol.parse_setting(mnemonic, reply)
    if mnemonic == "OFSL":
        return {"OFSL": SLOPE_NAMES[value]}
    if mnemonic == "SENS":
        return {"SENS": value, "SENS:Value_RBV": SENSITIVITIES[value]}
    if mnemonic == "OFLT":
        return {"OFLT": value, "OFLT:Value_RBV": TIME_CONSTANTS[value]}
    return {mnemonic: value}


SETTING_QUERIES = [(protocol.query(mnemonic),
                    lambda c, r, m=mnemonic: setting_values(m, c, r)) for mnemonic in MNEMONICS]


def _snap(command, reply):
    x, y, r, theta = protocol.parse_snap(command, reply)
    return {"X": x, "Y": y, "R": r, "THETA": theta}


MEASUREMENT_QUERIES = [
    (protocol.snap_query(), _snap),
    (protocol.LOCKIN_STATUS, lambda c, r: {
        "OVLD": "Yes" if protocol.parse_status(c, r) & protocol.OVERLOAD_BITS else "No"}),
]


class SR830BridgeBase(BridgeGroup):
    instrument = protocol.INSTRUMENT

    def check_idn(self, reply: str) -> None:
        protocol.check_idn(reply)

    async def setup(self) -> None:
        gpib = self.config.resource.upper().startswith("GPIB")
        await self.connection.transaction([("write", protocol.interface_command(gpib))])

    async def read_settings(self) -> None:
        await self.publish(await self.exchange_chained(SETTING_QUERIES), write_setpoints=True)

    async def read_measurements(self) -> None:
        await self.publish(await self.exchange_chained(MEASUREMENT_QUERIES),
                           write_setpoints=False)

    async def put_setting(self, suffix: str, instance, value):
        def exchange(checked_value):
            index = SLOPE_NAMES.index(checked_value) if suffix == "OFSL" else checked_value
            return MNEMONICS[suffix](index), protocol.query(suffix)

        return await self.write_setting(
            suffix, instance, value, exchange,
            lambda query, reply: setting_values(suffix, query, reply))

    async def run_action(self, suffix: str, instance, value):
        """``AGAN``: put 1 to let the lock-in choose its sensitivity; reads back ``SENS``."""
        value = checked(SIGNALS[suffix], value, instance.pvname)
        if value != 1:
            return 0
        if not self.connected:
            raise RefusedPutError(f"{instance.pvname}: the {self.instrument} is not connected")
        readback = protocol.query("SENS")
        try:
            _, reply = await self.connection.transaction([("write", protocol.AUTO_GAIN),
                                                          ("query", readback)])
            values = setting_values("SENS", readback, reply)
        except (CommunicationError, ProtocolError) as error:
            await self.flag_disconnected(error)
            raise RefusedPutError(f"{instance.pvname}: {error}") from error
        await self.publish(values, write_setpoints=True)
        return 0


SR830Bridge = build_group_class(contract.SIGNALS, SR830BridgeBase, "SR830Bridge")
