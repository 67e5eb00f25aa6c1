"""``tcstation demo``: the source experiment end to end on the simulated station.

Starts the simulated station IOC and a local Tiled server, runs the whole
protocol (calibration on Pb, thermometry on MgB2, susceptibility of pure Mg
and Mg/MgO, transport on the core and on the surface at every bias, 30 min at
room temperature, transport and susceptibility again) at a speed-up, shows
progress and the Tc tables, writes the Fig. 1/2-style figures from the runs
read back from Tiled, says where everything is, and stops what it started,
also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

from tcstation.ioc_process import SimulatedStationProcess, free_port, loopback_client_environment
from tcstation.storage.config import private_directory

DEFAULT_SPEEDUP = 60.0
"""Simulated seconds per wall second between waits: a lock-in's settle runs at full speed
(``SIM:WakeAt``), so a transport reading costs its 2.1 s settle plus 0.2 to 0.4 s at 60x and
every ramp runs at the source's own rates, 4.5 to 70 K at 1.5 K/min."""
DEFAULT_DATA_DIR = Path("var") / "demo"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tcstation demo", description=__doc__.splitlines()[0])
    parser.add_argument("--speedup", type=float, default=DEFAULT_SPEEDUP,
                        help=f"simulated seconds per wall second (default {DEFAULT_SPEEDUP:g})")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where Tiled keeps the runs (default TCSTATION_DATA_DIR, else "
                        f"./{DEFAULT_DATA_DIR})")
    parser.add_argument("--output", type=Path, default=Path("report"),
                        help="directory for the figures (default ./report)")
    parser.add_argument("--rate", type=float, default=1.5, help="ramp rate, K/min (1.5)")
    parser.add_argument("--exposure", type=float, default=30.0,
                        help="minutes at room temperature (30)")
    return parser


def demo_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    data_dir = (args.data_dir or Path(os.environ.get("TCSTATION_DATA_DIR", DEFAULT_DATA_DIR)))
    data_dir = data_dir.resolve()
    private_directory(data_dir)
    os.environ["TCSTATION_DATA_DIR"] = str(data_dir)
    port = free_port()
    # Before anything imports pyepics: its context reads these once.
    os.environ.update(loopback_client_environment(port))
    prefix = f"DEMO{uuid.uuid4().hex[:4]}:"
    began = time.monotonic()
    print(f"tcstation demo: simulated station at {args.speedup:g}x on 127.0.0.1:{port}, "
          f"data in {data_dir}", flush=True)
    with SimulatedStationProcess(prefix, port, speedup=args.speedup,
                                 log_path=data_dir / "ioc.log"):
        try:
            return _run(args, prefix, data_dir, began)
        finally:
            _close_channel_access()


def _close_channel_access() -> None:
    """End the CA client before its IOC stops, so it does not report the lost circuits."""
    if "epics" in sys.modules:
        from epics import ca

        ca.finalize_libca()


def _run(args: argparse.Namespace, prefix: str, data_dir: Path, began: float) -> int:
    from bluesky.utils import RunEngineInterrupted

    from tcstation.plans.protocol import PROTOCOL_STEPS, source_protocol
    from tcstation.report import report
    from tcstation.session import open_session

    print("starting the local Tiled server (a few seconds)...", flush=True)
    session = open_session(prefix, progress=True)
    try:
        print(f"session: {session.description}", flush=True)
        print("protocol: " + "; ".join(f"{index + 1}. {step}"
                                       for index, step in enumerate(PROTOCOL_STEPS)), flush=True)
        try:
            session.RE(source_protocol(session.station, rate=args.rate,
                                       exposure_minutes=args.exposure))
        except RunEngineInterrupted:
            print("interrupted: aborting the protocol; the station is made safe", flush=True)
            session.RE.abort("stopped by the user")
            return 130
        session.storage.writer.wait_until_idle(60.0)
        for thread in session.pending_stores:
            thread.join(30.0)
        text, figures = report(session.storage.runs, "latest", args.output.resolve())
        print("\nTransitions (recomputed from the runs read back from Tiled):")
        print(text)
        if session.ledger is not None:
            from tcstation.ledger import format_samples

            print("\nSamples (`tcstation samples [ID]` for each one's history):")
            print(format_samples(session.ledger.samples()))
        minutes = (time.monotonic() - began) / 60.0
        print(f"\nDone in {minutes:.1f} min.")
        for path in figures:
            print(f"figure: {path}")
        print(f"runs: Tiled catalog under {data_dir} (serve it with "
              f"`TCSTATION_DATA_DIR={data_dir} .venv/bin/tcstation tiled`, then open the "
              "printed URL; or `.venv/bin/tcstation report` and `tcstation export UID`)")
        return 0
    finally:
        session.close()
