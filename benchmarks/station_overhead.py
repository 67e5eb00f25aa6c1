"""Overhead per point: the whole station stack against the RunEngine's floor, in one run.

One "point" is what a transport ramp does for each reading: a checkpoint, the
dc bias moved to the next of 0, 200, 300, 400 mA (the source confirms it with
two fresh measurements), then ``trigger_and_read`` of the transport lock-in
(with the bias source), the cryostat and the lag-corrected temperature.  The
same number of points is run, in one process and one run of this script, by

1. the floor: the RunEngine reading in-process simulated ophyd signals (three
   devices with the same number of fields as the station's, a ``SynAxis`` for
   the bias), no subscriber;
2. the station over Channel Access (simulated IOC subprocess, ophyd, RunEngine)
   with no subscriber;
3. the whole stack: the session of ``tcstation.session.open_session`` (safety
   suspenders, Tiled writer with its spool and worker thread against a local
   Tiled server, live Tc analysis, progress callback).

The time the RunEngine spends waiting for device statuses (``waiting_hook``)
is reported apart: that is the instruments' own time (the lock-in's settle
time and a reading the IOC delivered after it; the bias source's confirmation)
and no software can remove it.  Ratios are of wall time per point; events per
second are their inverse.

    python benchmarks/station_overhead.py [--points 200] [--speedup 600] [--repeats 2]
                                          [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path

from tcstation.ioc_process import SimulatedStationProcess, free_port, loopback_client_environment

TARGET_RATIO = 1.5
LOCKIN_SETTLE = 2.1
"""s: 7 time constants of 300 ms at 12 dB/oct, the ramps' lock-in setting."""
REAL_BIAS_CONFIRMATION = 0.2
"""s: two fresh measurements of the source at a real IOC's 0.1 s scan."""
BIASES = (0.0, 0.2, 0.3, 0.4)


class WaitClock:
    """A RunEngine ``waiting_hook`` adding up the wall time spent waiting on statuses.

    Each wait is labelled with the names of the devices waited for, so the
    bias confirmation and the lock-in's settling are told apart.
    """

    def __init__(self) -> None:
        self.by_label: dict[str, list[float]] = defaultdict(list)
        self._started: float | None = None
        self._label = ""

    def __call__(self, statuses) -> None:
        now = time.perf_counter()
        if statuses is None:
            if self._started is not None:
                self.by_label[self._label].append(now - self._started)
            self._started = None
            return
        names = set()
        for status in statuses:
            device = getattr(status, "device", None) or getattr(status, "obj", None)
            names.add(getattr(device, "name", None) or type(status).__name__)
        self._label = "+".join(sorted(names))
        self._started = now

    @property
    def total(self) -> float:
        return sum(sum(values) for values in self.by_label.values())

    def reset(self) -> None:
        self.by_label.clear()
        self._started = None


def points_plan(bias_device, detectors: list, points: int, md: dict) -> Generator:
    """``points`` ramp-like points in one run: checkpoint, move the bias, trigger and read."""
    from bluesky import plan_stubs as bps
    from bluesky import preprocessors as bpp

    @bpp.run_decorator(md=md)
    def inner() -> Generator:
        for index in range(points):
            yield from bps.checkpoint()
            yield from bps.mv(bias_device, BIASES[index % len(BIASES)])
            yield from bps.trigger_and_read(detectors)

    return (yield from inner())


def floor_devices(shape: list[tuple[str, int]]) -> tuple[object, list]:
    """In-process simulated devices with the station reading's shape: (bias axis, detectors)."""
    import numpy as np
    from ophyd import Component, Device, Signal
    from ophyd.sim import SynAxis

    rng = np.random.default_rng(0)
    detectors = []
    for name, fields in shape:
        attributes = {f"f{index}": Component(Signal, value=float(rng.random()), kind="normal")
                      for index in range(fields)}
        device_class = type(f"Floor_{name}", (Device,), attributes)
        detectors.append(device_class(name=f"floor_{name}"))
    return SynAxis(name="floor_bias"), detectors


