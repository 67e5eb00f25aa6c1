"""The simulated station IOC: every instrument on one simulation clock.

Sub-prefixes under the station prefix ``P``:

* ``P TC:``   LakeShore 336 temperature controller
* ``P LIA1:`` SR830 reading the susceptometer (1550 Hz)
* ``P LIA2:`` SR830 reading the four-probe voltage (13 Hz)
* ``P SRC:``  SourceMeter dc bias source
* ``P ENV:``  sample environment (sample, insert, contacts, exposure)
* ``P SIM:``  simulation clock and simulation-only diagnostics

Run it with ``tcstation ioc`` or ``python -m ioc_sim``.

The simulation steps once a tick (``--tick``, wall seconds), ``--speedup``
simulated seconds per wall second.  ``SIM:WakeAt`` takes the simulated time a
client waits for (a lock-in's settle, a temperature hold): until it is reached
the simulation runs as fast as it can compute, in steps of at most
``FAST_STEP``, each published, and it lands on exactly that time
(``SIM:Time_RBV`` = the requested time).  A physical wait then costs its
simulated seconds and next to no wall time, so what a reading costs in
simulated time beyond its settle is the speed-up times the wall time of the
software and Channel Access around it, however long the settle.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import logging
import math
import os
import time
from pathlib import Path

from caproto.server import SubGroup, template_arg_parser

from tcstation.instruments import simulation as simulation_contract
from tcstation.instruments.signal import by_suffix
from tcstation.instruments.simulation import SPEEDUP_RANGE, TICK_RANGE
from tcstation.ioc_process import start_repeater
from tcstation.ioc_sim.environment import SampleEnvironment, SimulationDiagnostics
from tcstation.ioc_sim.lakeshore336 import LakeShore336
from tcstation.ioc_sim.putchecks import CheckedGroup, finite_in_range, guarded, served
from tcstation.ioc_sim.sample import SAMPLE_KINDS
from tcstation.ioc_sim.server import run
from tcstation.ioc_sim.simulation import StationSimulation, restore_simulation, simulation_state
from tcstation.ioc_sim.sourcemeter import SourceMeter
from tcstation.ioc_sim.sr830 import SR830

logger = logging.getLogger("tcstation.ioc_sim")

DEFAULT_PREFIX = "TCS:"
DEFAULT_PORT = 5075
DEFAULT_TICK = 0.1
MIN_TICK = 1.0 / 60.0
STATE_SAVE_PERIOD = 1.0  # wall seconds between saves of the simulation state
STATE_SAVE_SIMULATED = 1.0
"""Simulated seconds between saves as well: at full speed a wall second is hundreds of them,
and a restart would otherwise roll the sample's temperature back by as much."""
ONSET_REFRESH_PERIOD = 1.0  # wall seconds between refreshes of the true-onset diagnostics
MAX_PENDING_WAKES = 64
FAST_STEP = 1.0
"""Simulated seconds of the largest step while a wake is pending (each step is published)."""
MAX_WAKE_AHEAD = 3600.0
"""Simulated seconds ahead of the present that a wake may be requested."""
SIM = by_suffix(simulation_contract.SIGNALS)


