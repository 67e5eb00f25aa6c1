"""Base class of the instrument PVGroups composed into the station IOC."""

from __future__ import annotations

from caproto.server import PVGroup


class InstrumentGroup(PVGroup):
    """A PVGroup that serves part of the shared ``StationSimulation``.

    The station IOC owns the simulation and advances it; each instrument group
    turns puts into changes of the simulation and publishes its readings in
    ``publish``, which the station calls once per tick.
    """

    @property
    def simulation(self):
        return self.parent.simulation

    async def publish(self) -> None:
        """Write this instrument's changing readings; settings are written on put."""
