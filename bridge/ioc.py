"""``tcstation bridge CONFIG.toml``: the bridge IOC; ``--probe`` asks each instrument who it is.

The bridge serves on loopback by default (``--interfaces`` to serve a network)
on ``--port``; each instrument's PVs under the station prefix and its own
sub-prefix from the TOML (the simulated IOC's by default, so the station's
devices connect unchanged).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from tcstation.bridge.config import BUILT, PROTOCOLS, BridgeConfig, ConfigError, load_config
from tcstation.bridge.connection import CommunicationError, VisaConnection

logger = logging.getLogger("tcstation.bridge")
DEFAULT_PORT = 5064


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcstation bridge",
        description="Serve real instruments' PVs over Channel Access, talking to them "
                    "through PyVISA (pyvisa-py backend).")
    parser.add_argument("config", type=Path, help="the bridge's TOML (instruments, resources)")
    parser.add_argument("--probe", action="store_true",
                        help="ask each instrument for its *IDN? and exit (0 if all answer)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"Channel Access server port (default {DEFAULT_PORT})")
    parser.add_argument("--interfaces", nargs="+", default=["127.0.0.1"],
                        help="interfaces to serve on (default loopback only)")
    parser.add_argument("--list-pvs", action="store_true", help="print every PV and exit")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def probe(config: BridgeConfig, out=sys.stdout) -> int:
    """Print, per instrument, whether it answers ``*IDN?`` and what it says."""
    failures = 0
    for instrument in config.instruments:
        connection = VisaConnection(instrument)
        try:
            (reply,) = connection.exchange([("query", "*IDN?")])
            try:
                PROTOCOLS[instrument.kind].check_idn(reply)
                verdict = "answers"
            except ValueError as error:
                verdict, failures = f"answers, but not as a {instrument.kind}: {error}", \
                    failures + 1
            print(f"{instrument.name:14s} {instrument.resource:40s} {verdict}: {reply}",
                  file=out)
        except CommunicationError as error:
            failures += 1
            print(f"{instrument.name:14s} {instrument.resource:40s} does not answer: {error}",
                  file=out)
        finally:
            connection.close()
            connection.executor.shutdown(wait=False)
    return 1 if failures else 0


def build_ioc(config: BridgeConfig) -> dict:
    """The pvdb of every bridged instrument."""
    from tcstation.bridge.lakeshore336 import LakeShore336Bridge
    from tcstation.bridge.sourcemeter import SourceMeterBridge
    from tcstation.bridge.sr830 import SR830Bridge

    classes = {"lakeshore336": LakeShore336Bridge, "sourcemeter": SourceMeterBridge,
               "sr830": SR830Bridge}
    pvdb: dict = {}
    for instrument in config.instruments:
        if instrument.kind not in BUILT:
            logger.error("%s: the bridge does not serve a %s yet; skipped", instrument.name,
                         instrument.kind)
            continue
        group = classes[instrument.kind](prefix=config.prefix + instrument.prefix,
                                         config=instrument)
        pvdb.update(group.pvdb)
    return pvdb


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"tcstation bridge: {error}", file=sys.stderr)
        return 2
    if args.probe:
        return probe(config)
    if not 1024 <= args.port <= 65535:
        parser.error(f"--port {args.port} is outside the allowed range 1024 to 65535")
    pvdb = build_ioc(config)
    if not pvdb:
        print("tcstation bridge: no instrument the bridge serves yet "
              f"(built: {', '.join(BUILT)})", file=sys.stderr)
        return 2
    if args.list_pvs:
        for name, instance in pvdb.items():
            print(f"{name:40s} {instance.__doc__ or ''}".rstrip())
        return 0
    from tcstation.ioc_sim.station import configure_loopback_environment

    configure_loopback_environment(args.port, args.interfaces)
    print(f"tcstation bridge: prefix {config.prefix!r}, {len(pvdb)} PVs, port {args.port} on "
          f"{' '.join(args.interfaces)}: " + ", ".join(
              f"{i.name} {i.resource}" for i in config.instruments if i.kind in BUILT),
          flush=True)
    asyncio.run(serve(pvdb, args.interfaces))
    return 0


async def serve(pvdb: dict, interfaces: list[str]) -> None:
    """Serve until SIGINT or SIGTERM; then the groups' shutdown hooks run (a source is
    ramped to 0 A and switched off) before the process ends."""
    from tcstation.ioc_sim.server import StationContext

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await StationContext(pvdb, interfaces).run()
    except asyncio.CancelledError:
        pass
