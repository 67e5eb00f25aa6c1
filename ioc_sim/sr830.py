"""SR830 dual-phase lock-in amplifier, as :mod:`tcstation.instruments.sr830` declares it.

PV suffixes are the instrument's own remote-command mnemonics with ``_RBV``
for readbacks; ``docs/pv-table.md`` lists them with their commands.
"""

from __future__ import annotations

import cmath
import math

from tcstation.instruments import sr830 as contract
from tcstation.instruments.signal import by_suffix
from tcstation.instruments.sr830 import (
    AMPLITUDE_RANGE,
    FREQUENCY_RANGE,
    HARMONIC_RANGE,
    PHASE_RANGE,
    SENSITIVITIES,
    SLOPE_NAMES,
    TIME_CONSTANTS,
)
from tcstation.ioc_sim.groups import InstrumentGroup, write_pair
from tcstation.ioc_sim.instruments import LockInModel
from tcstation.ioc_sim.putchecks import (
    RefusedPutError,
    enum_choice,
    finite_in_range,
    guarded,
    index_in_range,
    served,
    served_setting,
    whole_in_range,
)

SIGNAL = by_suffix(contract.SIGNALS)


class SR830(InstrumentGroup):
    """One SR830; ``channel`` picks the susceptometer or the transport lock-in."""

    def __init__(self, *args, channel: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel

    frequency, frequency_rbv = served_setting(SIGNAL["FREQ"], 1000.0)
    amplitude, amplitude_rbv = served_setting(SIGNAL["SLVL"], 1.0)
    phase, phase_rbv = served_setting(SIGNAL["PHAS"], 0.0)
    harmonic, harmonic_rbv = served_setting(SIGNAL["HARM"], 1)
    sensitivity, sensitivity_rbv = served_setting(SIGNAL["SENS"], 20)
    sensitivity_volts = served(SIGNAL["SENS:Value_RBV"], 0.01)
    time_constant, time_constant_rbv = served_setting(SIGNAL["OFLT"], 9)
    time_constant_seconds = served(SIGNAL["OFLT:Value_RBV"], 0.3)
    slope, slope_rbv = served_setting(SIGNAL["OFSL"], SLOPE_NAMES[1])
    x = served(SIGNAL["X"], 0.0)
    y = served(SIGNAL["Y"], 0.0)
    r = served(SIGNAL["R"], 0.0)
    theta = served(SIGNAL["THETA"], 0.0)
    overload = served(SIGNAL["OVLD"], "No")
    auto_gain = served(SIGNAL["AGAN"], 0)

    @property
    def model(self) -> LockInModel:
        return getattr(self.simulation, f"{self.channel}_lockin")

    async def write_settings(self) -> None:
        """Write every setting and readback from the model (startup, auto-gain)."""
        model = self.model
        pairs = (
            (self.frequency, self.frequency_rbv, model.frequency),
            (self.amplitude, self.amplitude_rbv, model.amplitude),
            (self.phase, self.phase_rbv, model.phase_deg),
            (self.harmonic, self.harmonic_rbv, model.harmonic),
            (self.sensitivity, self.sensitivity_rbv, model.sensitivity_index),
            (self.time_constant, self.time_constant_rbv, model.time_constant_index),
            (self.slope, self.slope_rbv, SLOPE_NAMES[model.slope_index]),
        )
        for setpoint, rbv, value in pairs:
            await write_pair(setpoint, rbv, value)
        await self.sensitivity_volts.write(model.sensitivity)
        await self.time_constant_seconds.write(model.time_constant)

    @frequency.putter
    @guarded
    async def frequency(self, instance, value):
        hertz = finite_in_range(value, *FREQUENCY_RANGE, instance.pvname, "Hz")
        if hertz * self.model.harmonic > FREQUENCY_RANGE[1]:
            raise RefusedPutError(
                f"{instance.pvname} = {hertz:g} Hz at harmonic {self.model.harmonic} "
                f"exceeds {FREQUENCY_RANGE[1]:g} Hz"
            )
        self.model.frequency = hertz
        await self.frequency_rbv.write(hertz)
        return hertz

    @amplitude.putter
    @guarded
    async def amplitude(self, instance, value):
        self.model.amplitude = finite_in_range(value, *AMPLITUDE_RANGE, instance.pvname, "V")
        await self.amplitude_rbv.write(self.model.amplitude)
        return self.model.amplitude

    @phase.putter
    @guarded
    async def phase(self, instance, value):
        self.model.phase_deg = finite_in_range(value, *PHASE_RANGE, instance.pvname, "deg")
        await self.phase_rbv.write(self.model.phase_deg)
        return self.model.phase_deg

    @harmonic.putter
    @guarded
    async def harmonic(self, instance, value):
        harmonic = whole_in_range(value, *HARMONIC_RANGE, instance.pvname)
        self.model.harmonic = harmonic
        await self.harmonic_rbv.write(harmonic)
        return harmonic

    @sensitivity.putter
    @guarded
    async def sensitivity(self, instance, value):
        self.model.sensitivity_index = index_in_range(value, SENSITIVITIES, instance.pvname)
        await self.sensitivity_rbv.write(self.model.sensitivity_index)
        await self.sensitivity_volts.write(self.model.sensitivity)
        return self.model.sensitivity_index

    @time_constant.putter
    @guarded
    async def time_constant(self, instance, value):
        self.model.time_constant_index = index_in_range(
            value, TIME_CONSTANTS, instance.pvname
        )
        await self.time_constant_rbv.write(self.model.time_constant_index)
        await self.time_constant_seconds.write(self.model.time_constant)
        return self.model.time_constant_index

    @slope.putter
    @guarded
    async def slope(self, instance, value):
        self.model.slope_index = SLOPE_NAMES.index(
            enum_choice(value, SLOPE_NAMES, instance.pvname)
        )
        await self.slope_rbv.write(SLOPE_NAMES[self.model.slope_index])
        return SLOPE_NAMES[self.model.slope_index]

    @auto_gain.putter
    @guarded
    async def auto_gain(self, instance, value):
        if whole_in_range(value, 0, 1, instance.pvname) == 1:
            self.model.auto_gain()
            await self.sensitivity.write(self.model.sensitivity_index, verify_value=False)
            await self.sensitivity_rbv.write(self.model.sensitivity_index)
            await self.sensitivity_volts.write(self.model.sensitivity)
        return 0

    async def publish(self) -> None:
        value, overloaded = self.model.output()
        await self.x.write(value.real)
        await self.y.write(value.imag)
        await self.r.write(abs(value))
        await self.theta.write(math.degrees(cmath.phase(value)) if value else 0.0)
        await self.overload.write("Yes" if overloaded else "No")

