"""The ``tcstation`` command line."""

from __future__ import annotations

import argparse
import signal
import sys
import time


def _run_ioc(argv: list[str]) -> int:
    from tcstation.ioc_sim.station import main as ioc_main

    return ioc_main(argv)


def _run_demo(argv: list[str]) -> int:
    from tcstation.demo import demo_main

    return demo_main(argv)


def _run_report(argv: list[str]) -> int:
    from tcstation.report import report_main

    return report_main(argv)


def _run_export(argv: list[str]) -> int:
    from tcstation.report import export_main

    return export_main(argv)


def _run_samples(argv: list[str]) -> int:
    from tcstation.ledger import samples_main

    return samples_main(argv)


def _run_qserver(argv: list[str]) -> int:
    from tcstation.queueserver import qserver_main

    return qserver_main(argv)


def _run_watchdog(argv: list[str]) -> int:
    from tcstation.watchdog import watchdog_main

    return watchdog_main(argv)


def _run_qserver_yaml(argv: list[str]) -> int:
    from tcstation.queueserver import yaml_main

    return yaml_main(argv)


def _run_follow(argv: list[str]) -> int:
    from tcstation.follow import follow_main

    return follow_main(argv)


def _run_stream_proxy(argv: list[str]) -> int:
    from tcstation.stream import proxy_main

    return proxy_main(argv)


def _run_web(argv: list[str]) -> int:
    from tcstation.web.cli import web_main

    return web_main(argv)


def _run_pv_table(argv: list[str]) -> int:
    from tcstation.pv_table import main as pv_table_main

    return pv_table_main(argv)


def _run_emulate(argv: list[str]) -> int:
    from tcstation.emulators.server import main as emulate_main

    return emulate_main(argv)


def _run_bridge(argv: list[str]) -> int:
    from tcstation.bridge.ioc import main as bridge_main

    return bridge_main(argv)


def replay_main(argv: list[str]) -> int:
    """``tcstation replay [--dry-run] [--uid UID ...]``: put pending runs into Tiled.

    Uses the configured external Tiled, or the local server of the data
    directory (reusing a running one, else starting one for the replay and
    stopping it afterwards).

    Returns
    -------
    int
        0 when nothing failed (runs in use by a live session are skipped, not
        failed), 1 when a run could not be written or Tiled did not answer,
        2 for a configuration error.
    """
    from tcstation.storage import connect_runs
    from tcstation.storage.config import (
        StorageConfig,
        StorageConfigError,
        mask_secret,
        prepare_data_dir,
    )
    from tcstation.storage.replay import format_results, replay_pending
    from tcstation.storage.server import LocalTiledServer, running_server_uri
    from tcstation.storage.spool import DocumentSpool
    from tcstation.storage.tiled import tiled_answers

    parser = argparse.ArgumentParser(
        prog="tcstation replay",
        description="Write the runs kept in the local spool (Tiled was down, or the session "
                    "died) into Tiled, exactly once. Safe to run any number of times.",
    )
    parser.add_argument("--dry-run", action="store_true",
                        help="show what would be done, change nothing")
    parser.add_argument("--uid", action="append", default=[],
                        help="replay only this run (full start uid); may be repeated")
    parser.add_argument("--prune-done-days", type=float, metavar="DAYS",
                        help="also delete the spool files of runs confirmed in Tiled more than "
                             "DAYS days ago")
    options = parser.parse_args(argv)
    if options.prune_done_days is not None and options.prune_done_days < 0:
        parser.error(f"--prune-done-days must be >= 0, not {options.prune_done_days}")
    try:
        config = StorageConfig.from_environment()
    except StorageConfigError as error:
        print(f"tcstation replay: {error}")
        return 2
    prepare_data_dir(config)
    spool = DocumentSpool(config.spool_dir)
    if options.prune_done_days is not None and not options.dry_run:
        pruned = spool.prune_done(options.prune_done_days * 86400.0)
        print(f"deleted the spool files of {len(pruned)} run(s) done more than "
              f"{options.prune_done_days:g} days ago")
    pending = spool.pending_uids()
    if options.uid:
        unknown = sorted(set(options.uid) - set(pending))
        if unknown:
            print(f"not pending in {config.spool_dir}: {', '.join(unknown)}")
        pending = [uid for uid in pending if uid in set(options.uid)]
    if not pending:
        print(f"nothing to replay: no pending run in {config.spool_dir}")
        return 0
    print(f"{len(pending)} pending run(s) in {config.spool_dir}")

    server: LocalTiledServer | None = None
    if config.uses_local_server:
        server = LocalTiledServer(config)
        uri, api_key = running_server_uri(config, server.api_key), server.api_key
        if uri is None:
            print("starting the local Tiled server for the replay ...")
            uri = server.start().uri
        else:
            server = None
    else:
        uri, api_key = config.tiled_uri, config.api_key
    try:
        if not tiled_answers(uri, timeout=5.0):
            print(f"Tiled at {uri} does not answer; the runs stay pending")
            return 1
        client = connect_runs(uri, api_key)
        print(f"Tiled at {uri} (key {mask_secret(api_key)})")
        started = time.perf_counter()
        results = replay_pending(spool, client, dry_run=options.dry_run, uids=pending)
        print(format_results(results))
        print(f"{'looked at' if options.dry_run else 'replayed'} {len(results)} run(s) "
              f"in {time.perf_counter() - started:.1f} s")
    finally:
        if server is not None:
            server.stop()
    return 1 if any(result.outcome.failed for result in results) else 0


