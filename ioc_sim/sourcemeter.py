"""SourceMeter-class dc current source (+-1 A) with voltage compliance.

The PVs and their SCPI commands are :mod:`tcstation.instruments.sourcemeter`'s.

A put posts the measurement it changes at once, before the put completes: a
client that waits for its put sees the source's response to the new setting.
"""

from __future__ import annotations

from tcstation.instruments import sourcemeter as contract
from tcstation.instruments.signal import by_suffix
from tcstation.instruments.sourcemeter import CURRENT_RANGE, OFF_ON, VOLTAGE_LIMIT_RANGE
from tcstation.ioc_sim.groups import InstrumentGroup, write_pair
from tcstation.ioc_sim.putchecks import (
    enum_choice,
    finite_in_range,
    guarded,
    served,
    served_setting,
)

SIGNAL = by_suffix(contract.SIGNALS)


class SourceMeter(InstrumentGroup):
    """The dc bias source of the transport insert."""

    current, current_rbv = served_setting(SIGNAL["Curr"], 0.0)
    output, output_rbv = served_setting(SIGNAL["Output"], "Off")
    voltage_limit, voltage_limit_rbv = served_setting(SIGNAL["VoltLimit"], 2.0)
    measured_current = served(SIGNAL["CurrMeas"], 0.0)
    measured_voltage = served(SIGNAL["VoltMeas"], 0.0)
    tripped = served(SIGNAL["Tripped"], "No")

    @property
    def model(self):
        return self.simulation.source

    async def write_settings(self) -> None:
        await write_pair(self.current, self.current_rbv, self.model.setpoint)
        await write_pair(self.output, self.output_rbv, "On" if self.model.output_on else "Off")
        await write_pair(self.voltage_limit, self.voltage_limit_rbv, self.model.voltage_limit)

    @current.putter
    @guarded
    async def current(self, instance, value):
        amps = finite_in_range(value, *CURRENT_RANGE, instance.pvname, "A")
        self.model.setpoint = amps
        await self.current_rbv.write(amps)
        await self.publish()
        return amps

    @output.putter
    @guarded
    async def output(self, instance, value):
        choice = enum_choice(value, OFF_ON, instance.pvname)
        self.model.output_on = choice == "On"
        await self.output_rbv.write(choice)
        await self.publish()
        return choice

    @voltage_limit.putter
    @guarded
    async def voltage_limit(self, instance, value):
        self.model.voltage_limit = finite_in_range(value, *VOLTAGE_LIMIT_RANGE,
                                                   instance.pvname, "V")
        await self.voltage_limit_rbv.write(self.model.voltage_limit)
        await self.publish()
        return self.model.voltage_limit

    async def publish(self) -> None:
        """Post a measurement (every tick, and from every put that changes it)."""
        amps, volts, tripped = self.model.measure()
        await self.measured_current.write(amps)
        await self.measured_voltage.write(volts)
        await self.tripped.write("Yes" if tripped else "No")
