"""The ``tcstation`` command line."""

from __future__ import annotations

import argparse
import sys


def _run_ioc(argv: list[str]) -> int:
    from ioc_sim.station import main as ioc_main

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


def _run_replay(argv: list[str]) -> int:
    from tcstation.storage import replay_main

    return replay_main(argv)


def _run_tiled(argv: list[str]) -> int:
    from tcstation.storage_server import serve_main

    return serve_main(argv)


def _run_qserver(argv: list[str]) -> int:
    from tcstation.queueserver import qserver_main

    return qserver_main(argv)


def _run_watchdog(argv: list[str]) -> int:
    from tcstation.watchdog import watchdog_main

    return watchdog_main(argv)


def _run_qserver_yaml(argv: list[str]) -> int:
    from tcstation.queueserver import yaml_main

    return yaml_main(argv)


def _run_pv_table(argv: list[str]) -> int:
    from tcstation.pv_table import main as pv_table_main

    return pv_table_main(argv)


COMMANDS = {
    "ioc": (_run_ioc, "serve the simulated station over Channel Access (see `tcstation ioc -h`)"),
    "demo": (_run_demo, "run the source experiment's whole protocol on the simulated station, "
                        "with a local Tiled, and write the Tc table and figures"),
    "report": (_run_report, "Tc table and Fig. 1/2-style figures of runs in Tiled "
                            "(`tcstation report [UID|latest]`)"),
    "export": (_run_export, "export a run as CSV or NeXus HDF5 (`tcstation export UID "
                            "--format csv|hdf5`)"),
    "replay": (_run_replay, "write the runs kept in the local spool into Tiled, exactly once "
                            "(see `tcstation replay -h`)"),
    "tiled": (_run_tiled, "serve the local Tiled store of TCSTATION_DATA_DIR until Ctrl-C"),
    "qserver": (_run_qserver, "run the queueserver's RE manager on the station's profile, "
                              "starting Redis if needed (see `tcstation qserver -h`)"),
    "watchdog": (_run_watchdog, "keep the sample below its limit with or without a plan running "
                                "(`tcstation watchdog --prefix P`)"),
    "qserver-yaml": (_run_qserver_yaml, "regenerate (or --check) the profile's "
                                        "existing_plans_and_devices.yaml"),
    "pv-table": (_run_pv_table, "regenerate (or --check) docs/pv-table.md from the instruments' "
                                "contract and the devices"),
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