def tiled_main(argv: list[str]) -> int:
    """``tcstation tiled``: serve the data directory's Tiled in the foreground until Ctrl-C.

    For looking at runs when no session runs. Reuses a server already serving
    the data directory (then it only prints where it is).
    """
    from tcstation.storage.config import StorageConfig, StorageConfigError, mask_secret
    from tcstation.storage.server import ensure_local_server

    parser = argparse.ArgumentParser(
        prog="tcstation tiled",
        description="Serve the local Tiled store of TCSTATION_DATA_DIR on 127.0.0.1 until Ctrl-C.",
    )
    parser.parse_args(argv)
    try:
        config = StorageConfig.from_environment()
    except StorageConfigError as error:
        print(f"tcstation tiled: {error}")
        return 2
    if not config.uses_local_server:
        print(f"TCSTATION_TILED_URI is set: the station uses the Tiled at {config.tiled_uri}")
        return 0
    from tcstation.storage.layout import DERIVED_KEY, RUNS_KEY

    uri, api_key, server = ensure_local_server(config)
    print(f"Tiled serves {config.data_dir} at {uri} (key {mask_secret(api_key)}; the full key "
          f"is in {config.api_key_file}, readable only by you); the runs are under "
          f"{RUNS_KEY!r} (from_uri(uri, api_key=key)[{RUNS_KEY!r}][-1]), the Tc tables "
          f"under {DERIVED_KEY!r}")
    if server is None:
        print("(an already running server; it stops with the session that started it)")
        return 0
    print("Ctrl-C stops it.", flush=True)
    # The server runs in a session of its own (a Ctrl-C in the terminal must not
    # kill it behind the station's back), so it is stopped here, on SIGTERM too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0



def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tcstation")
    except PackageNotFoundError:
        return "unknown (not installed)"


COMMANDS = {
    "ioc": (_run_ioc, "serve the simulated station over Channel Access (see `tcstation ioc -h`)"),
    "demo": (_run_demo, "run the source experiment's whole protocol on the simulated station, "
                        "with a local Tiled, and write the Tc table and figures"),
    "report": (_run_report, "Tc table and Fig. 1/2-style figures of runs in Tiled "
                            "(`tcstation report [RUN|latest]`)"),
    "export": (_run_export, "export a run's analysis columns as plain CSV with a JSON "
                            "sidecar, or as NeXus HDF5 with one plottable NXdata per dc bias "
                            "(`tcstation export latest|SCAN_ID|UID_PREFIX --format "
                            "csv|hdf5 [--whole-stream]`)"),
    "samples": (_run_samples, "the sample ledger: every sample's kind, mount time, warm time "
                              "and runs, or one sample's history, runs after too long warm "
                              "flagged (`tcstation samples [ID] [--json]`)"),
    "replay": (replay_main, "write the runs kept in the local spool into Tiled, exactly once "
                            "(see `tcstation replay -h`)"),
    "tiled": (tiled_main, "serve the local Tiled store of TCSTATION_DATA_DIR until Ctrl-C"),
    "qserver": (_run_qserver, "run the queueserver's RE manager on the station's profile, "
                              "starting Redis if needed (see `tcstation qserver -h`)"),
    "watchdog": (_run_watchdog, "keep the sample below its limit with or without a plan running "
                                "(`tcstation watchdog --prefix P`)"),
    "qserver-yaml": (_run_qserver_yaml, "regenerate (or --check) the profile's "
                                        "existing_plans_and_devices.yaml"),
    "emulate": (_run_emulate, "serve emulated instruments (LakeShore 336, SR830s, Keithley 2400) "
                              "on TCP ports, answering from the physics model"),
    "bridge": (_run_bridge, "serve real instruments' PVs over Channel Access through PyVISA "
                            "(`tcstation bridge CONFIG.toml`, `--probe`)"),
    "follow": (_run_follow, "print the live document stream of every session and the "
                            "queueserver: run starts, one line per event, stops"),
    "stream-proxy": (_run_stream_proxy, "serve the live document stream (bluesky's 0MQ proxy, "
                                        "ports 5577/5578 on 127.0.0.1; sessions start it)"),
    "web": (_run_web, "serve the operator's page on 127.0.0.1: the station, the running plan, "
                      "the queue and recent runs, live in a browser (`tcstation web -h`)"),
    "pv-table": (_run_pv_table, "regenerate (or --check) docs/pv-table.md from the instruments' "
                                "contract and the devices"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="tcstation",
        description="Control and data stack of the cryogenic Tc measurement station.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("command", choices=sorted(COMMANDS),
                        help="; ".join(f"{name}: {text}" for name, (_, text) in COMMANDS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the command")
    if not argv:
        parser.print_help()
        return 2
    if argv[0].startswith("-"):
        parser.parse_args(argv)
    options = parser.parse_args(argv[:1])
    run, _ = COMMANDS[options.command]
    try:
        return run(argv[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
