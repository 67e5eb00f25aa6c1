"""The sample environment (what is mounted) and the simulation-only diagnostics.

``ENV:`` PVs describe the physical set-up a real station would also have
(sample, insert, contacts, dc field, a room-temperature exposure action, how
long the sample has been warm).  ``SIM:`` PVs exist only in the simulator: the
clock, the noise switch, and the model's true state, which tests use as the
truth to compare measurements against.  A real station serves no ``SIM:`` PVs.
"""

from __future__ import annotations

import math

from caproto import ChannelType

from instruments.environment import (
    CONTACT_KINDS,
    EXPOSE_ACTIONS,
    EXPOSURE_RANGE_MINUTES,
    FIELD_RANGE_OE,
    INSERT_KINDS,
    NO_YES,
    SAMPLE_KINDS,
    WARM_THRESHOLD_K,
)
from instruments.simulation import OFF_ON
from ioc_sim.groups import InstrumentGroup, write_changed, write_pair
from ioc_sim.putchecks import enum_choice, finite_in_range, guarded, readback, setting


def _enum(name: str, value: str, doc: str, choices, writable: bool = True):
    make = setting if writable else readback
    return make(name, value, doc, dtype=ChannelType.ENUM, enum_strings=tuple(choices))


class SampleEnvironment(InstrumentGroup):
    """Sample, insert and contacts; the exposure action; warm-time bookkeeping."""

    sample = _enum("Sample", "mg_mgo", "Mount a fresh sample of this kind", SAMPLE_KINDS)
    sample_rbv = _enum("Sample_RBV", "mg_mgo", "Mounted sample", SAMPLE_KINDS, writable=False)
    insert = _enum("Insert", "susceptometer", "Measurement insert", INSERT_KINDS)
    insert_rbv = _enum("Insert_RBV", "susceptometer", "Insert readback", INSERT_KINDS,
                       writable=False)
    contacts = _enum("Contacts", "surface", "Four-probe contacts: metal core or oxidised surface",
                     CONTACT_KINDS)
    contacts_rbv = _enum("Contacts_RBV", "surface", "Contacts readback", CONTACT_KINDS,
                         writable=False)
    field_dc = setting("FieldDC", 0.0, "Applied dc field (Oe)", units="Oe", precision=2)
    field_dc_rbv = readback("FieldDC_RBV", 0.0, "Applied dc field readback", units="Oe",
                            precision=2)
    expose_minutes = setting("ExposeMinutes", 30.0, "Duration of a room-temperature exposure",
                             units="min", precision=2)
    expose_minutes_rbv = readback("ExposeMinutes_RBV", 30.0, "Exposure duration readback",
                                  units="min", precision=2)
    expose = _enum("Expose", "Idle", "Put 'Expose' (1) to take the sample to 295 K for "
                   "ExposeMinutes of simulated time", EXPOSE_ACTIONS)
    exposing = _enum("Exposing_RBV", "No", "Exposure under way", NO_YES, writable=False)
    expose_remaining = readback("ExposeRemaining_RBV", 0.0, "Exposure time left", units="min",
                                precision=2)
    warm_time = readback("WarmTime_RBV", 0.0, f"Time the sample has spent above "
                         f"{WARM_THRESHOLD_K:g} K", units="s", precision=1)
    max_safe_temperature = readback("MaxSafeTemp_RBV", 77.0, "Highest temperature the mounted "
                                    "sample tolerates", units="K", precision=1)
    coil_constant = readback("CoilConst_RBV", 0.2, "Susceptometer drive: Hac amplitude per V rms "
                             "of the lock-in sine out", units="Oe/V", precision=4)
    excitation_gain = readback("ExciteGain_RBV", 0.01, "Transport excitation: A rms per V rms of "
                               "the lock-in sine out", units="A/V", precision=5)
    load_resistance = readback("LoadRes_RBV", 1.5, "Leads and contacts seen by the dc source",
                               units="Ohm", precision=3)

    async def write_settings(self) -> None:
        simulation = self.simulation
        environment = simulation.environment
        await write_pair(self.sample, self.sample_rbv, simulation.sample.kind)
        await write_pair(self.insert, self.insert_rbv, environment.insert)
        await write_pair(self.contacts, self.contacts_rbv, environment.contacts)
        await write_pair(self.field_dc, self.field_dc_rbv, environment.field_dc_oe)
        await self.exposing.write("Yes" if simulation.exposure_remaining > 0 else "No")
        await self.max_safe_temperature.write(simulation.sample.max_safe_temperature)
        await self.coil_constant.write(environment.coil_oe_per_volt)
        await self.excitation_gain.write(environment.excitation_amps_per_volt)
        await self.load_resistance.write(simulation.source.load_resistance)

    @sample.putter
    @guarded
    async def sample(self, instance, value):
        kind = enum_choice(value, SAMPLE_KINDS, instance.pvname)
        self.simulation.mount(kind)
        await self.sample_rbv.write(kind)
        await self.max_safe_temperature.write(self.simulation.sample.max_safe_temperature)
        return kind

    @insert.putter
    @guarded
    async def insert(self, instance, value):
        self.simulation.environment.insert = enum_choice(value, INSERT_KINDS, instance.pvname)
        await self.insert_rbv.write(self.simulation.environment.insert)
        return self.simulation.environment.insert

    @contacts.putter
    @guarded
    async def contacts(self, instance, value):
        self.simulation.environment.contacts = enum_choice(value, CONTACT_KINDS, instance.pvname)
        await self.contacts_rbv.write(self.simulation.environment.contacts)
        return self.simulation.environment.contacts

    @field_dc.putter
    @guarded
    async def field_dc(self, instance, value):
        oersted = finite_in_range(value, *FIELD_RANGE_OE, instance.pvname, "Oe")
        self.simulation.environment.field_dc_oe = oersted
        await self.field_dc_rbv.write(oersted)
        return oersted

    @expose_minutes.putter
    @guarded
    async def expose_minutes(self, instance, value):
        minutes = finite_in_range(value, *EXPOSURE_RANGE_MINUTES, instance.pvname, "min")
        await self.expose_minutes_rbv.write(minutes)
        return minutes

    @expose.putter
    @guarded
    async def expose(self, instance, value):
        if enum_choice(value, EXPOSE_ACTIONS, instance.pvname) == "Expose":
            self.simulation.start_exposure(self.expose_minutes_rbv.value)
            await self.exposing.write("Yes")
        return "Idle"

    async def publish(self) -> None:
        simulation = self.simulation
        remaining = simulation.exposure_remaining
        await write_changed(self.expose_remaining, remaining / 60.0)
        if remaining == 0.0 and self.exposing.value == "Yes":
            await self.exposing.write("No")
        await write_changed(self.warm_time, simulation.sample.warm_seconds)


