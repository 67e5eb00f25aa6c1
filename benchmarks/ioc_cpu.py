"""CPU used by the simulated station IOC at several speed-ups.

The station must leave room on a 2-core machine for the RunEngine and Tiled, so
this prints the IOC process's CPU share (percent of one core) while a client
monitors the readings a measurement uses, for speed-ups 1 and 60 (and any
given with --speedups).  It also prints the floor: a bare caproto IOC serving
one counter at the same update rate, measured in the same run.

    python benchmarks/ioc_cpu.py [--seconds 20] [--speedups 1 60 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

from tcstation.ioc_process import SimulatedStationProcess, free_port, loopback_client_environment

MONITORED = ("TC:IN1", "TC:IN2", "TC:HTR1", "LIA1:X", "LIA1:Y", "LIA2:X", "LIA2:Y",
             "SRC:CurrMeas", "SIM:Time_RBV", "SIM:SampleTemp_RBV")

FLOOR_IOC = textwrap.dedent("""
    import sys
    from caproto.server import PVGroup, pvproperty, run
    class Counter(PVGroup):
        count = pvproperty(value=0.0, name="SIM:Time_RBV")
        @count.scan(period=0.1)
        async def count(self, instance, async_lib):
            await instance.write(instance.value + 1.0)
    run(Counter(prefix=sys.argv[1]).pvdb, interfaces=["127.0.0.1"])
""")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(pid: int, prefix: str, names: tuple[str, ...], seconds: float) -> float:
    """Percent of one core used by ``pid`` over ``seconds`` while names are monitored."""
    from caproto.threading.client import Context

    context = Context()
    updates = [0]
    subscriptions = []
    for pv in context.get_pvs(*(prefix + name for name in names), timeout=10.0):
        subscription = pv.subscribe(data_type="time")
        subscription.add_callback(lambda sub, response: updates.__setitem__(0, updates[0] + 1))
        subscriptions.append(subscription)
    time.sleep(2.0)
    start_cpu, start_wall = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    used = cpu_seconds(pid) - start_cpu
    wall = time.monotonic() - start_wall
    for subscription in subscriptions:
        subscription.clear()
    context.disconnect()
    return 100.0 * used / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument("--speedups", type=float, nargs="+", default=[1.0, 60.0])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    port = free_port()
    os.environ.update(loopback_client_environment(port))
    print(f"# IOC CPU benchmark, {time.strftime('%Y-%m-%d')}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.seconds:g} s windows, {len(MONITORED)} PVs monitored")
    floor_prefix = f"B{uuid.uuid4().hex[:6]}:"
    floor = subprocess.Popen([sys.executable, "-c", FLOOR_IOC, floor_prefix],
                             env={**os.environ, "EPICS_CAS_SERVER_PORT": str(port)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        floor_cpu = measure(floor.pid, floor_prefix, ("SIM:Time_RBV",), args.seconds)
    finally:
        floor.terminate()
        floor.wait()
    print(f"{'IOC':32s} {'CPU % of one core':>18s} {'ratio to floor':>15s}")
    print(f"{'floor: 1 PV at 10 Hz':32s} {floor_cpu:18.1f} {1.0:15.1f}")
    conditions = f"{args.seconds:g} s window, {len(MONITORED)} PVs monitored"
    figures = [{"what": "IOC CPU floor: bare caproto IOC, 1 PV at 10 Hz", "value": floor_cpu,
                "text": f"{floor_cpu:.1f} % of one core", "conditions": f"{args.seconds:g} s "
                "window, 1 PV monitored"}]
    for speedup in args.speedups:
        station = SimulatedStationProcess(f"B{uuid.uuid4().hex[:6]}:", port, speedup=speedup)
        with station:
            cpu = measure(station.process.pid, station.prefix, MONITORED, args.seconds)
        print(f"{f'station, speed-up {speedup:g}':32s} {cpu:18.1f} "
              f"{cpu / max(floor_cpu, 0.1):15.1f}")
        figures.append({"what": f"IOC CPU, station at speed-up {speedup:g}", "value": cpu,
                        "text": f"{cpu:.1f} % of one core ({cpu / max(floor_cpu, 0.1):.1f}x "
                                "the floor)", "conditions": conditions + ", IOC idle"})
    if args.json is not None:
        args.json.write_text(json.dumps({"benchmark": "ioc_cpu", "title": "IOC CPU",
                                         "conditions": conditions, "figures": figures},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
