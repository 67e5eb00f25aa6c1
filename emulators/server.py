"""``tcstation emulate``: the station's four instruments as TCP servers on one simulation.

Prints one line per instrument (its name, VISA resource string) once every port
listens, and, with ``--ports-file``, writes the ports as JSON (for tests and scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from pathlib import Path

from tcstation.instruments.simulation import SPEEDUP_RANGE

from .base import Clock
from .lakeshore336 import LakeShore336Emulator
from .sourcemeter import SourceMeterEmulator
from .sr830 import SR830Emulator

logger = logging.getLogger("tcstation.emulators")

INSTRUMENTS = ("lakeshore336", "lockin1", "lockin2", "sourcemeter")
DEFAULT_PORTS = {"lakeshore336": 7777, "lockin1": 7781, "lockin2": 7782, "sourcemeter": 7790}
"""The LakeShore 336's Ethernet port is 7777; the others are ours (serial-to-Ethernet
adapters take what they are told)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcstation emulate",
        description="Serve emulated instruments (LakeShore 336, two SR830, Keithley 2400) on "
                    "TCP ports, speaking their own command sets and answering from one "
                    "simulated cryostat and sample.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default loopback only)")
    for name in INSTRUMENTS:
        parser.add_argument(f"--{name}-port", type=int, default=DEFAULT_PORTS[name],
                            help=f"TCP port (default {DEFAULT_PORTS[name]}; 0 = any free one)")
    parser.add_argument("--speedup", type=float, default=1.0,
                        help="simulated seconds per wall second (default 1)")
    parser.add_argument("--sample", default="mg_mgo", help="sample mounted at start")
    parser.add_argument("--insert", default="susceptometer",
                        choices=("susceptometer", "transport"), help="measurement insert")
    parser.add_argument("--no-noise", action="store_true", help="noise off")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the noise")
    parser.add_argument("--ports-file", type=Path, default=None,
                        help="write the ports as JSON here once they listen")
    parser.add_argument("--log-level", default="WARNING")
    return parser


async def serve(args: argparse.Namespace) -> None:
    from tcstation.ioc_sim.simulation import StationSimulation

    simulation = StationSimulation(args.sample, noise=not args.no_noise, seed=args.seed)
    simulation.environment.insert = args.insert
    clock = Clock(simulation, speedup=args.speedup)
    emulators = {
        "lakeshore336": LakeShore336Emulator(clock),
        "lockin1": SR830Emulator(clock, "susceptometer", serial=10001),
        "lockin2": SR830Emulator(clock, "transport", serial=10002),
        "sourcemeter": SourceMeterEmulator(clock),
    }
    ports = {}
    for name, emulator in emulators.items():
        ports[name] = await emulator.start(args.host, getattr(args, f"{name}_port"))
        print(f"{name:13s} {emulator.name:14s} TCPIP0::{args.host}::{ports[name]}::SOCKET",
              flush=True)
    if args.ports_file is not None:
        partial = args.ports_file.with_name(args.ports_file.name + ".partial")
        partial.write_text(json.dumps(ports))
        os.replace(partial, args.ports_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ticker = asyncio.create_task(clock.run())
    await stop.wait()
    ticker.cancel()
    for emulator in emulators.values():
        emulator.server.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not SPEEDUP_RANGE[0] <= args.speedup <= SPEEDUP_RANGE[1]:
        parser.error(f"--speedup {args.speedup:g} is outside {SPEEDUP_RANGE[0]:g} to "
                     f"{SPEEDUP_RANGE[1]:g}")
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))
    return 0
