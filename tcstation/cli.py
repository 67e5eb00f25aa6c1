"""The ``tcstation`` command line."""

from __future__ import annotations

import argparse
import sys


def _run_ioc(argv: list[str]) -> int:
    from ioc_sim.station import main as ioc_main

    return ioc_main(argv)


def _run_demo(argv: list[str]) -> int:
    print(
        "tcstation demo: the measurement protocol, Tc table and figures are not built yet;\n"
        "for now the demo serves the simulated station IOC at a 60x speed-up.\n"
        "In another shell, for example:\n"
        "  EPICS_CA_ADDR_LIST=127.0.0.1 EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CA_SERVER_PORT=5075 \\\n"
        "    .venv/bin/python -m caproto.commandline.get TCS:TC:IN1 TCS:LIA1:X\n"
        "Stop it with Ctrl-C.",
        flush=True,
    )
    return _run_ioc(["--speedup", "60", *argv])


def _run_replay(argv: list[str]) -> int:
    from tcstation.storage import replay_main

    return replay_main(argv)


def _run_tiled(argv: list[str]) -> int:
    from tcstation.storage_server import serve_main

    return serve_main(argv)


COMMANDS = {
    "ioc": (_run_ioc, "serve the simulated station over Channel Access (see `tcstation ioc -h`)"),
    "demo": (_run_demo, "run the demonstration (for now: the simulated station IOC)"),
    "replay": (_run_replay, "write the runs kept in the local spool into Tiled, exactly once "
                            "(see `tcstation replay -h`)"),
    "tiled": (_run_tiled, "serve the local Tiled store of TCSTATION_DATA_DIR until Ctrl-C"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="tcstation",
        description="Control and data stack of the cryogenic Tc measurement station.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS),
                        help="; ".join(f"{name}: {text}" for name, (_, text) in COMMANDS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the command")
    if not argv:
        parser.print_help()
        return 2
    options = parser.parse_args(argv[:1])
    run, _ = COMMANDS[options.command]
    try:
        return run(argv[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
