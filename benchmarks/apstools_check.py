"""apstools' LakeShore 336 classes against the simulated station, from a venv with nothing of ours.

Run it with a Python that has apstools (which pulls in databroker 1.x: keep it
out of the project's venv), e.g.::

    python3 -m venv ../apstools-venv && ../apstools-venv/bin/pip install apstools
    ../apstools-venv/bin/python benchmarks/apstools_check.py

It starts ``tcstation ioc`` from the project's venv (``--tcstation``), then

1. connects apstools' ``LakeShore336Device`` (both loops, inputs C and D, the
   ``read``/``readAll``/``serial`` records) and reads record fields
   (``IN2.EGU``, ``IN2.DESC``, ``OUT1:SP.DRVH``) with a plain pyepics client;
2. moves ``LakeShore336_LoopControl`` (loop 1) with ``move(target, wait=True)``
   several times and, for each, compares the moment ``move()`` reported done
   with the moment the readback (``IN1``) first came within the positioner's
   tolerance of the target: a done before the readback got there is a done
   that did not wait for the move.

Exit code 2 (skipped) when apstools is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ioc(tcstation: str, prefix: str, port: int, speedup: float) -> subprocess.Popen:
    return subprocess.Popen(
        [tcstation, "ioc", "--prefix", prefix, "--port", str(port), "--speedup", str(speedup),
         "--no-noise"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tcstation", default=str(ROOT / ".venv" / "bin" / "tcstation"),
                        help="the tcstation command of the project's venv")
    parser.add_argument("--speedup", type=float, default=60.0)
    parser.add_argument("--moves", type=int, default=8)
    parser.add_argument("--setpoint-readback", action="store_true",
                        help="judge the position against the setpoint's readback instead of the "
                        "positioner's target (use_target=False)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    port = free_port()
    os.environ.update(EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}", EPICS_CA_AUTO_ADDR_LIST="NO")
    try:
        import epics
        from apstools.devices import LakeShore336Device
    except ImportError as err:
        print(f"skipped: {err}")
        return SKIPPED
    prefix = f"APS{port}:"
    ioc = start_ioc(args.tcstation, prefix, port, args.speedup)
    try:
        print(ioc.stdout.readline().strip())
        return check(prefix + "TC:", args, epics, LakeShore336Device)
    finally:
        ioc.terminate()
        ioc.wait(10)


def check(prefix: str, args, epics, device_class) -> int:
    figures = {}
    started = time.monotonic()
    controller = device_class(prefix, name="ls336")
    controller.wait_for_connection(timeout=30)
    signals = list(controller.walk_signals())
    missing = [walk.item.name for walk in signals if not walk.item.connected]
    figures["connect"] = {"signals": len(signals), "missing": missing,
                          "seconds": round(time.monotonic() - started, 2)}
    print(f"LakeShore336Device: {len(signals) - len(missing)} of {len(signals)} signals "
          f"connected in {figures['connect']['seconds']} s" + (f"; missing {missing}"
                                                                 if missing else ""))
    fields = {}
    for name in ("IN2.EGU", "IN2.DESC", "OUT1:SP.DRVH", "OUT1:SP.DRVL", "IN2:Kelvin.HOPR"):
        fields[name] = epics.caget(prefix + name, timeout=5)
        print(f"  caget {prefix}{name} = {fields[name]!r}")
    figures["fields"] = fields

    loop = controller.loop1
    if args.setpoint_readback:
        loop.use_target = False
    loop.heater_range.put("High", wait=True)
    loop.mode.put("Closed Loop", wait=True)
    loop.ramp_on.put("Off", wait=True)
    tolerance = float(loop.tolerance.get())
    arrivals = []
    lock = threading.Lock()

    def readback_changed(value=None, **kwargs):
        with lock:
            if arrivals and arrivals[-1]["reached"] is None and value is not None and abs(
                    value - arrivals[-1]["target"]) <= tolerance:
                arrivals[-1]["reached"] = time.monotonic()

    def target_changed(value=None, **kwargs):
        with lock:
            if arrivals and arrivals[-1]["target_seen"] is None and value == arrivals[-1]["target"]:
                arrivals[-1]["target_seen"] = time.monotonic()

    loop.readback.subscribe(readback_changed, run=False)
    loop.target.subscribe(target_changed, run=False)
    first = float(loop.readback.get())
    targets = [round(first + 2.0 * (index + 1), 3) for index in range(args.moves)]
    moves = []
    for target in targets:
        with lock:
            arrivals.append({"target": target, "reached": None, "target_seen": None})
        began = time.monotonic()
        loop.move(target, wait=True, timeout=600)
        done = time.monotonic()
        final = float(loop.readback.get())
        time.sleep(0.5)  # let a late target update or readback arrive, to time it
        with lock:
            reached, seen = arrivals[-1]["reached"], arrivals[-1]["target_seen"]
        move = {"target": round(target, 3), "done_after_s": round(done - began, 3),
                "readback_reached_after_s": None if reached is None else round(reached - began, 3),
                "target_updated_after_s": None if seen is None else round(seen - began, 3),
                "readback_at_done": round(final, 4)}
        move["waited"] = reached is not None and reached <= done
        moves.append(move)
        print(f"  move to {target:.3f} K: done after {move['done_after_s']:.3f} s, readback "
              f"within {tolerance:g} K after {move['readback_reached_after_s']} s, "
              f"positioner's target updated after {move['target_updated_after_s']} s "
              f"(reads {final:.3f} K at done){'' if move['waited'] else '  <- did not wait'}")
    figures["moves"] = moves
    waited = sum(move["waited"] for move in moves)
    print(f"move(): {waited} of {len(moves)} waited for the readback to reach the target "
          f"(speed-up {args.speedup:g}, tolerance {tolerance:g} K)")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    controller.destroy()
    return 0 if not missing and waited == len(moves) else 1


if __name__ == "__main__":
    sys.exit(main())
