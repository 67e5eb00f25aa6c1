"""Simulation speed: the speed-up the simulated station IOC holds, with the physics on.

For each speed-up the IOC is started as a subprocess and set working as in a
transport ramp (transport insert on the oxidised surface, 300 mA bias on, the
cryostat ramping towards 70 K), so every simulation step
evaluates the sample's physics at a new temperature (the ramp rate is chosen
so that the sample sweeps from base to 70 K over the window, through the
transitions).  A Channel Access client
then monitors the readings a measurement uses and reads two of them ten times
a second, while this prints over a window of ``--seconds``:

* the held speed-up: simulated seconds advanced (``SIM:Time_RBV``) per wall
  second;
* the simulation steps per wall second against the IOC's nominal rate
  (``1 / SIM:Tick_RBV``) and the simulated seconds per step (mean and
  largest): the IOC's clock follows the wall clock times the speed-up by
  construction, so an IOC that cannot keep up shows as fewer, larger steps
  (readings refreshed less often), not as a slower clock;
* the IOC process's CPU, percent of one core.

The IOC "keeps up" when it makes at least 80 % of its nominal steps and holds
the speed-up within 2 %.  (Its loop sleeps one tick after each step, so even
an idle IOC makes 1 / (tick + step time) steps a second, a little under
nominal.)

    python benchmarks/sim_speed.py [--seconds 10] [--speedups 60 200 600 1000 2000]
                                   [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import uuid
from pathlib import Path

from tcstation.ioc_process import SimulatedStationProcess, free_port, loopback_client_environment

MONITORED = ("TC:IN1", "TC:IN2", "TC:HTR1", "LIA1:X", "LIA1:Y", "LIA2:X", "LIA2:Y",
             "SRC:CurrMeas", "SIM:SampleTemp_RBV")
READ_LOOP = ("TC:IN2", "LIA2:X")
READ_PERIOD = 0.1  # wall s between the client's reads
KEEP_UP_STEPS = 0.8
KEEP_UP_SPEEDUP = 0.02
RAMP_TOP = 70.0  # K
WARM_UP = 2.0  # wall s before the window


def ramp_settings(speedup: float, seconds: float) -> tuple[tuple[str, object], ...]:
    """PV, value pairs: a transport ramp that sweeps from base to 70 K over the window."""
    rate = (RAMP_TOP - 4.2) / ((seconds + WARM_UP) * speedup / 60.0)
    return (("ENV:Insert", "transport"), ("ENV:Contacts", "surface"), ("SRC:Output", "On"),
            ("SRC:Curr", 0.3), ("TC:OUT1:Mode", "Closed Loop"), ("TC:HTR1:Range", "High"),
            ("TC:RampR1", round(min(max(rate, 0.1), 100.0), 3)), ("TC:OnRamp1", "On"),
            ("TC:OUT1:SP", RAMP_TOP))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(ioc: SimulatedStationProcess, seconds: float) -> dict:
    """Set the IOC ramping, then watch its clock, readings and CPU for ``seconds``."""
    from caproto import ChannelType
    from caproto.threading.client import Context

    context = Context()
    prefix = ioc.prefix
    try:
        ramp = ramp_settings(ioc.speedup, seconds)
        settings = context.get_pvs(*(prefix + name for name, _ in ramp), timeout=10.0)
        for pv, (_, value) in zip(settings, ramp, strict=True):
            kind = ChannelType.STRING if isinstance(value, str) else None
            pv.write([value], data_type=kind, wait=True, timeout=10.0)
        clock_pv, tick_pv = context.get_pvs(prefix + "SIM:Time_RBV", prefix + "SIM:Tick_RBV",
                                            timeout=10.0)
        tick = float(tick_pv.read().data[0])
        arrivals: list[tuple[float, float]] = []
        updates = [0]
        lock = threading.Lock()

        def clock_update(subscription, response) -> None:
            with lock:
                arrivals.append((time.monotonic(), float(response.data[0])))

        def reading_update(subscription, response) -> None:
            updates[0] += 1

        subscriptions = []
        clock_subscription = clock_pv.subscribe(data_type="time")
        clock_subscription.add_callback(clock_update)
        subscriptions.append(clock_subscription)
        for pv in context.get_pvs(*(prefix + name for name in MONITORED), timeout=10.0):
            subscription = pv.subscribe(data_type="time")
            subscription.add_callback(reading_update)
            subscriptions.append(subscription)
        readers = context.get_pvs(*(prefix + name for name in READ_LOOP), timeout=10.0)
        sample_pv = context.get_pvs(prefix + "SIM:SampleTemp_RBV", timeout=10.0)[0]
        time.sleep(WARM_UP)
        first_temperature = float(sample_pv.read().data[0])
        with lock:
            arrivals.clear()
        updates[0] = 0
        start_cpu, start_wall = cpu_seconds(ioc.process.pid), time.monotonic()
        reads = 0
        while time.monotonic() - start_wall < seconds:
            for pv in readers:
                pv.read(timeout=5.0)
                reads += 1
            time.sleep(READ_PERIOD)
        used = cpu_seconds(ioc.process.pid) - start_cpu
        wall = time.monotonic() - start_wall
        last_temperature = float(sample_pv.read().data[0])
        for subscription in subscriptions:
            subscription.clear()
    finally:
        context.disconnect()
    with lock:
        window = list(arrivals)
    steps = [b[1] - a[1] for a, b in zip(window, window[1:], strict=False)]
    gaps = [b[0] - a[0] for a, b in zip(window, window[1:], strict=False)]
    span_wall = window[-1][0] - window[0][0]
    return {
        "speedup": ioc.speedup,
        "tick": tick,
        "nominal_steps_per_second": 1.0 / tick,
        "held_speedup": (window[-1][1] - window[0][1]) / span_wall,
        "steps_per_second": len(steps) / span_wall,
        "mean_step": sum(steps) / len(steps),
        "largest_step": max(steps),
        "largest_gap_wall": max(gaps),
        "cpu_percent": 100.0 * used / wall,
        "monitor_updates_per_second": updates[0] / wall,
        "client_reads": reads,
        "sample_temperature": (first_temperature, last_temperature),
        "window": wall,
        "ramp_rate": dict(ramp)["TC:RampR1"],
    }


def keeps_up(result: dict) -> bool:
    """At least 80 % of the nominal steps, and the nominal speed-up within 2 %."""
    return (result["steps_per_second"] >= KEEP_UP_STEPS * result["nominal_steps_per_second"]
            and abs(result["held_speedup"] / result["speedup"] - 1.0) <= KEEP_UP_SPEEDUP)


def figures(results: list[dict], seconds: float) -> list[dict]:
    """The figures for the combined table (see ``benchmarks/run_all.py``)."""
    rows = []
    for result in results:
        what = f"IOC speed-up {result['speedup']:g}"
        if "refused" in result:
            rows.append({"what": what, "value": None, "text": "refused",
                         "conditions": "", "note": result["refused"]})
            continue
        ok = keeps_up(result)
        low, high = result["sample_temperature"]
        rows.append({
            "what": what, "value": result["held_speedup"],
            "text": (f"holds {result['held_speedup']:.1f}x, {result['steps_per_second']:.1f} of "
                     f"{result['nominal_steps_per_second']:.0f} steps/s, "
                     f"{result['mean_step']:.2f} sim s/step (max {result['largest_step']:.1f}), "
                     f"IOC CPU {result['cpu_percent']:.0f} %"),
            "conditions": (f"{seconds:g} s window, ramp {result['ramp_rate']:g} K/min, sample "
                           f"{low:.1f} -> {high:.1f} K, 300 mA bias, {len(MONITORED) + 1} PVs "
                           f"monitored, {len(READ_LOOP)} read at {1 / READ_PERIOD:g} Hz"),
            "note": "keeps up" if ok else (
                "does not keep up: fewer, larger steps than nominal (readings refresh less "
                "often); the CPU of one step bounds the rate"),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window (10 s)")
    parser.add_argument("--speedups", type=float, nargs="+",
                        default=[60.0, 200.0, 600.0, 1000.0, 2000.0])
    parser.add_argument("--quick", action="store_true", help="5 s windows")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds = 5.0
    port = free_port()
    os.environ.update(loopback_client_environment(port))
    print(f"# Simulation speed, {time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, {options.seconds:g} s "
          f"windows; IOC ramping from base to 70 K over the window, transport insert, 300 mA bias; "
          f"{len(MONITORED) + 1} PVs monitored, {len(READ_LOOP)} read every {READ_PERIOD:g} s")
    print(f"{'speed-up':>9s}{'held':>9s}{'steps/s':>9s}{'nominal':>9s}{'sim s/step':>11s}"
          f"{'max step':>9s}{'max gap':>9s}{'IOC CPU':>9s}{'T sample (K)':>16s}  keeps up")
    results = []
    for speedup in options.speedups:
        ioc = SimulatedStationProcess(f"BS{uuid.uuid4().hex[:6]}:", port, speedup=speedup,
                                      seed=1)
        try:
            ioc.start()
        except (RuntimeError, TimeoutError) as err:
            results.append({"speedup": speedup, "refused": str(err).split(" (command")[0]
                            + "; the IOC accepts speed-ups of 0.1 to 1000"})
            print(f"{speedup:9g}  refused: {results[-1]['refused']}")
            continue
        try:
            result = measure(ioc, options.seconds)
        finally:
            ioc.stop()
        results.append(result)
        low, high = result["sample_temperature"]
        print(f"{speedup:9g}{result['held_speedup']:9.1f}{result['steps_per_second']:9.1f}"
              f"{result['nominal_steps_per_second']:9.1f}{result['mean_step']:11.2f}"
              f"{result['largest_step']:9.2f}{result['largest_gap_wall']:8.3f}s"
              f"{result['cpu_percent']:8.1f}%{low:8.1f}->{high:5.1f}  "
              f"{'yes' if keeps_up(result) else 'NO'}")
    if options.json is not None:
        options.json.write_text(json.dumps({
            "benchmark": "sim_speed",
            "title": "Simulation speed",
            "conditions": f"{options.seconds:g} s windows, physics on (ramping, bias on)",
            "figures": figures(results, options.seconds),
            "details": results,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
