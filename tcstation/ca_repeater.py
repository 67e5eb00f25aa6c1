"""A Channel Access repeater (caproto's) that stops once the process that started it is gone.

``python -m tcstation.ca_repeater [--owner-pid PID]``, on ``EPICS_CA_REPEATER_PORT``.
Started by :func:`tcstation.ioc_process.start_repeater`; an owner killed without
stopping it must not leave it running (as the Tiled server does).
"""

from __future__ import annotations

import argparse

from caproto.sync.repeater import run

from tcstation.processes import stop_when_orphaned


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tcstation.ca_repeater",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--owner-pid", type=int, default=None,
                        help="stop once this process is no longer the parent")
    options = parser.parse_args(argv)
    if options.owner_pid is not None:
        stop_when_orphaned(options.owner_pid, "CA repeater")
    run()


if __name__ == "__main__":
    main()
