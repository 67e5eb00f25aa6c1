"""LakeShore 336 temperature controller, with the EPICS lakeshore336 module's PV names.

Input 1 (A) is the stage sensor that loop 1 controls; input 2 (B) sits on the
sample and so lags the stage (physics note, section 6).  Loop 1's heater warms
the stage.  Names follow the EPICS support module so facility device classes
drive this IOC unchanged: ``INn``, ``INn:Units``, ``OUTn:SP``, ``HTRn:Range``,
``RampRn``, ``OnRampn`` and their ``_RBV`` readbacks.

Beyond the support module: ``INn:Kelvin`` is the input's reading in kelvin
whatever ``INn:Units`` says (``KRDG? <input>``), and ``INn:TLimit`` is the input
temperature limit (``TLIMIT <input>,<K>``, 0 = off): when an input exceeds its
limit the controller shuts all control outputs down (heater range Off).  The
model checks the limits inside its integration (``CryostatModel``), so they act
within a fraction of a simulated second at any speed-up.
"""

from __future__ import annotations

from caproto import ChannelType
from caproto.server import SubGroup

from instruments.lakeshore336 import (
    CONTROL_INPUTS,
    CONTROL_MODES,
    DERIVATIVE_RANGE,
    GAIN_RANGE,
    HEATER_RANGES,
    OFF_ON,
    OUTPUT_RANGE,
    RAMP_RATE_RANGE,
    SETPOINT_RANGE,
    TEMPERATURE_LIMIT_RANGE,
    TEMPERATURE_UNITS,
)
from ioc_sim.groups import InstrumentGroup, write_changed, write_pair
from ioc_sim.putchecks import (
    CheckedGroup,
    RefusedPutError,
    enum_choice,
    finite_in_range,
    guarded,
    readback,
    setting,
)

INPUT_NAMES = {1: "Stage", 2: "Sample"}
SENSOR_NOISE_K = 0.002


def sensor_reading(kelvin: float, units: str) -> float:
    """A temperature in the input's display units; 'Sensor' is a Cernox-like ohm value."""
    if units == "C":
        return kelvin - 273.15
    if units == "Sensor":
        return 60.0 * (300.0 / max(kelvin, 1.0)) ** 0.9
    return kelvin


