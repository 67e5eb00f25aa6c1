"""The station's session, for IPython and for the queueserver's worker alike.

Everything comes from the session factory; this file only binds names.
Simulated station or real IOCs, by configuration: TCSTATION_PREFIX (the
simulated layout, default TCS:) or TCSTATION_STATION_CONFIG (a TOML file of
the real IOCs' prefixes); storage by TCSTATION_STORAGE and the TCSTATION_*
variables of tcstation.storage.config. Nothing here writes to hardware. In the
queueserver's worker, plots are off and progress is quiet.
"""

from tcstation.plans.bound import bind_plans
from tcstation.report import report  # noqa: F401
from tcstation.session import open_session

session = open_session()
RE = session.RE
station = session.station
stored = session.storage is not None and session.storage.uri
tiled = session.storage.client if stored else None
catalog = session.storage.runs if stored else None
"""The runs (CatalogOfBlueskyRuns): catalog[-1], catalog[scan_id], catalog.search(...)."""

cryostat = station.cryostat
susceptometer = station.susceptometer
transport = station.transport
bias_source = station.bias_source
environment = station.environment

station_plans = bind_plans(station)
transport_ramp = station_plans.transport_ramp
adaptive_transport_ramp = station_plans.adaptive_transport_ramp
susceptibility_ramp = station_plans.susceptibility_ramp
transport_grid = station_plans.transport_grid
check_thermometry = station_plans.check_thermometry
cool_down = station_plans.cool_down
mount_sample = station_plans.mount_sample
expose_to_room_temperature = station_plans.expose_to_room_temperature
calibrate_susceptometer = station_plans.calibrate_susceptometer
source_protocol = station_plans.source_protocol

print(f"tcstation: {session.description}")
print("try: RE(transport_ramp(start=45, stop=60)); report(catalog); catalog[-1]")
