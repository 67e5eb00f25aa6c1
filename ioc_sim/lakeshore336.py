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

from caproto.server import SubGroup

from tcstation.instruments import lakeshore336 as contract
from tcstation.instruments.lakeshore336 import (
    CONTROL_INPUTS,
    CONTROL_MODES,
    DERIVATIVE_RANGE,
    GAIN_RANGE,
    HEATER_RANGES,
    INPUT_LETTERS,
    OFF_ON,
    OUTPUT_RANGE,
    RAMP_RATE_RANGE,
    SETPOINT_RANGE,
    TEMPERATURE_LIMIT_RANGE,
    TEMPERATURE_UNITS,
)
from tcstation.instruments.signal import by_suffix
from tcstation.ioc_sim.groups import InstrumentGroup, write_changed, write_pair
from tcstation.ioc_sim.putchecks import (
    CheckedGroup,
    RefusedPutError,
    checked,
    enum_choice,
    finite_in_range,
    guarded,
    served,
    served_action,
    served_setting,
)

INPUT_NAMES = {1: "Stage", 2: "Sample", 3: "Input C", 4: "Input D"}
SENSOR_NOISE_K = 0.002
INPUT = by_suffix(contract.INPUT)
LOOP = by_suffix(contract.LOOP)
LOOP1 = by_suffix(contract.loop(1))
RECORD = by_suffix(contract.RECORDS)


def sensor_reading(kelvin: float, units: str) -> float:
    """A temperature in the input's display units; 'Sensor' is a Cernox-like ohm value."""
    if units == "C":
        return kelvin - 273.15
    if units == "Sensor":
        return 60.0 * (300.0 / max(kelvin, 1.0)) ** 0.9
    return kelvin


SENSOR_UNITS = {"K": "K", "C": "C", "Sensor": "ohm"}
"""Engineering units of an input's reading in each display unit."""


