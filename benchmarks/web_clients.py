"""How many operator pages one station serves, at what update rate, before the CPU rises 10 %.

Starts the simulated station IOC, a document stream proxy and ``tcstation web`` (station
and document stream; no queueserver, no Tiled: their pollers do not depend on the number
of pages), publishes a synthetic two-bias transport ramp to the stream while it measures
(``--events-per-second``, 0 for an idle station), then opens N page feeds
(``/api/events``, Server-Sent Events, what every open page holds) at each update
rate and prints the CPU share (percent of one core) of the web process and of the IOC,
with the messages each client got. The verdict per rate: the largest N whose web-process
CPU stays below the no-client figure plus 10 percentage points of one core, and whether
the clients kept up (got at least 90 % of the updates).

    python benchmarks/web_clients.py [--seconds 10] [--rates 1 2 5] [--clients 1 5 10 25 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from event_model import compose_run

from tcstation.ioc_process import SimulatedStationProcess, free_port, loopback_client_environment
from tcstation.storage.server import free_tcp_port
from tcstation.stream import StreamConfig, StreamPublisher, start_proxy

RISE = 10.0
"""Percentage points of one core the web process may rise above its no-client figure."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _client(client: httpx.AsyncClient, url: str, window: tuple[float, float],
                  counts: list[int], index: int) -> None:
    """One page's feed: count the updates received inside ``window`` (wall clock)."""
    async with client.stream("GET", url + "/api/events") as response:
        async for line in response.aiter_lines():
            now = time.time()
            if line.startswith("data: ") and window[0] <= now < window[1]:
                counts[index] += 1
            if now >= window[1]:
                return


def run_clients(url: str, clients: int, window: tuple[float, float]) -> list[int]:
    """``clients`` page feeds in one process (one connection each); updates each got."""
    async def all_clients() -> list[int]:
        counts = [0] * clients
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=None, limits=limits) as client:
            await asyncio.gather(*(_client(client, url, window, counts, index)
                                   for index in range(clients)), return_exceptions=True)
        return counts

    return asyncio.run(all_clients())


def measure(url: str, pids: dict[str, int], clients: int, seconds: float,
            processes: int) -> dict:
    """CPU (percent of one core) of each pid and updates per client over ``seconds``.

    The clients are spread over ``processes`` processes, so that the benchmark's own
    clients are not what limits the updates they get.
    """
    warm_up = 3.0 + 0.02 * clients  # s for the processes to start and every feed to connect
    window = (time.time() + warm_up, time.time() + warm_up + seconds)
    shares = [clients // processes + (1 if index < clients % processes else 0)
              for index in range(processes)]
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = [pool.submit(run_clients, url, share, window) for share in shares if share]
        time.sleep(max(0.0, window[0] - time.time()))
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(max(0.0, window[1] - time.time()))
        cpu = {name: 100.0 * (cpu_seconds(pid) - before[name]) / seconds
               for name, pid in pids.items()}
        received = [count for future in futures for count in future.result()]
    return {"clients": clients, "cpu": cpu, "updates_per_client":
            (min(received) / seconds) if received else 0.0}


class SyntheticRamp:
    """A transport ramp's documents (two biases, a dU/dI step) published at a steady rate."""

    def __init__(self, address: str, events_per_second: float, page: str):
        self.address = address
        self.page = page
        self.period = 1.0 / events_per_second if events_per_second > 0 else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        publisher = StreamPublisher(self.address)
        publisher.wait_connected(10.0)
        keys = {name: {"dtype": "number", "shape": [], "source": "sim"}
                for name in ("T", "dudi", "I")}
        # A follower that subscribed after a start document ignores that run: start runs
        # until the page has one.
        deadline = time.monotonic() + 30.0
        while True:
            bundle = compose_run(metadata={
                "plan_name": "transport_ramp", "measurement": "transport", "sample": {},
                "fields": {"temperature": "T", "signal": "dudi", "bias": "I"},
                "ramp": {"start": 40.0, "stop": 60.0, "rate": 0.5}})
            publisher("start", bundle.start_doc)
            descriptor = bundle.compose_descriptor(name="primary", data_keys=keys)
            publisher("descriptor", descriptor.descriptor_doc)
            if self._page_has(bundle.start_doc["uid"], 2.0) or time.monotonic() > deadline:
                break
        number = 0
        while not self._stop.wait(self.period):
            temperature = 40.0 + 0.01 * number
            bias = 0.2 * (number % 2)
            data = {"T": temperature, "I": bias,
                    "dudi": 4e-3 + (1e-3 if temperature > 52.0 - 5 * bias else 0.0)
                    + float(np.random.normal(0, 1e-5))}
            now = time.time()
            publisher("event", descriptor.compose_event(
                data=data, timestamps=dict.fromkeys(data, now), seq_num=number + 1, time=now))
            number += 1
        publisher("stop", bundle.compose_stop())
        publisher.close()

    def _page_has(self, uid: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.page + "/api/run?since=0", timeout=5.0).json().get("uid") == uid:
                return True
            time.sleep(0.1)
        return False

    def __enter__(self) -> SyntheticRamp:
        if self.period is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)


