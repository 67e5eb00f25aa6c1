"""How long a pyepics monitor takes to reconnect after the station IOC is killed and restarted.

The IOC is killed with SIGKILL, left down for each outage, and restarted on the
same port with the same state file.  Printed per outage: the wall seconds from
the restarted IOC serving again (``SimulatedStationProcess.start`` returns) to
the monitor's connection callback, and the phase of that reconnection on a 10 s
clock started with the CA context.  A constant phase is libca's disconnect
governor: a channel whose circuit closed is searched again only when that
context-wide 10 s timer next fires, whatever the beacons say.  For comparison,
a channel created after the restart (a name not used before) is timed too: a
new channel is searched at once.

    python benchmarks/reconnect_time.py [--outages 1 1.5 2 3 4.5] [--no-repeater] [--renewal]

With ``--renewal`` a ``ChannelRenewal`` re-creates the lost channel on the
restarted IOC's first beacon (the fix).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcstation.ca_renewal import ChannelRenewal  # noqa: E402
from tcstation.ioc_process import (  # noqa: E402
    SimulatedStationProcess,
    free_port,
    loopback_client_environment,
    start_repeater,
)

GOVERNOR_PERIOD = 10.0  # s, libca's disconnectGovernorPeriod (compiled in)
FRESH_NAMES = ("TC:IN2:Kelvin", "TC:IN1:Units", "SIM:Tick_RBV", "SIM:Speedup_RBV",
               "TC:OUT1:SP_RBV")  # one never-used channel per outage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 4.5])
    parser.add_argument("--no-repeater", action="store_true",
                        help="run no CA repeater for the client (beacons reach no one)")
    parser.add_argument("--renewal", action="store_true",
                        help="re-create lost channels on a beacon (tcstation.ca_renewal)")
    args = parser.parse_args()
    if args.renewal and args.no_repeater:
        parser.error("--renewal needs the repeater (drop --no-repeater)")
    if len(args.outages) > len(FRESH_NAMES):
        parser.error(f"at most {len(FRESH_NAMES)} outages, got {len(args.outages)}")

    port = free_port()
    os.environ.update(loopback_client_environment(port))
    repeater = None if args.no_repeater else start_repeater()
    import epics  # after the environment: libca reads it once

    epics.ca.initialize_libca()
    context_start = time.monotonic()
    renewal = ChannelRenewal().start() if args.renewal else None
    prefix = f"B{uuid.uuid4().hex[:6]}:"
    with tempfile.TemporaryDirectory() as directory:
        ioc = SimulatedStationProcess(prefix, port, speedup=10.0,
                                      state_file=Path(directory) / "state.json")
        ioc.start()
        connected = threading.Event()
        disconnected = threading.Event()

        def on_connection(pvname=None, conn=None, **kwargs):
            (connected if conn else disconnected).set()

        pv = epics.PV(prefix + "TC:IN1:Kelvin", auto_monitor=True,
                      connection_callback=on_connection)
        if not pv.wait_for_connection(10.0):
            raise SystemExit("the monitor never connected")
        try:
            for outage, fresh_name in zip(args.outages, FRESH_NAMES, strict=False):
                connected.clear()
                disconnected.clear()
                ioc.process.kill()
                ioc.process.wait()
                if not disconnected.wait(10.0):
                    raise SystemExit("the monitor never saw the IOC go")
                time.sleep(outage)  # the outage itself
                ioc.start()
                serving = time.monotonic()
                fresh = epics.PV(prefix + fresh_name)
                fresh_delay = (time.monotonic() - serving
                               if fresh.wait_for_connection(10.0) else float("nan"))
                if not connected.wait(120.0):
                    raise SystemExit(f"outage {outage:4.1f} s: no reconnection within 120 s")
                now = time.monotonic()
                print(f"outage {outage:5.1f} s: reconnected {now - serving:5.2f} s after the "
                      f"IOC served again (phase {(now - context_start) % GOVERNOR_PERIOD:5.2f} s); "
                      f"a new channel connected after {fresh_delay:4.2f} s", flush=True)
        finally:
            ioc.stop()
            if renewal is not None:
                renewal.stop()
            if repeater is not None:
                repeater.stop()


if __name__ == "__main__":
    main()