class SensorInput(CheckedGroup):
    """One sensor input, ``IN{n}``."""

    def __init__(self, *args, input_number: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_number = input_number

    temperature = readback("IN{n}", 0.0, "Sensor reading in the input's units", precision=4)
    units = setting(
        "IN{n}:Units", "K", "Display units of the input",
        dtype=ChannelType.ENUM, enum_strings=TEMPERATURE_UNITS,
    )
    units_rbv = readback(
        "IN{n}:Units_RBV", "K", "Display units readback",
        dtype=ChannelType.ENUM, enum_strings=TEMPERATURE_UNITS,
    )
    sensor_name = readback("IN{n}:Name_RBV", "", "Sensor name", dtype=ChannelType.STRING)
    kelvin_reading = readback("IN{n}:Kelvin", 0.0, "Sensor reading in kelvin, whatever the "
                              "display units (KRDG?)", units="K", precision=4)
    temperature_limit = setting("IN{n}:TLimit", 0.0, "Input temperature limit (TLIMIT): above "
                                "it all control outputs shut down; 0 = off", units="K",
                                precision=3)
    temperature_limit_rbv = readback("IN{n}:TLimit_RBV", 0.0, "Input temperature limit "
                                     "readback (TLIMIT?)", units="K", precision=3)

    @units.putter
    @guarded
    async def units(self, instance, value):
        choice = enum_choice(value, TEMPERATURE_UNITS, instance.pvname)
        await self.units_rbv.write(choice)
        return choice

    @sensor_name.startup
    async def sensor_name(self, instance, async_lib):
        await instance.write(INPUT_NAMES.get(self.input_number, f"Input {self.input_number}"))

    @temperature_limit.putter
    @guarded
    async def temperature_limit(self, instance, value):
        kelvin = finite_in_range(value, *TEMPERATURE_LIMIT_RANGE, instance.pvname, "K")
        controller = self.parent
        controller.cryostat.input_limits[self.input_number - 1] = kelvin
        await self.temperature_limit_rbv.write(kelvin)
        controller.cryostat.enforce_input_limits()
        await controller.publish_heater()
        return kelvin

    def kelvin(self, cryostat) -> float:
        return cryostat.input_kelvin(self.input_number)


class LakeShore336(InstrumentGroup):
    """LakeShore 336 with loop 1 heating the sample stage."""

    input1 = SubGroup(SensorInput, prefix="", macros={"n": "1"}, input_number=1)
    input2 = SubGroup(SensorInput, prefix="", macros={"n": "2"}, input_number=2)

    setpoint = setting("OUT1:SP", 4.2, "Loop 1 setpoint (K)", precision=3, units="K")
    setpoint_rbv = readback("OUT1:SP_RBV", 4.2, "Loop 1 setpoint readback", precision=3, units="K")
    mode = setting("OUT1:Mode", "Closed Loop", "Loop 1 control mode",
                   dtype=ChannelType.ENUM, enum_strings=CONTROL_MODES)
    mode_rbv = readback("OUT1:Mode_RBV", "Closed Loop", "Loop 1 control mode readback",
                        dtype=ChannelType.ENUM, enum_strings=CONTROL_MODES)
    control_input = setting("OUT1:Cntrl", "A", "Loop 1 control input",
                            dtype=ChannelType.ENUM, enum_strings=CONTROL_INPUTS)
    control_input_rbv = readback("OUT1:Cntrl_RBV", "A", "Loop 1 control input readback",
                                 dtype=ChannelType.ENUM, enum_strings=CONTROL_INPUTS)
    manual_output = setting("OUT1:MOUT", 0.0, "Loop 1 manual (open loop) output (%)",
                            units="%", precision=2)
    manual_output_rbv = readback("OUT1:MOUT_RBV", 0.0, "Manual output readback",
                                 units="%", precision=2)
    heater_output = readback("HTR1", 0.0, "Heater 1 output (%)", units="%", precision=2)
    heater_range = setting("HTR1:Range", "Off", "Heater 1 range",
                           dtype=ChannelType.ENUM, enum_strings=HEATER_RANGES)
    heater_range_rbv = readback("HTR1:Range_RBV", "Off", "Heater 1 range readback",
                                dtype=ChannelType.ENUM, enum_strings=HEATER_RANGES)
    gain_p = setting("P1", 50.0, "Loop 1 proportional gain", precision=1)
    gain_p_rbv = readback("P1_RBV", 50.0, "P readback", precision=1)
    gain_i = setting("I1", 20.0, "Loop 1 integral gain", precision=1)
    gain_i_rbv = readback("I1_RBV", 20.0, "I readback", precision=1)
    gain_d = setting("D1", 0.0, "Loop 1 derivative gain", precision=1)
    gain_d_rbv = readback("D1_RBV", 0.0, "D readback", precision=1)
    ramp_rate = setting("RampR1", 1.0, "Loop 1 setpoint ramp rate (K/min)",
                        units="K/min", precision=3)
    ramp_rate_rbv = readback("RampR1_RBV", 1.0, "Ramp rate readback", units="K/min", precision=3)
    ramp_enabled = setting("OnRamp1", "Off", "Loop 1 setpoint ramping",
                           dtype=ChannelType.ENUM, enum_strings=OFF_ON)
    ramp_enabled_rbv = readback("OnRamp1_RBV", "Off", "Ramping readback",
                                dtype=ChannelType.ENUM, enum_strings=OFF_ON)

    @setpoint.putter
    @guarded
    async def setpoint(self, instance, value):
        kelvin = finite_in_range(value, *SETPOINT_RANGE, instance.pvname, "K")
        self.cryostat.change_setpoint(kelvin)
        await self.setpoint_rbv.write(kelvin)
        return kelvin

    @mode.putter
    @guarded
    async def mode(self, instance, value):
        self.cryostat.mode = enum_choice(value, CONTROL_MODES, instance.pvname)
        await self.mode_rbv.write(self.cryostat.mode)
        return self.cryostat.mode

    @control_input.putter
    @guarded
    async def control_input(self, instance, value):
        self.cryostat.control_input = enum_choice(value, CONTROL_INPUTS, instance.pvname)
        await self.control_input_rbv.write(self.cryostat.control_input)
        return self.cryostat.control_input

    @manual_output.putter
    @guarded
    async def manual_output(self, instance, value):
        self.cryostat.manual_output = finite_in_range(value, *OUTPUT_RANGE, instance.pvname, "%")
        await self.manual_output_rbv.write(self.cryostat.manual_output)
        return self.cryostat.manual_output

    @heater_range.putter
    @guarded
    async def heater_range(self, instance, value):
        choice = enum_choice(value, HEATER_RANGES, instance.pvname)
        over = self.cryostat.input_over_limit()
        if choice != "Off" and over is not None:
            sensor = (self.input1, self.input2)[over - 1]
            raise RefusedPutError(
                f"{instance.pvname} = {choice} refused: input {over} reads "
                f"{self.cryostat.input_kelvin(over):.3f} K, above its temperature limit "
                f"{sensor.temperature_limit_rbv.value:g} K ({sensor.temperature_limit.pvname}); "
                f"the control outputs stay off until it is below the limit")
        self.cryostat.heater_range = choice
        await self.heater_range_rbv.write(choice)
        return choice

    @gain_p.putter
    @guarded
    async def gain_p(self, instance, value):
        return await self._set_pid(0, finite_in_range(value, *GAIN_RANGE, instance.pvname))

    @gain_i.putter
    @guarded
    async def gain_i(self, instance, value):
        return await self._set_pid(1, finite_in_range(value, *GAIN_RANGE, instance.pvname))

    @gain_d.putter
    @guarded
    async def gain_d(self, instance, value):
        return await self._set_pid(2, finite_in_range(value, *DERIVATIVE_RANGE, instance.pvname))

    async def _set_pid(self, term: int, value: float) -> float:
        pid = list(self.cryostat.pid)
        pid[term] = value
        self.cryostat.pid = tuple(pid)
        await (self.gain_p_rbv, self.gain_i_rbv, self.gain_d_rbv)[term].write(value)
        return value

    @ramp_rate.putter
    @guarded
    async def ramp_rate(self, instance, value):
        self.cryostat.ramp_rate = finite_in_range(value, *RAMP_RATE_RANGE, instance.pvname, "K/min")
        await self.ramp_rate_rbv.write(self.cryostat.ramp_rate)
        return self.cryostat.ramp_rate

    @ramp_enabled.putter
    @guarded
    async def ramp_enabled(self, instance, value):
        choice = enum_choice(value, OFF_ON, instance.pvname)
        self.cryostat.ramp_enabled = choice == "On"
        await self.ramp_enabled_rbv.write(choice)
        return choice

    @property
    def cryostat(self):
        return self.simulation.cryostat

    async def write_settings(self) -> None:
        cryostat = self.cryostat
        pairs = (
            (self.setpoint, self.setpoint_rbv, cryostat.setpoint),
            (self.mode, self.mode_rbv, cryostat.mode),
            (self.control_input, self.control_input_rbv, cryostat.control_input),
            (self.manual_output, self.manual_output_rbv, cryostat.manual_output),
            (self.heater_range, self.heater_range_rbv, cryostat.heater_range),
            (self.gain_p, self.gain_p_rbv, cryostat.pid[0]),
            (self.gain_i, self.gain_i_rbv, cryostat.pid[1]),
            (self.gain_d, self.gain_d_rbv, cryostat.pid[2]),
            (self.ramp_rate, self.ramp_rate_rbv, cryostat.ramp_rate),
            (self.ramp_enabled, self.ramp_enabled_rbv, "On" if cryostat.ramp_enabled else "Off"),
        )
        for setpoint, setpoint_rbv, value in pairs:
            await write_pair(setpoint, setpoint_rbv, value)
        for sensor in (self.input1, self.input2):
            await write_pair(sensor.temperature_limit, sensor.temperature_limit_rbv,
                             cryostat.input_limits[sensor.input_number - 1])

    async def publish_heater(self) -> None:
        """Post the heater range the controller holds (a temperature limit may have shut it
        off) and the heater output."""
        cryostat = self.cryostat
        if self.heater_range_rbv.value != cryostat.heater_range:
            await write_pair(self.heater_range, self.heater_range_rbv, cryostat.heater_range)
        await write_changed(self.heater_output, cryostat.heater_output)

    async def publish(self) -> None:
        rng = self.simulation.rng if self.simulation.noise else None
        for sensor in (self.input1, self.input2):
            kelvin = sensor.kelvin(self.cryostat)
            if rng is not None:
                kelvin += SENSOR_NOISE_K * rng.standard_normal()
            await sensor.kelvin_reading.write(kelvin)
            await sensor.temperature.write(sensor_reading(kelvin, sensor.units_rbv.value))
        await self.publish_heater()