def start_web(prefix: str, rate: float, environment: dict[str, str], log: Path, stream: str):
    port = free_tcp_port()
    command = [sys.executable, "-m", "tcstation", "web", "--port", str(port), "--prefix", prefix,
               "--rate", str(rate), "--no-queue", "--no-tiled", "--stream", stream]
    with open(log, "wb") as stream:
        process = subprocess.Popen(command, env=environment, stdout=stream,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        try:
            state = httpx.get(url + "/api/state", timeout=2.0).json()
            if state["station"]["readings"]["sample_temperature"]["connected"]:
                return process, url
        except (httpx.HTTPError, KeyError, TypeError):
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("tcstation web did not serve the station:\n" + log.read_text()[-2000:])


def measure_rate(url: str, pids: dict[str, int], rate: float, client_counts: list[int],
                 seconds: float, processes: int) -> dict:
    """The web process's CPU with no client, then with each count of clients, at ``rate``."""
    baseline = measure(url, pids, 0, seconds, processes)
    rows = [baseline]
    print(f"rate {rate:g}/s: no client: web {baseline['cpu']['web']:.1f} %, "
          f"IOC {baseline['cpu']['ioc']:.1f} % of one core", flush=True)
    for clients in client_counts:
        row = measure(url, pids, clients, seconds, processes)
        rows.append(row)
        print(f"  {clients:4d} clients: web {row['cpu']['web']:5.1f} %, IOC "
              f"{row['cpu']['ioc']:5.1f} %, {row['updates_per_client']:.2f} "
              "updates/s each (slowest client)", flush=True)
    within = [row["clients"] for row in rows[1:]
              if row["cpu"]["web"] < baseline["cpu"]["web"] + RISE
              and row["updates_per_client"] >= 0.9 * rate]
    verdict = max(within) if within else 0
    run = httpx.get(url + f"/api/run?since={2**40}", timeout=10.0).json()
    print(f"  => at {rate:g} updates/s: up to {verdict} clients within "
          f"+{RISE:g} points of one core of the web process (the page's run: "
          f"{run.get('count', 0)} points)", flush=True)
    return {"rate": rate, "rows": rows, "clients_within": verdict,
            "run_points": run.get("count", 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 2.0, 5.0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 5, 10, 25, 50, 100])
    parser.add_argument("--events-per-second", type=float, default=4.0,
                        help="events of the synthetic ramp published meanwhile (0: none)")
    parser.add_argument("--client-processes", type=int, default=4,
                        help="processes the page clients are spread over (default %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    port = free_port()
    environment = {**os.environ, **loopback_client_environment(port)}
    os.environ.update(loopback_client_environment(port))
    prefix = f"B{uuid.uuid4().hex[:6]}:"
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"web-clients-{prefix.rstrip(':')}"
    work.mkdir(parents=True, exist_ok=True)
    stream = StreamConfig(in_port=free_tcp_port(), out_port=free_tcp_port())
    proxy = start_proxy(stream, idle=0)
    ioc = SimulatedStationProcess(prefix, port, speedup=60.0, log_path=work / "ioc.log").start()
    results = []
    try:
        for rate in args.rates:
            process, url = start_web(prefix, rate, environment, work / f"web-{rate:g}.log",
                                     stream.out_address)
            try:
                with SyntheticRamp(stream.in_address, args.events_per_second, url):
                    pids = {"web": process.pid, "ioc": ioc.process.pid}
                    results.append(measure_rate(url, pids, rate, args.clients, args.seconds,
                                                args.client_processes))
            finally:
                process.terminate()
                process.wait(10.0)
    finally:
        ioc.stop()
        proxy.stop()
    conditions = (f"{args.seconds:g} s window, station and a synthetic ramp at "
                  f"{args.events_per_second:g} events/s" if args.events_per_second
                  else f"{args.seconds:g} s window, station only, no run")
    figures = [{"what": f"page clients at {result['rate']:g} updates/s within +{RISE:g} points "
                        "of one core", "value": result["clients_within"],
                "text": f"{result['clients_within']} (of {max(args.clients)} tried)",
                "conditions": conditions}
               for result in results]
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "web_clients",
                                         "title": "Operator page clients",
                                         "figures": figures, "rates": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