class CallbackClock:
    """Adds up the wall time the RunEngine's thread spends in its document callbacks."""

    def __init__(self, engine) -> None:
        self.seconds = 0.0
        self._process = engine.dispatcher.process
        engine.dispatcher.process = self

    def __call__(self, name: str, document: dict) -> None:
        started = time.perf_counter()
        try:
            self._process(name, document)
        finally:
            self.seconds += time.perf_counter() - started


def run_into(engine, plan: Generator, outcome: list) -> None:
    """Run ``plan`` on ``engine``; the run uids go to ``outcome``."""
    outcome.extend(engine(plan))


def timed(run: Callable[[], object], clock: WaitClock | None) -> tuple[float, float]:
    """(wall seconds, seconds waiting on statuses) of one call."""
    if clock is not None:
        clock.reset()
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    return wall, (clock.total if clock is not None else 0.0)


def measure(points: int, repeats: int, speedup: float, data_dir: Path, prefix: str,
            port: int) -> dict:
    """Run the three configurations, interleaved ``repeats`` times; return the raw figures."""
    from bluesky import RunEngine

    from tcstation.plans.ramps import configure_transport, transport_fields
    from tcstation.session import open_session

    ioc_log = data_dir / "ioc.log"
    results: dict = {"points": points, "repeats": repeats, "speedup": speedup}
    with SimulatedStationProcess(prefix, port, speedup=speedup, seed=1, log_path=ioc_log):
        started = time.perf_counter()
        session = open_session(prefix, progress=False, show_tables=False)
        results["session_open_seconds"] = time.perf_counter() - started
        try:
            station = session.station
            bare = RunEngine({})
            bare(configure_transport(station, "surface", 0.024, 13.0))
            detectors = [station.transport, station.cryostat, station.transport_temperature]
            shape = [(detector.name, len(detector.describe())) for detector in detectors]
            results["fields_per_event"] = sum(fields for _, fields in shape)
            floor_bias, floor_detectors = floor_devices(shape)
            floor_engine = RunEngine({})
            bare_clock, stack_clock = WaitClock(), WaitClock()
            bare.waiting_hook = bare_clock
            session.RE.waiting_hook = stack_clock
            md = {"measurement": "transport", "fields": transport_fields(station),
                  "purpose": "benchmark: overhead per point",
                  "sample": {"name": "mg_mgo", "contacts": "surface"}}
            configurations = {
                "floor": (floor_engine, lambda n: points_plan(floor_bias, floor_detectors, n,
                                                              {"purpose": "floor"}), None),
                "station": (bare, lambda n: points_plan(station.bias_source, detectors, n, md),
                            bare_clock),
                "stack": (session.RE, lambda n: points_plan(station.bias_source, detectors, n,
                                                            md), stack_clock),
            }
            for engine, plan, _ in configurations.values():  # warm-up: connections, caches
                engine(plan(8))
            session.storage.writer.wait_until_idle(60.0)
            samples: dict[str, list[tuple[float, float]]] = {key: [] for key in configurations}
            labels: dict[str, dict[str, list[float]]] = {"station": {}, "stack": {}}
            uids = []
            callbacks = CallbackClock(session.RE)
            callback_seconds = []
            for _ in range(repeats):
                for key, (engine, plan, clock) in configurations.items():
                    outcome: list = []
                    callbacks.seconds = 0.0
                    samples[key].append(timed(partial(run_into, engine, plan(points), outcome),
                                              clock))
                    if key == "stack":
                        uids.extend(outcome)
                        callback_seconds.append(callbacks.seconds)
                    if clock is not None:
                        for label, values in clock.by_label.items():
                            labels[key].setdefault(label, []).extend(values)
            drain_started = time.perf_counter()
            session.storage.writer.wait_until_idle(120.0)
            results["tiled_drain_seconds"] = time.perf_counter() - drain_started
            for thread in session.pending_stores:
                thread.join(30.0)
            client = session.storage.runs
            results["events_in_tiled"] = [len(client[uid]["primary"].read()["time"])
                                          for uid in uids]
            results["live_tables"] = [len(session.tc_tables.get(uid, (None, []))[1])
                                      for uid in uids]
        finally:
            session.close()
    best = min(range(repeats), key=lambda index: samples["stack"][index][0])
    results["stack_callbacks_per_point"] = callback_seconds[best] / points
    for key, values in samples.items():
        # the best of the repeats: the machine is shared, the least disturbed run is the cost
        wall, waited = min(values, key=lambda pair: pair[0])
        results[key] = {"seconds_per_point": wall / points, "waiting_per_point": waited / points,
                        "all_seconds_per_point": [pair[0] / points for pair in values]}
    results["waits"] = {key: {label: {"count": len(values),
                                      "mean_ms": 1e3 * statistics.fmean(values)}
                              for label, values in by_label.items()}
                        for key, by_label in labels.items()}
    return results


