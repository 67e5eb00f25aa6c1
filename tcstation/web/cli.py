"""``tcstation web``: serve the operator's page (see :mod:`tcstation.web`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tcstation.web.app import (
    DEFAULT_RATE,
    RATE_RANGE,
    Sources,
    WebConfigError,
    check_binding,
    create_app,
)

API_KEY_VARIABLE = "TCSTATION_WEB_API_KEY"
DEFAULT_PORT = 8060
DEFAULT_WARM_LIMIT_MINUTES = 30.0
"""Minutes a mounted sample may spend warm before the page raises it, when the sample ledger
has no mount or the mounted kind no tolerance of its own."""


def web_parser() -> argparse.ArgumentParser:
    from tcstation.queueserver import DEFAULT_ZMQ_CONTROL_PORT, DEFAULT_ZMQ_INFO_PORT
    from tcstation.stream import StreamConfig

    stream = StreamConfig.from_environment()
    parser = argparse.ArgumentParser(
        prog="tcstation web",
        description="Serve the operator's page: the station now (Channel Access), the running "
                    "plan (the live document stream), the queue (the RE manager) and recent "
                    "runs (Tiled), live in a browser. Loopback only unless --allow-remote.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default %(default)s; beyond loopback needs "
                             "--allow-remote and an API key)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow --host beyond loopback (every request then needs the key)")
    parser.add_argument("--api-key-file", type=Path,
                        help=f"file holding the key queue actions need (default: "
                             f"{API_KEY_VARIABLE}; none: actions are refused)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="page updates a second (0.1 to 20, default %(default)s)")
    parser.add_argument("--prefix", default=os.environ.get("TCSTATION_PREFIX", "TCS:"),
                        help="station prefix (default TCSTATION_PREFIX or %(default)s)")
    parser.add_argument("--station-config", type=Path,
                        default=os.environ.get("TCSTATION_STATION_CONFIG") or None,
                        help="TOML file of the real IOCs' prefixes (TCSTATION_STATION_CONFIG)")
    parser.add_argument("--stream", default=stream.out_address,
                        help="the document stream proxy's out address (default %(default)s, "
                             "from TCSTATION_STREAM_HOST/_OUT_PORT)")
    parser.add_argument("--qserver-control", default=f"tcp://127.0.0.1:{DEFAULT_ZMQ_CONTROL_PORT}",
                        help="the RE manager's 0MQ control address (default %(default)s)")
    parser.add_argument("--qserver-info", default=f"tcp://127.0.0.1:{DEFAULT_ZMQ_INFO_PORT}",
                        help="the RE manager's 0MQ info address (default %(default)s)")
    parser.add_argument("--qserver-user", default="tcstation web",
                        help="the user the page's queue actions are made as (default "
                             "%(default)r; shown in the queue)")
    parser.add_argument("--qserver-group", default="primary",
                        help="the queueserver user group whose permissions the page's actions "
                             "get (user_group_permissions.yaml; default %(default)s, the "
                             "operators: no exposure plans)")
    parser.add_argument("--warm-limit", type=float, default=DEFAULT_WARM_LIMIT_MINUTES,
                        metavar="MINUTES",
                        help="minutes the sample may be warm before the page warns, when "
                             "the sample ledger has no tolerance for the mounted sample "
                             "(default %(default)s; 0 = not checked)")
    parser.add_argument("--data-dir", type=Path,
                        help="the data directory whose sample ledger the page shows (default "
                             "TCSTATION_DATA_DIR, as the session finds it)")
    for part in ("station", "stream", "queue", "tiled", "ledger"):
        parser.add_argument(f"--no-{part}", action="store_true",
                            help=f"leave the {part} out of the page")
    return parser


def read_api_key(path: Path | None) -> str | None:
    """The key from ``path`` (first line) or ``TCSTATION_WEB_API_KEY``; None if neither."""
    if path is not None:
        try:
            text = path.read_text().strip()
        except OSError as error:
            raise WebConfigError(f"--api-key-file {path}: {error.strerror}") from error
        key = text.splitlines()[0].strip() if text else ""
        if not key:
            raise WebConfigError(f"--api-key-file {path} is empty")
        return key
    return os.environ.get(API_KEY_VARIABLE, "").strip() or None


def tiled_connector():
    """A function connecting to the station's Tiled (the configured one or the local server)."""
    from tcstation.storage.config import StorageConfig
    from tcstation.storage.server import ensure_local_server
    from tcstation.storage.tiled import connect

    config = StorageConfig.from_environment()

    def connect_now():
        if config.uses_local_server:
            uri, api_key, _ = ensure_local_server(config)
        else:
            uri, api_key = config.tiled_uri, config.api_key
        return connect(uri, api_key)

    return connect_now