class StationIOC(CheckedGroup):
    """All simulated instruments of the station, sharing one sample and one clock."""

    cryostat = SubGroup(LakeShore336, prefix="TC:")
    susceptometer_lockin = SubGroup(SR830, prefix="LIA1:", channel="susceptometer")
    transport_lockin = SubGroup(SR830, prefix="LIA2:", channel="transport")
    source = SubGroup(SourceMeter, prefix="SRC:")
    environment = SubGroup(SampleEnvironment, prefix="ENV:")
    diagnostics = SubGroup(SimulationDiagnostics, prefix="SIM:")

    speedup = served(SIM["Speedup_RBV"], 1.0, prefix="SIM:")
    simulated_time = served(SIM["Time_RBV"], 0.0, prefix="SIM:")
    tick_period = served(SIM["Tick_RBV"], DEFAULT_TICK, prefix="SIM:")
    wake_at = served(SIM["WakeAt"], 0.0, prefix="SIM:")

    def __init__(self, *args, simulation: StationSimulation, speedup: float = 1.0,
                 tick: float = DEFAULT_TICK, state_file: Path | None = None, **kwargs):
        self.simulation = simulation
        self.speedup_factor = speedup
        self.tick = tick
        self.state_file = state_file
        self._wakes: list[float] = []
        self._wake_requested = asyncio.Event()
        super().__init__(*args, **kwargs)

    @wake_at.putter
    @guarded
    async def wake_at(self, instance, value):
        now = self.simulation.time
        when = finite_in_range(value, 0.0, now + MAX_WAKE_AHEAD, instance.pvname,
                               f"s (the simulation is at {now:.3f} s; at most "
                               f"{MAX_WAKE_AHEAD:g} s ahead)")
        if when > now and when not in self._wakes:
            heapq.heappush(self._wakes, when)
            if len(self._wakes) > MAX_PENDING_WAKES:
                self._wakes = heapq.nsmallest(MAX_PENDING_WAKES, self._wakes)
            self._wake_requested.set()
        return when

    def _next_wake(self) -> float | None:
        """The earliest pending wake still ahead of the simulation, or None."""
        while self._wakes and self._wakes[0] <= self.simulation.time:
            heapq.heappop(self._wakes)
        return self._wakes[0] if self._wakes else None

    @property
    def instruments(self):
        return (self.cryostat, self.susceptometer_lockin, self.transport_lockin, self.source,
                self.environment, self.diagnostics)

    async def fill(self) -> None:
        """Write every PV from the simulation, before the server answers its first search.

        A client that reconnects the moment a restarted IOC serves must read the
        restored state, never a PV's placeholder value.
        """
        await self.speedup.write(self.speedup_factor)
        await self.tick_period.write(self.tick)
        for group in self.instruments:
            await group.write_settings()
        for group in self.instruments:
            await group.publish()
        await self.simulated_time.write(self.simulation.time)

    @simulated_time.startup
    async def simulated_time(self, instance, async_lib):
        loop = asyncio.get_running_loop()
        onsets_task = None
        onsets_due = 0.0
        saved_at = 0.0
        saved_simulated = -math.inf
        last = time.monotonic()
        while True:
            wake = self._next_wake()
            fast = wake is not None
            if fast:
                # Let the server answer between fast steps; the wall time they take is
                # not counted again at the speed-up.
                await asyncio.sleep(0)
                now = time.monotonic()
                step = min(wake - self.simulation.time, FAST_STEP)
            else:
                self._wake_requested.clear()
                try:
                    # A wake request ends the tick early: the wall time until it
                    # counts at the speed-up, then the simulation runs to the wake.
                    await asyncio.wait_for(self._wake_requested.wait(),
                                           max(last + self.tick - time.monotonic(), 0.0))
                except TimeoutError:
                    pass
                now = time.monotonic()
                step = (now - last) * self.speedup_factor
                wake = self._next_wake()
                if wake is not None and wake - self.simulation.time <= step:
                    step = wake - self.simulation.time
            try:
                self.simulation.advance(step)
                for group in self.instruments:
                    await group.publish()
                await instance.write(self.simulation.time)
            except Exception:
                logger.exception("simulation step failed; the IOC keeps serving")
            last = time.monotonic() if fast else now
            if self.state_file is not None and (
                    now >= saved_at + STATE_SAVE_PERIOD
                    or self.simulation.time >= saved_simulated + STATE_SAVE_SIMULATED):
                save_state(self.simulation, self.state_file)
                saved_at, saved_simulated = now, self.simulation.time
            if onsets_task is not None and onsets_task.done():
                if onsets_task.exception() is None:
                    await self.diagnostics.publish_onsets(onsets_task.result())
                else:
                    logger.error("true-onset diagnostics failed: %s", onsets_task.exception())
                onsets_task = None
            if onsets_task is None and now >= onsets_due:
                # Off the loop: a cache miss takes a sweep of the model over temperature.
                onsets_task = loop.run_in_executor(None, self.simulation.true_onsets)
                onsets_due = now + ONSET_REFRESH_PERIOD


def save_state(simulation: StationSimulation, path: Path) -> None:
    """Write the simulation's state atomically, stamped with the wall time."""
    state = {"saved_at": time.time(), "simulation": simulation_state(simulation)}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(state))
    os.replace(partial, path)


