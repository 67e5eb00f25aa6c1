"""What writing runs to Tiled costs the RunEngine, how soon events are readable, how fast runs read.

Against a real local Tiled server (a subprocess, SQLite catalog, SQLite tables,
in a temporary directory), this prints:

1. Cost per event in the RunEngine's thread: the same ``count`` run with no
   subscriber (the floor), with the station's writer (spool + worker thread,
   at the chosen ``batch_size=1`` and at 5 and 20), and with a plain
   ``TiledWriter`` in the RunEngine's thread at batch sizes 1 and 20, as a
   ratio against the floor measured in the same process.
2. Latency from an event's emission to its row being readable in Tiled, for
   a ramp-like run (one point every ``--period`` s), per writer batch size.
3. The time to read back a 10,000-event run (xarray and pandas).

    python benchmarks/tiled_write_read.py [--events 300] [--period 0.25] [--points 24]
                                          [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
from bluesky import RunEngine
from bluesky_tiled_plugins import TiledWriter
from ophyd.sim import det, noisy_det
from tiled.client.utils import ClientError

from tcstation.storage import LiveTiledWriter, LocalTiledServer, StorageConfig, read_stream
from tcstation.storage.spool import DocumentSpool
from tcstation.storage.tiled import connect, write_run
from tcstation.storage.writer import LIVE_BATCH_SIZE


class TimedCallback:
    """Adds up the time spent inside a callback (what the RunEngine thread pays for it)."""

    def __init__(self, callback):
        self.callback = callback
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, name: str, doc: dict) -> None:
        started = time.perf_counter()
        self.callback(name, doc)
        self.seconds += time.perf_counter() - started
        self.calls += 1


def timed_count(subscriber, events: int) -> tuple[float, str]:
    """Seconds per event of ``count([det], num=events)`` in a fresh RunEngine, and the uid."""
    run_engine = RunEngine({})
    if subscriber is not None:
        run_engine.subscribe(subscriber)
    started = time.perf_counter()
    (uid,) = run_engine(bp.count([det], num=events))
    return (time.perf_counter() - started) / events, uid


def live_writer(server: LocalTiledServer, directory: Path, batch_size: int) -> LiveTiledWriter:
    spool = DocumentSpool(directory / f"spool-{batch_size}-{time.monotonic_ns()}")
    return LiveTiledWriter(spool, lambda: connect(server.uri, server.api_key), server.uri,
                           batch_size=batch_size)


def cost_per_event(server: LocalTiledServer, directory: Path, events: int) -> dict:
    """Print the cost per event of each writer.

    Returns
    -------
    dict
        By writer: (s in the callback, s of run) per event, and for the spooled writers
        the s per event until the run was complete in Tiled.
    """
    client = connect(server.uri, server.api_key)
    timed_count(None, 20)
    floor = statistics.median(timed_count(None, events)[0] for _ in range(3))
    print(f"\n1. Cost per event in the RunEngine thread, count([det], num={events}), no delay.")
    print("   'in callback': time inside the subscriber per event; 'run': wall time per event,")
    print("   which also carries the CPU the worker thread and the server take on 2 cores.")
    print(f"   {'':34}{'in callback':>12}{'run':>11}{'ratio':>7}")
    print(f"   {'no subscriber (floor)':34}{'':>12}{floor * 1e3:8.3f} ms{1.0:7.2f}")
    costs: dict = {"floor": (0.0, floor)}
    for batch_size in (1, 5, 20):
        writer = live_writer(server, directory, batch_size)
        timed = TimedCallback(writer)
        per_event, uid = timed_count(timed, events)
        stopped = time.perf_counter()
        writer.wait_until_idle(600)
        drained = time.perf_counter() - stopped
        label = f"spool + worker, batch_size={batch_size}"
        print(f"   {label:34}{timed.seconds / events * 1e3:8.3f} ms{per_event * 1e3:8.3f} ms"
              f"{per_event / floor:7.2f}   complete in Tiled {drained:4.1f} s after the stop "
              f"({writer.outcome(uid).name.lower()})")
        writer.close()
        costs[f"spool+worker batch {batch_size}"] = (timed.seconds / events, per_event,
                                                     (per_event * events + drained) / events)
    for batch_size in (1, 20):
        timed = TimedCallback(TiledWriter(client, batch_size=batch_size))
        per_event, _ = timed_count(timed, events)
        label = f"TiledWriter in RE thread, batch={batch_size}"
        print(f"   {label:34}{timed.seconds / events * 1e3:8.3f} ms{per_event * 1e3:8.3f} ms"
              f"{per_event / floor:7.2f}")
        costs[f"TiledWriter batch {batch_size}"] = (timed.seconds / events, per_event)
    return costs


def ramp_plan(points: int, period: float):
    @bpp.run_decorator(md={"plan_name": "ramp_like"})
    def ramp():
        for _ in range(points):
            yield from bps.trigger_and_read([noisy_det])
            yield from bps.sleep(period)
    return ramp()


def latency(server: LocalTiledServer, directory: Path, points: int, period: float) -> dict:
    """Print the emission-to-readable latency; return {batch size: median s}."""
    client = connect(server.uri, server.api_key)
    started = time.perf_counter()
    RunEngine({})(ramp_plan(points, period))
    floor = time.perf_counter() - started
    print(f"\n2. Emission-to-readable latency, {points} points one every {period:g} s "
          "(a ramp at 1 point per 1-3 s is slower still);")
    print(f"   the run's duration against the same run with no subscriber ({floor:.3f} s)")
    medians: dict = {}
    for batch_size in (1, 5, 20):
        writer = live_writer(server, directory, batch_size)
        emitted: dict[int, float] = {}
        readable: dict[int, float] = {}
        current_uid: list[str] = []
        done = threading.Event()

        def note_emission(name: str, doc: dict, emitted=emitted, current_uid=current_uid) -> None:
            if name == "start":
                current_uid.append(doc["uid"])
            elif name == "event":
                emitted[doc["seq_num"]] = time.monotonic()

        def poll_tiled(readable=readable, current_uid=current_uid, done=done) -> None:
            table = None
            while not done.is_set():
                if table is None and current_uid and current_uid[0] in client:
                    stream = client[current_uid[0]]
                    if "primary" in stream and "internal" in stream["primary"].base:
                        table = stream["primary"].base["internal"]
                if table is not None:
                    try:
                        seq_nums = table.read(["seq_num"])["seq_num"]
                    except ClientError:  # the table was rewritten in one pass (a deferred run)
                        table = None
                        continue
                    now = time.monotonic()
                    for seq_num in seq_nums:
                        readable.setdefault(int(seq_num), now)
                time.sleep(0.005)

        poller = threading.Thread(target=poll_tiled, daemon=True)
        poller.start()
        run_engine = RunEngine({})
        run_engine.subscribe(writer)
        run_engine.subscribe(note_emission)

        started = time.perf_counter()
        run_engine(ramp_plan(points, period))
        duration = time.perf_counter() - started
        writer.wait_until_idle(60)
        time.sleep(0.1)
        done.set()
        poller.join()
        writer.close()
        delays = [readable[n] - emitted[n] for n in emitted if n in readable]
        print(f"   batch_size={batch_size:<3} median {statistics.median(delays):6.3f} s, "
              f"max {max(delays):6.3f} s, {len(delays)}/{len(emitted)} seen by the poller; "
              f"run {duration:.3f} s = {duration / floor:.3f} x floor")
        medians[batch_size] = statistics.median(delays)
    return medians


def readback(server: LocalTiledServer, events: int = 10_000) -> dict:
    """Print the time to write and read back a long run; return the medians (s)."""
    client = connect(server.uri, server.api_key)
    documents: list[tuple[str, dict]] = []
    run_engine = RunEngine({})
    run_engine.subscribe(lambda name, doc: documents.append((name, doc)))
    (uid,) = run_engine(bp.count([noisy_det, det], num=events))
    started = time.perf_counter()
    write_run(client, documents)
    written = time.perf_counter() - started
    print(f"\n3. A {events}-event run (2 detectors): written in one pass in {written:.2f} s")
    times = {"events": events, "written": written}
    for label, as_dataframe in (("xarray", False), ("pandas", True)):
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            data = read_stream(connect(server.uri, server.api_key)[uid], as_dataframe=as_dataframe)
            timings.append(time.perf_counter() - started)
            assert len(data["noisy_det"]) == events
        print(f"   read back as {label:<6}: median {statistics.median(timings):.3f} s "
              f"(min {min(timings):.3f}, max {max(timings):.3f})")
        times[label] = statistics.median(timings)
    return times


def figures(costs: dict, medians: dict, times: dict, events: int, points: int,
            period: float) -> list[dict]:
    """The figures for the combined table (see ``benchmarks/run_all.py``)."""
    chosen = f"spool+worker batch {LIVE_BATCH_SIZE}"
    in_callback, per_event, to_tiled = costs[chosen]
    floor = costs["floor"][1]
    plain_callback = costs["TiledWriter batch 1"][0]
    return [
        {"what": f"Tiled: cost per event of writing, at the chosen batch size {LIVE_BATCH_SIZE}",
         "value": in_callback,
         "text": (f"{1e3 * in_callback:.2f} ms in the RunEngine thread (spool + hand-off); "
                  f"run {per_event / floor:.2f}x the no-subscriber floor; the worker puts "
                  f"{1 / to_tiled:.0f} events/s into Tiled ({1e3 * to_tiled:.0f} ms each)"),
         "conditions": (f"count([det], num={events}), local Tiled server (SQLite), worker "
                        f"thread; a plain TiledWriter at batch 1 costs "
                        f"{1e3 * plain_callback:.1f} ms an event in the RunEngine thread")},
        {"what": f"Tiled: emission to readable, batch size {LIVE_BATCH_SIZE}",
         "value": medians.get(LIVE_BATCH_SIZE),
         "text": f"{medians.get(LIVE_BATCH_SIZE, float('nan')):.3f} s median",
         "conditions": f"{points} points one every {period:g} s, poller at 5 ms"},
        {"what": f"Tiled: read back a {times['events']:,}-event run",
         "value": times["xarray"],
         "text": f"{times['xarray']:.2f} s (xarray), {times['pandas']:.2f} s (pandas)",
         "conditions": "2 detectors, median of 3 reads, fresh client each time, local server"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="events of the cost run")
    parser.add_argument("--points", type=int, default=24, help="points of the latency run")
    parser.add_argument("--period", type=float, default=0.25, help="s between latency points")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    options = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores")
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        with LocalTiledServer(StorageConfig(data_dir=Path(directory) / "data")) as server:
            print(f"local Tiled server started in {time.perf_counter() - started:.1f} s")
            costs = cost_per_event(server, Path(directory), options.events)
            medians = latency(server, Path(directory), options.points, options.period)
            times = readback(server)
    if options.json is not None:
        options.json.write_text(json.dumps({
            "benchmark": "tiled_write_read",
            "title": "Tiled",
            "conditions": "local Tiled server, SQLite catalog and tables",
            "figures": figures(costs, medians, times, options.events, options.points,
                               options.period),
            "details": {"costs": costs, "latency": medians, "readback": times},
        }, indent=2))


if __name__ == "__main__":
    main()
