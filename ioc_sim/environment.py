"""The sample environment (what is mounted) and the simulation-only diagnostics.

``ENV:`` PVs describe the physical set-up a real station would also have
(sample, insert, contacts, dc field, a room-temperature exposure action, how
long the sample has been warm).  ``SIM:`` PVs exist only in the simulator: the
clock, the noise switch, and the model's true state, which tests use as the
truth to compare measurements against.  A real station serves no ``SIM:`` PVs.
"""

from __future__ import annotations

import math

from tcstation.instruments import environment as environment_contract
from tcstation.instruments import simulation as simulation_contract
from tcstation.instruments.environment import (
    CONTACT_KINDS,
    EXPOSE_ACTIONS,
    EXPOSURE_RANGE_MINUTES,
    FIELD_RANGE_OE,
    INSERT_KINDS,
    SAMPLE_KINDS,
)
from tcstation.instruments.signal import by_suffix
from tcstation.instruments.simulation import OFF_ON
from tcstation.ioc_sim.groups import InstrumentGroup, write_changed, write_pair
from tcstation.ioc_sim.putchecks import (
    enum_choice,
    finite_in_range,
    guarded,
    served,
    served_setting,
)

ENV = by_suffix(environment_contract.SIGNALS)
SIM = by_suffix(simulation_contract.SIGNALS)


class SampleEnvironment(InstrumentGroup):
    """Sample, insert and contacts; the exposure action; warm-time bookkeeping."""

    sample, sample_rbv = served_setting(ENV["Sample"], "mg_mgo")
    insert, insert_rbv = served_setting(ENV["Insert"], "susceptometer")
    contacts, contacts_rbv = served_setting(ENV["Contacts"], "surface")
    field_dc, field_dc_rbv = served_setting(ENV["FieldDC"], 0.0)
    expose_minutes, expose_minutes_rbv = served_setting(ENV["ExposeMinutes"], 30.0)
    expose = served(ENV["Expose"], "Idle")
    exposing = served(ENV["Exposing_RBV"], "No")
    expose_remaining = served(ENV["ExposeRemaining_RBV"], 0.0)
    warm_time = served(ENV["WarmTime_RBV"], 0.0)
    max_safe_temperature = served(ENV["MaxSafeTemp_RBV"], 77.0)
    coil_constant = served(ENV["CoilConst_RBV"], 0.2)
    excitation_gain = served(ENV["ExciteGain_RBV"], 0.01)
    load_resistance = served(ENV["LoadRes_RBV"], 1.5)

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

    noise, noise_rbv = served_setting(SIM["Noise"], "On")
    sample_temperature = served(SIM["SampleTemp_RBV"], 4.2)
    superconducting_fraction = served(SIM["ScFraction_RBV"], 1.0)
    degradation = served(SIM["Degradation_RBV"], 0.0)
    chi_real = served(SIM["Chi1_RBV"], 0.0)
    chi_imag = served(SIM["Chi2_RBV"], 0.0)
    dynamic_resistance = served(SIM["Dudi_RBV"], 0.0)
    tc_chi = served(SIM["TcChi_RBV"], math.nan)
    tc_dudi = served(SIM["TcDudi_RBV"], math.nan)

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