def load_state(simulation: StationSimulation, path: Path, speedup: float) -> bool:
    """Restore a saved state, catching up on the time the IOC was down; False if none."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as err:
        logger.error("ignoring unreadable state file %s: %s", path, err)
        return False
    downtime = (time.time() - state["saved_at"]) * speedup
    restore_simulation(simulation, state["simulation"], downtime)
    return True


def configure_loopback_environment(port: int, interfaces: list[str]) -> None:
    """Serve Channel Access on ``port`` and only on ``interfaces``."""
    os.environ["EPICS_CA_SERVER_PORT"] = str(port)
    os.environ["EPICS_CAS_SERVER_PORT"] = str(port)
    os.environ["EPICS_CAS_INTF_ADDR_LIST"] = " ".join(interfaces)
    # Beacons go to the clients' CA repeater on this host only.  A restarted IOC's
    # first, rapid beacons are a "beacon anomaly" to libca, which then boosts the
    # searches that had backed off (not channels waiting in its 10 s disconnect
    # governor: see benchmarks/reconnect_time.py).
    os.environ["EPICS_CAS_BEACON_ADDR_LIST"] = "127.0.0.1"
    os.environ["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] = "NO"
    os.environ.setdefault("EPICS_CAS_BEACON_PORT",
                          os.environ.get("EPICS_CA_REPEATER_PORT", "5065"))


def build_parser() -> argparse.ArgumentParser:
    """caproto's IOC parser (``--prefix``, ``-q``/``-v``, ``--interfaces``, ...) with ours.

    Two of caproto's options mean more here: ``--interfaces`` defaults to loopback
    only, and ``--list-pvs`` prints every PV with its description and exits.
    """
    parser, _ = template_arg_parser(
        desc="Serve the simulated cryogenic station (cryostat, two lock-ins, dc source, "
             "sample environment) over Channel Access.",
        default_prefix=DEFAULT_PREFIX, supported_async_libs=["asyncio"])
    parser.prog = "tcstation ioc"
    ours = {
        "prefix": (DEFAULT_PREFIX, f"station PV prefix (default {DEFAULT_PREFIX})"),
        "interfaces": (["127.0.0.1"], "interfaces to serve on (default loopback only)"),
        "list_pvs": (False, "print every PV with its description and exit"),
    }
    for action in parser._actions:
        if action.dest in ours:
            action.default, action.help = ours[action.dest]
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"Channel Access server port (default {DEFAULT_PORT})")
    parser.add_argument("--speedup", type=float, default=1.0,
                        help="simulated seconds per wall second, 0.1 to 1000 (default 1)")
    parser.add_argument("--sample", default="mg_mgo", choices=SAMPLE_KINDS,
                        help="sample mounted at start (default mg_mgo)")
    parser.add_argument("--no-noise", action="store_true", help="start with noise off")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the noise")
    parser.add_argument("--tick", type=float, default=None,
                        help="wall seconds per simulation step and reading update (default "
                        "1/speedup, within 1/60 to 0.1, so readings refresh faster than a "
                        "lock-in settles)")
    parser.add_argument("--state-file", type=Path, default=None,
                        help="save the simulation's state here every second (wall and "
                        "simulated) and restore it at start, catching up on the downtime: an "
                        "IOC restart does not reset the cryostat")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    return parser


def default_tick(speedup: float) -> float:
    """One simulation step per physical second up to a 60x speed-up, at most 0.1 s wall."""
    return min(max(1.0 / speedup, MIN_TICK), DEFAULT_TICK)


def build_ioc(args: argparse.Namespace) -> StationIOC:
    simulation = StationSimulation(args.sample, noise=not args.no_noise, seed=args.seed)
    if args.state_file is not None and load_state(simulation, args.state_file, args.speedup):
        logger.warning("restored the simulation from %s at t = %.0f s", args.state_file,
                       simulation.time)
    tick = args.tick if args.tick is not None else default_tick(args.speedup)
    return StationIOC(prefix=args.prefix, simulation=simulation, speedup=args.speedup,
                      tick=tick, state_file=args.state_file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    split_caproto_arguments = template_arg_parser(desc="", default_prefix=DEFAULT_PREFIX)[1]
    low, high = SPEEDUP_RANGE
    if not low <= args.speedup <= high:
        parser.error(f"--speedup {args.speedup:g} is outside the allowed range {low:g} to {high:g}")
    if args.tick is not None and not TICK_RANGE[0] <= args.tick <= TICK_RANGE[1]:
        parser.error(f"--tick {args.tick:g} is outside the allowed range {TICK_RANGE[0]:g} to "
                     f"{TICK_RANGE[1]:g} s")
    if not 1024 <= args.port <= 65535:
        parser.error(f"--port {args.port} is outside the allowed range 1024 to 65535")
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.verbose or args.quiet:
        split_caproto_arguments(args)  # caproto's own log handlers, as its IOCs set them
    ioc = build_ioc(args)
    if args.list_pvs:
        for name, instance in ioc.pvdb.items():
            print(f"{name:40s} {instance.__doc__ or ''}".rstrip())
        return 0
    configure_loopback_environment(args.port, args.interfaces)
    # The beacons go to this host's CA repeater; with none listening, every beacon fails
    # (connection refused) and caproto logs a traceback for each. An EPICS IOC starts
    # one if none runs; so does this one, and it stops with the IOC.
    repeater = start_repeater()
    print(f"tcstation simulated station: prefix {args.prefix!r}, {len(ioc.pvdb)} PVs, "
          f"port {args.port} on {' '.join(args.interfaces)}, speed-up {args.speedup:g}, "
          f"sample {args.sample}", flush=True)
    try:
        run(ioc.pvdb, interfaces=args.interfaces, fill=ioc.fill)
    finally:
        repeater.stop()
    return 0