class SensorInput(CheckedGroup):
    """One sensor input, ``IN{n}``."""

    def __init__(self, *args, input_number: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_number = input_number

    temperature = served(INPUT["IN{n}"], 0.0)
    units, units_rbv = served_setting(INPUT["IN{n}:Units"], "K")
    sensor_name = served(INPUT["IN{n}:Name_RBV"], "")
    kelvin_reading = served(INPUT["IN{n}:Kelvin"], 0.0)
    temperature_limit, temperature_limit_rbv = served_setting(INPUT["IN{n}:TLimit"], 0.0)

    @units.putter
    @guarded
    async def units(self, instance, value):
        choice = enum_choice(value, TEMPERATURE_UNITS, instance.pvname)
        await self.units_rbv.write(choice)
        await self.show_units(choice)
        return choice

    async def show_units(self, choice: str) -> None:
        """Serve the reading's engineering units (metadata and ``.EGU``) for ``choice``."""
        units = SENSOR_UNITS[choice]
        await self.temperature.write_metadata(units=units)
        self.temperature.fields["EGU"]._data["value"] = units

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


def _echoed(signal, value, readback_name: str):
    """A setting and its readback whose putter takes what the contract allows, and no more."""

    @guarded
    async def putter(group, instance, value):
        value = checked(signal, value, instance.pvname)
        await getattr(group, readback_name).write(value)
        return value

    pv, rbv = served_setting(signal, value)
    return pv.putter(putter), rbv


class IdleLoop(CheckedGroup):
    """A heater loop that takes every setting the controller would and heats nothing.

    Its output reads 0 %; an input above its temperature limit turns its heater
    range Off, as it does loop 1's.
    """

    setpoint, setpoint_rbv = _echoed(LOOP["OUT{n}:SP"], 0.0, "setpoint_rbv")
    mode, mode_rbv = _echoed(LOOP["OUT{n}:Mode"], "Off", "mode_rbv")
    control_input, control_input_rbv = _echoed(LOOP["OUT{n}:Cntrl"], "None",
                                               "control_input_rbv")
    manual_output, manual_output_rbv = _echoed(LOOP["OUT{n}:MOUT"], 0.0, "manual_output_rbv")
    heater_output = served(LOOP["HTR{n}"], 0.0)
    heater_range, heater_range_rbv = served_setting(LOOP["HTR{n}:Range"], "Off")
    gain_p, gain_p_rbv = _echoed(LOOP["P{n}"], 50.0, "gain_p_rbv")
    gain_i, gain_i_rbv = _echoed(LOOP["I{n}"], 20.0, "gain_i_rbv")
    gain_d, gain_d_rbv = _echoed(LOOP["D{n}"], 0.0, "gain_d_rbv")
    ramp_rate, ramp_rate_rbv = _echoed(LOOP["RampR{n}"], 1.0, "ramp_rate_rbv")
    ramp_enabled, ramp_enabled_rbv = _echoed(LOOP["OnRamp{n}"], "Off", "ramp_enabled_rbv")

    @heater_range.putter
    @guarded
    async def heater_range(self, instance, value):
        choice = enum_choice(value, HEATER_RANGES, instance.pvname)
        if choice != "Off":
            self.parent.refuse_over_limit(instance.pvname, choice)
        await self.heater_range_rbv.write(choice)
        return choice

    async def shut_down_if_over_limit(self) -> None:
        if (self.heater_range_rbv.value != "Off"
                and self.parent.cryostat.input_over_limit() is not None):
            await write_pair(self.heater_range, self.heater_range_rbv, "Off")


def _sensor_input(n: int) -> SubGroup:
    return SubGroup(SensorInput, prefix="", macros={"n": str(n), "letter": INPUT_LETTERS[n]},
                    input_number=n)


class LakeShore336(InstrumentGroup):
    """LakeShore 336 with loop 1 heating the sample stage; loop 2 and inputs C, D idle."""

    input1 = _sensor_input(1)
    input2 = _sensor_input(2)
    input3 = _sensor_input(3)
    input4 = _sensor_input(4)
    loop2 = SubGroup(IdleLoop, prefix="", macros={"n": "2"})

    setpoint, setpoint_rbv = served_setting(LOOP1["OUT1:SP"], 4.2)
    mode, mode_rbv = served_setting(LOOP1["OUT1:Mode"], "Closed Loop")
    control_input, control_input_rbv = served_setting(LOOP1["OUT1:Cntrl"], "A")
    manual_output, manual_output_rbv = served_setting(LOOP1["OUT1:MOUT"], 0.0)
    heater_output = served(LOOP1["HTR1"], 0.0)
    heater_range, heater_range_rbv = served_setting(LOOP1["HTR1:Range"], "Off")
    gain_p, gain_p_rbv = served_setting(LOOP1["P1"], 50.0)
    gain_i, gain_i_rbv = served_setting(LOOP1["I1"], 20.0)
    gain_d, gain_d_rbv = served_setting(LOOP1["D1"], 0.0)
    ramp_rate, ramp_rate_rbv = served_setting(LOOP1["RampR1"], 1.0)
    ramp_enabled, ramp_enabled_rbv = served_setting(LOOP1["OnRamp1"], "Off")
    read = served_action(RECORD["read"], 0)
    read_all = served_action(RECORD["readAll"], 0)
    serial = served(RECORD["serial"], "")

    @property
    def inputs(self) -> tuple[SensorInput, ...]:
        return (self.input1, self.input2, self.input3, self.input4)

    def refuse_over_limit(self, pvname: str, choice: str) -> None:
        """Refuse a heater range other than Off while an input is above its limit."""
        over = self.cryostat.input_over_limit()
        if over is None:
            return
        sensor = self.inputs[over - 1]
        raise RefusedPutError(
            f"{pvname} = {choice} refused: input {over} reads "
            f"{self.cryostat.input_kelvin(over):.3f} K, above its temperature limit "
            f"{sensor.temperature_limit_rbv.value:g} K ({sensor.temperature_limit.pvname}); "
            f"the control outputs stay off until it is below the limit")

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
        if choice != "Off":
            self.refuse_over_limit(instance.pvname, choice)
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
        for sensor in self.inputs:
            await write_pair(sensor.temperature_limit, sensor.temperature_limit_rbv,
                             cryostat.input_limits[sensor.input_number - 1])

    async def publish_heater(self) -> None:
        """Post the heater range the controller holds (a temperature limit may have shut it
        off) and the heater output."""
        cryostat = self.cryostat
        if self.heater_range_rbv.value != cryostat.heater_range:
            await write_pair(self.heater_range, self.heater_range_rbv, cryostat.heater_range)
        await write_changed(self.heater_output, cryostat.heater_output)
        await self.loop2.shut_down_if_over_limit()

    async def publish(self) -> None:
        rng = self.simulation.rng if self.simulation.noise else None
        for sensor in (self.input1, self.input2):
            kelvin = sensor.kelvin(self.cryostat)
            if rng is not None:
                kelvin += SENSOR_NOISE_K * rng.standard_normal()
            await sensor.kelvin_reading.write(kelvin)
            await sensor.temperature.write(sensor_reading(kelvin, sensor.units_rbv.value))
        for sensor in (self.input3, self.input4):  # idle: a steady reading, no noise
            kelvin = sensor.kelvin(self.cryostat)
            await write_changed(sensor.kelvin_reading, kelvin)
            await write_changed(sensor.temperature,
                                sensor_reading(kelvin, sensor.units_rbv.value))
        await self.publish_heater()
