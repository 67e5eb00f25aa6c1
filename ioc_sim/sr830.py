"""SR830 dual-phase lock-in amplifier.

PV suffixes are the instrument's own remote-command mnemonics (SR830 manual,
chapter 5), with ``_RBV`` for readbacks:

============ ================= ==========================================
PV           remote command    meaning
============ ================= ==========================================
FREQ         FREQ              reference frequency (Hz)
SLVL         SLVL              sine-out amplitude (V rms)
PHAS         PHAS              reference phase (deg)
HARM         HARM              detection harmonic
SENS         SENS              sensitivity index 0 (2 nV) .. 26 (1 V)
SENS:Value   (derived)         sensitivity in volts (read only)
OFLT         OFLT              time-constant index 0 (10 us) .. 19 (30 ks)
OFLT:Value   (derived)         time constant in seconds (read only)
OFSL         OFSL              filter slope 6/12/18/24 dB/oct (enum 0..3)
X, Y, R      OUTP? 1, 2, 3     outputs (V rms)
THETA        OUTP? 4           phase of the signal (deg)
OVLD         LIAS? bits 0-2    input or output overload
AGAN         AGAN              auto-gain (put 1)
============ ================= ==========================================

SENS and OFLT are integer indices rather than enums because Channel Access
enums hold at most 16 states.
"""

from __future__ import annotations

import cmath
import math

from caproto import ChannelType

from instruments.sr830 import (
    AMPLITUDE_RANGE,
    FREQUENCY_RANGE,
    HARMONIC_RANGE,
    NO_YES,
    PHASE_RANGE,
    SENSITIVITIES,
    SLOPE_NAMES,
    TIME_CONSTANTS,
)
from ioc_sim.groups import InstrumentGroup, write_pair
from ioc_sim.instruments import LockInModel
from ioc_sim.putchecks import (
    RefusedPutError,
    enum_choice,
    finite_in_range,
    guarded,
    index_in_range,
    readback,
    setting,
    whole_in_range,
)


class SR830(InstrumentGroup):
    """One SR830; ``channel`` picks the susceptometer or the transport lock-in."""

    def __init__(self, *args, channel: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel

    frequency = setting("FREQ", 1000.0, "Reference frequency (Hz)", units="Hz", precision=3)
    frequency_rbv = readback("FREQ_RBV", 1000.0, "Reference frequency readback",
                             units="Hz", precision=3)
    amplitude = setting("SLVL", 1.0, "Sine-out amplitude (V rms)", units="V", precision=3)
    amplitude_rbv = readback("SLVL_RBV", 1.0, "Sine-out amplitude readback", units="V",
                             precision=3)
    phase = setting("PHAS", 0.0, "Reference phase (deg)", units="deg", precision=2)
    phase_rbv = readback("PHAS_RBV", 0.0, "Reference phase readback", units="deg", precision=2)
    harmonic = setting("HARM", 1, "Detection harmonic")
    harmonic_rbv = readback("HARM_RBV", 1, "Detection harmonic readback")
    sensitivity = setting("SENS", 20, "Sensitivity index: 0 = 2 nV ... 26 = 1 V full scale")
    sensitivity_rbv = readback("SENS_RBV", 20, "Sensitivity index readback")
    sensitivity_volts = readback("SENS:Value_RBV", 0.01, "Sensitivity (V full scale)", units="V")
    time_constant = setting("OFLT", 9, "Time-constant index: 0 = 10 us ... 19 = 30 ks")
    time_constant_rbv = readback("OFLT_RBV", 9, "Time-constant index readback")
    time_constant_seconds = readback("OFLT:Value_RBV", 0.3, "Time constant (s)", units="s")
    slope = setting("OFSL", SLOPE_NAMES[1], "Low-pass filter slope",
                    dtype=ChannelType.ENUM, enum_strings=SLOPE_NAMES)
    slope_rbv = readback("OFSL_RBV", SLOPE_NAMES[1], "Filter slope readback",
                         dtype=ChannelType.ENUM, enum_strings=SLOPE_NAMES)
    x = readback("X", 0.0, "In-phase output (V rms)", units="V", precision=9)
    y = readback("Y", 0.0, "Quadrature output (V rms)", units="V", precision=9)
    r = readback("R", 0.0, "Magnitude (V rms)", units="V", precision=9)
    theta = readback("THETA", 0.0, "Phase (deg)", units="deg", precision=3)
    overload = readback("OVLD", "No", "Overload: a quadrature beyond full scale",
                        dtype=ChannelType.ENUM, enum_strings=NO_YES)
    auto_gain = setting("AGAN", 0, "Auto-gain: put 1 to choose the sensitivity")

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