def figures(results: dict) -> list[dict]:
    """The figures for the combined table (see ``benchmarks/run_all.py``)."""
    points, speedup = results["points"], results["speedup"]
    floor = results["floor"]["seconds_per_point"]
    station = results["station"]["seconds_per_point"]
    stack = results["stack"]["seconds_per_point"]
    waits = results["stack"]["waiting_per_point"]
    software = stack - waits
    callbacks = results["stack_callbacks_per_point"]
    ratio = stack / floor
    conditions = (f"{points} points x best of {results['repeats']}, IOC at {speedup:g}x, "
                  f"{results['fields_per_event']} fields per event")
    wait_text = ", ".join(f"{label} {entry['mean_ms']:.1f} ms"
                          for label, entry in results["waits"]["stack"].items())
    met = ratio <= TARGET_RATIO
    settle = LOCKIN_SETTLE / speedup
    real_point = LOCKIN_SETTLE + REAL_BIAS_CONFIRMATION
    why = "" if met else (
        f"{1e3 * waits:.1f} of the {1e3 * stack:.1f} ms a point takes are the instruments' "
        f"own time ({wait_text}): the lock-in's {LOCKIN_SETTLE:g} s settle "
        f"({1e3 * settle:.1f} ms wall at {speedup:g}x) then a fresh IOC update, and the bias "
        "source's two fresh measurements after the put; the simulated IOC publishes every "
        "1/60 s, so each confirmation costs whole ticks. The software alone takes "
        f"{1e3 * software:.2f} ms a point, {software / floor:.1f}x the floor "
        f"({1e3 * callbacks:.2f} ms in the Tiled writer's hand-off, live analysis and "
        "progress callbacks; the rest is CA monitors, ophyd and the RunEngine). To close the "
        "gap: confirm the bias on its setpoint readback plus one fresh measurement, and "
        "publish the source's measurement at once after a put (or a shorter IOC tick at "
        "high speed-ups); no software change reaches 1.5x of an in-process floor while "
        f"points wait for instruments. On real instruments (~{real_point:.1f} s of waits a "
        f"point) the software adds {100 * software / real_point:.2f} %")
    return [
        {"what": "floor: RunEngine, in-process ophyd.sim signals, no subscriber",
         "value": 1.0 / floor, "text": f"{1.0 / floor:,.0f} events/s ({1e3 * floor:.2f} ms/pt)",
         "conditions": conditions},
        {"what": "station over CA (IOC, ophyd, RunEngine), no subscriber",
         "value": 1.0 / station,
         "text": f"{1.0 / station:,.1f} events/s ({1e3 * station:.1f} ms/pt, "
                 f"{1e3 * results['station']['waiting_per_point']:.1f} ms waiting)",
         "conditions": conditions},
        {"what": "whole stack (session: + Tiled writer, live analysis, suspenders)",
         "value": 1.0 / stack,
         "text": f"{1.0 / stack:,.1f} events/s ({1e3 * stack:.1f} ms/pt: {1e3 * waits:.1f} ms "
                 f"instrument waits, {1e3 * software:.2f} ms software, of which "
                 f"{1e3 * callbacks:.2f} ms in document callbacks)",
         "conditions": conditions + f"; waits: {wait_text}"},
        {"what": "overhead per point: whole stack / floor", "value": ratio,
         "text": f"{ratio:.1f}x", "target": f"<= {TARGET_RATIO:g}x", "met": met,
         "conditions": conditions, "note": why},
        {"what": "software only: (whole stack - instrument waits) / floor",
         "value": software / floor, "text": f"{software / floor:.1f}x",
         "conditions": conditions},
        {"what": "whole stack / (floor + the instruments' waits)",
         "value": stack / (floor + waits), "text": f"{stack / (floor + waits):.2f}x",
         "conditions": conditions,
         "note": "what the 1.5x target can mean for a stack that must wait for instruments"},
    ]


