"""Base class of the instrument PVGroups composed into the station IOC."""

from __future__ import annotations

from tcstation.ioc_sim.putchecks import CheckedGroup


class InstrumentGroup(CheckedGroup):
    """A PVGroup that serves part of the shared ``StationSimulation``.

    The station IOC owns the simulation and advances it; each instrument group
    turns puts into changes of the simulation, publishes its readings in
    ``publish``, which the station calls once per tick, and writes its settings
    from the simulation in ``write_settings`` when the IOC starts (a restored
    simulation brings its settings with it).
    """

    @property
    def simulation(self):
        return self.parent.simulation

    async def write_settings(self) -> None:
        """Write every setting PV and its readback from the simulation (at startup)."""

    async def publish(self) -> None:
        """Write this instrument's readings once per tick; settings are written on put."""


async def write_pair(setpoint, readback, value) -> None:
    """Write a setting's setpoint PV (bypassing its putter) and its readback."""
    await setpoint.write(value, verify_value=False)
    await readback.write(value)


async def write_changed(pv, value) -> None:
    """Write ``value`` only if it differs from the PV's: no monitor update for old news."""
    if pv.value != value:
        await pv.write(value)