class SimulationDiagnostics(InstrumentGroup):
    """Simulation-only truth: never present on a real station."""

    noise = _enum("Noise", "On", "Simulated noise and drift", OFF_ON)
    noise_rbv = _enum("Noise_RBV", "On", "Noise readback", OFF_ON, writable=False)
    sample_temperature = readback("SampleTemp_RBV", 4.2, "True sample temperature", units="K",
                                  precision=4)
    superconducting_fraction = readback("ScFraction_RBV", 1.0, "Superconducting fraction f_sc "
                                        "of the interface", precision=5)
    degradation = readback("Degradation_RBV", 0.0, "Degradation state theta (integral dt/tau)",
                           precision=5)
    chi_real = readback("Chi1_RBV", 0.0, "Noise-free 4 pi chi'", precision=5)
    chi_imag = readback("Chi2_RBV", 0.0, "Noise-free 4 pi chi''", precision=5)
    dynamic_resistance = readback("Dudi_RBV", 0.0, "Noise-free dU/dI", units="Ohm",
                                  precision=9)
    tc_chi = readback("TcChi_RBV", math.nan, "True chi' onset (5 % of the drop) at the present "
                      "drive and field; NaN when there is no transition", units="K", precision=3)
    tc_dudi = readback("TcDudi_RBV", math.nan, "True dU/dI onset (10 % of the zero-bias step) "
                       "at the present bias; NaN when there is none", units="K", precision=3)

    async def write_settings(self) -> None:
        await write_pair(self.noise, self.noise_rbv, "On" if self.simulation.noise else "Off")

    @noise.putter
    @guarded
    async def noise(self, instance, value):
        state = enum_choice(value, OFF_ON, instance.pvname)
        self.simulation.noise = state == "On"
        await self.noise_rbv.write(state)
        return state

    async def publish(self) -> None:
        simulation = self.simulation
        chi = simulation.chi
        for pv, value in ((self.sample_temperature, simulation.cryostat.sample_temperature),
                          (self.superconducting_fraction,
                           simulation.sample.superconducting_fraction),
                          (self.degradation, simulation.sample.theta),
                          (self.chi_real, chi.real), (self.chi_imag, chi.imag),
                          (self.dynamic_resistance, simulation.dudi)):
            await write_changed(pv, value)

    async def publish_onsets(self, onsets: dict) -> None:
        """Write the true onsets computed by ``StationSimulation.true_onsets``."""
        await self.tc_chi.write(onsets["chi_onset"])
        await self.tc_dudi.write(onsets["dudi_onset"])