def build_sources(args: argparse.Namespace) -> Sources:
    """The real sources the options ask for (each connects in the background)."""
    from tcstation.web.sources import LiveRun, QueueMonitor, RecentRuns, StationMonitor, load_ledger

    sources = Sources()
    if not args.no_ledger:
        from tcstation.storage.config import StorageConfigError

        if args.data_dir is not None and not args.data_dir.is_dir():
            raise WebConfigError(f"--data-dir {args.data_dir} is not a directory")
        try:
            sources.ledger = load_ledger(None if args.data_dir is None
                                         else args.data_dir.resolve())
        except StorageConfigError as error:
            raise WebConfigError(f"the sample ledger: {error}") from error
    if not args.no_station:
        from tcstation.devices.station import load_prefixes, station_prefixes

        prefixes = (load_prefixes(args.station_config) if args.station_config
                    else station_prefixes(args.prefix))
        from tcstation.ca_renewal import start_channel_renewal

        # As a session does: a CA repeater (pyepics wants one) and channels renewed at
        # once when a restarted IOC's beacons arrive, so the page recovers within a second.
        sources.channel_renewal = start_channel_renewal()
        sources.station = StationMonitor(prefixes, warm_limit=60.0 * args.warm_limit or None,
                                         ledger=sources.ledger)
    if not args.no_stream:
        sources.live = LiveRun()
        sources.live.follow(args.stream)
    if not args.no_queue:
        from bluesky_queueserver_api.zmq import REManagerAPI

        api = REManagerAPI(zmq_control_addr=args.qserver_control,
                           zmq_info_addr=args.qserver_info, timeout_recv=2.0)
        api.user, api.user_group = args.qserver_user, args.qserver_group
        sources.queue = QueueMonitor(api).start()
    if not args.no_tiled:
        sources.runs = RecentRuns(tiled_connector())
    return sources


def close_sources(sources: Sources) -> None:
    for source in (sources.queue, sources.live, sources.station):
        if source is not None:
            source.close()
    if sources.channel_renewal is not None:
        sources.channel_renewal.stop()


def web_main(argv: list[str]) -> int:
    """``tcstation web [--host H] [--port P] ...``: serve the page until Ctrl-C.

    Returns
    -------
    int
        0 after Ctrl-C, 2 for a setting that cannot be served (one line, no traceback).
    """
    try:
        args = web_parser().parse_args(argv)
        if not 1 <= args.port <= 65535:
            raise WebConfigError(f"--port {args.port}: expected 1..65535")
        if args.warm_limit < 0:
            raise WebConfigError(f"--warm-limit {args.warm_limit:g}: expected minutes >= 0")
        if not RATE_RANGE[0] <= args.rate <= RATE_RANGE[1]:
            raise WebConfigError(f"--rate {args.rate:g}: expected {RATE_RANGE[0]:g} to "
                                 f"{RATE_RANGE[1]:g} updates a second")
        api_key = read_api_key(args.api_key_file)
        check_binding(args.host, args.allow_remote, api_key)
        sources = build_sources(args)
        app = create_app(sources, api_key=api_key, rate=args.rate)
    except WebConfigError as error:
        print(f"tcstation web: {error}", file=sys.stderr)
        return 2
    import uvicorn

    print(f"the operator's page: http://{args.host}:{args.port}/ (queue actions "
          f"{'need the key' if api_key else 'off: no key given'}); Ctrl-C ends", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        close_sources(sources)
    return 0
