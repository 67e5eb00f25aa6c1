"""SourceMeter-class dc current source (+-1 A) with voltage compliance.

==================== ================================ =========================
PV                   SCPI command                     meaning
==================== ================================ =========================
Curr, Curr_RBV       :SOUR:CURR <A>                   bias current setpoint (A)
Output, Output_RBV   :OUTP ON|OFF                     output enable
VoltLimit(_RBV)      :SENS:VOLT:PROT <V>              voltage compliance (V)
CurrMeas             :READ? (current)                 measured current (A)
VoltMeas             :READ? (voltage)                 measured voltage (V)
Tripped              :SENS:VOLT:PROT:TRIP?            in compliance (No/Yes)
==================== ================================ =========================

A put posts the measurement it changes at once, before the put completes: a
client that waits for its put sees the source's response to the new setting.
"""

from __future__ import annotations

from caproto import ChannelType

from instruments.sourcemeter import CURRENT_RANGE, NO_YES, OFF_ON, VOLTAGE_LIMIT_RANGE
from ioc_sim.groups import InstrumentGroup, write_pair
from ioc_sim.putchecks import enum_choice, finite_in_range, guarded, readback, setting


class SourceMeter(InstrumentGroup):
    """The dc bias source of the transport insert."""

    current = setting("Curr", 0.0, "Bias current setpoint (A)", units="A", precision=6)
    current_rbv = readback("Curr_RBV", 0.0, "Bias current setpoint readback", units="A",
                           precision=6)
    output = setting("Output", "Off", "Output enable", dtype=ChannelType.ENUM,
                     enum_strings=OFF_ON)
    output_rbv = readback("Output_RBV", "Off", "Output enable readback",
                          dtype=ChannelType.ENUM, enum_strings=OFF_ON)
    voltage_limit = setting("VoltLimit", 2.0, "Voltage compliance (V)", units="V", precision=3)
    voltage_limit_rbv = readback("VoltLimit_RBV", 2.0, "Voltage compliance readback",
                                 units="V", precision=3)
    measured_current = readback("CurrMeas", 0.0, "Measured current (A)", units="A", precision=6)
    measured_voltage = readback("VoltMeas", 0.0, "Measured voltage (V)", units="V", precision=6)
    tripped = readback("Tripped", "No", "Output limited by the voltage compliance",
                       dtype=ChannelType.ENUM, enum_strings=NO_YES)

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
