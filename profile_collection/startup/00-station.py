"""The station's IPython session: everything comes from the session factory.

Simulated station or real IOCs, by configuration: TCSTATION_PREFIX (the
simulated layout, default TCS:) or TCSTATION_STATION_CONFIG (a TOML file of
the real IOCs' prefixes); storage by the TCSTATION_* variables of
tcstation.storage_config. Nothing here writes to hardware.
"""

from bluesky import plan_stubs as bps  # noqa: F401

from plans.maintenance import (  # noqa: F401
    calibrate_susceptometer,
    check_thermometry,
    cool_down,
    expose_to_room_temperature,
    mount_sample,
)
from plans.protocol import source_protocol  # noqa: F401
from plans.ramps import (  # noqa: F401
    adaptive_transport_ramp,
    susceptibility_ramp,
    transport_grid,
    transport_ramp,
)
from tcstation.report import report  # noqa: F401
from tcstation.session import open_session

session = open_session()
station = session.station
RE = session.RE
cryostat = station.cryostat
susceptometer = station.susceptometer
transport = station.transport
bias_source = station.bias_source
environment = station.environment
tiled = session.storage.client if session.storage is not None and session.storage.uri else None
print(f"tcstation: {session.description}")
print("try: RE(transport_ramp(station, start=45, stop=60)); report(tiled)")