def report(results: dict) -> None:
    """Print the figures with their conditions."""
    print(f"# Overhead per point, {time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# {results['points']} points per run, best of {results['repeats']} interleaved "
          f"runs; IOC speed-up {results['speedup']:g}; {results['fields_per_event']} fields "
          f"per event; biases cycled {', '.join(f'{1e3 * b:g}' for b in BIASES)} mA")
    print(f"{'configuration':28s}{'ms/point':>10s}{'waiting':>10s}{'events/s':>10s}"
          f"{'ratio':>8s}   all runs (ms/point)")
    floor = results["floor"]["seconds_per_point"]
    for key, label in (("floor", "floor (ophyd.sim, no sub)"),
                       ("station", "station over CA, no sub"),
                       ("stack", "whole stack (session)")):
        entry = results[key]
        print(f"{label:28s}{1e3 * entry['seconds_per_point']:10.2f}"
              f"{1e3 * entry['waiting_per_point']:10.2f}{1 / entry['seconds_per_point']:10.1f}"
              f"{entry['seconds_per_point'] / floor:8.1f}   "
              + " ".join(f"{1e3 * value:.2f}" for value in entry["all_seconds_per_point"]))
    for key, by_label in results["waits"].items():
        for label, entry in by_label.items():
            print(f"  {key}: waiting on {label}: {entry['mean_ms']:.1f} ms mean "
                  f"({entry['count']} waits)")
    print(f"session opened in {results['session_open_seconds']:.1f} s (local Tiled server); "
          f"Tiled caught up {results['tiled_drain_seconds']:.2f} s after the last run; "
          f"events in Tiled per stack run: {results['events_in_tiled']}; "
          f"live Tc table rows: {results['live_tables']}")
    for figure in figures(results):
        line = f"{figure['what']}: {figure['text']}"
        if "target" in figure:
            line += f"  [target {figure['target']}: {'met' if figure['met'] else 'MISSED'}]"
        print(line)
        if figure.get("note") and "target" in figure:
            print(f"  why: {figure['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200, help="points per run (200)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats (2)")
    parser.add_argument("--speedup", type=float, default=600.0,
                        help="IOC speed-up (600: the lock-in settles in 3.5 ms of wall time)")
    parser.add_argument("--quick", action="store_true", help="40 points, one repeat")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    options = parser.parse_args(argv)
    if options.quick:
        options.points, options.repeats = 40, 1
    port = free_port()
    # Before anything imports pyepics: its context reads these once.
    os.environ.update(loopback_client_environment(port))
    os.environ.pop("TCSTATION_TILED_URI", None)
    with tempfile.TemporaryDirectory(prefix="tcs-overhead-") as directory:
        os.environ["TCSTATION_DATA_DIR"] = str(Path(directory) / "data")
        results = measure(options.points, options.repeats, options.speedup, Path(directory),
                          f"BO{uuid.uuid4().hex[:6]}:", port)
    report(results)
    if options.json is not None:
        options.json.write_text(json.dumps({
            "benchmark": "station_overhead",
            "title": "Overhead per point",
            "conditions": (f"IOC at {options.speedup:g}x, {options.points} points per run, "
                           f"best of {options.repeats}"),
            "figures": figures(results),
            "details": results,
        }, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
