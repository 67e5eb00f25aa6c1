"""Run every benchmark and print one table of figures, with the conditions and the targets.

Each script under ``benchmarks/`` runs as a subprocess with ``--json PATH``;
its printed output goes to ``LOG_DIR/<script>.out`` (and is echoed here as it
comes), its standard error to ``LOG_DIR/<script>.err``.  ``tcstation demo``
is timed as ``make demo`` runs it (fresh data directory, output to
``LOG_DIR/demo.log``).  At the end one table carries every figure with the
date and the machine, and for each target (overhead per point within 1.5x of
the floor, four curves in one ramp within 0.2 K, a transport reading at 120x at
most 1.2 simulated s beyond its settle, the sample below its limit in a heater
runaway, reconnection and Tiled's readability within about 1 s, the transition
detector's power, false alarms, onset error and intervals, ``make demo`` under
5 min) whether it is met and, if not, why.

The JSON a script writes (``--json PATH``)::

    {"benchmark": "name", "title": "Section title", "conditions": "shared conditions",
     "figures": [{"what": "...", "text": "the figure as printed", "value": 1.0,
                  "conditions": "...", "target": "<= 1.5x", "met": false,
                  "note": "why, and what would close the gap"}, ...]}

``value``, ``conditions``, ``target``, ``met`` and ``note`` are optional; a row
with a target and ``"detail": true`` is left out of the closing list of targets.  A
script that exits with code 2 is reported as skipped (e.g. QCoDeS not installed).

    python benchmarks/run_all.py [--quick] [--skip-demo] [--only NAME ...]
                                 [--markdown PATH] [--json PATH] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from tcstation.demo import DEFAULT_SPEEDUP

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEMO_TARGET_MINUTES = 5.0
WIDTH = 100
SKIPPED_EXIT_CODE = 2


@dataclass
class Benchmark:
    """One script: how to run it, in full and quick, and what it gave."""

    name: str
    arguments: list[str] = field(default_factory=list)
    quick_arguments: list[str] = field(default_factory=list)
    timeout: float = 1800.0
    optional: bool = False
    status: str = "not run"
    seconds: float = 0.0
    result: dict | None = None


BENCHMARKS = (
    Benchmark("station_overhead", quick_arguments=["--quick"]),
    Benchmark("helium_budget", quick_arguments=["--quick"]),
    Benchmark("adaptive_ramp", quick_arguments=["--quick"]),
    Benchmark("sim_speed", quick_arguments=["--quick"]),
    Benchmark("ioc_cpu", arguments=["--seconds", "10"], quick_arguments=["--seconds", "5"]),
    Benchmark("tiled_write_read", quick_arguments=["--events", "100", "--points", "8"]),
    Benchmark("reading_cost", quick_arguments=["--readings", "8"]),
    Benchmark("safety_overshoot", quick_arguments=["--speedups", "60", "1000"]),
    Benchmark("reconnect_time", arguments=["--both"],
              quick_arguments=["--both", "--outages", "1", "3"]),
    Benchmark("tiled_server_cpu", quick_arguments=["--points", "40"]),
    Benchmark("transition_power", quick_arguments=["--quick"]),
    Benchmark("web_clients", quick_arguments=["--seconds", "4", "--rates", "2",
                                              "--clients", "1", "25"]),
    Benchmark("qcodes_peer", quick_arguments=["--quick"], optional=True),
)


def machine() -> dict:
    """Date, platform, CPU model, cores, memory, Python: the conditions of every figure."""
    cpu, memory = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "host": platform.node(),
            "platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)), "memory": memory,
            "python": platform.python_version(), "load_before": os.getloadavg()}


def echo_new_lines(path: Path, offset: int) -> int:
    """Print what was appended to ``path`` since ``offset``; return the new offset."""
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            chunk = stream.read()
    except OSError:
        return offset
    complete = chunk.rfind(b"\n") + 1
    if complete:
        for line in chunk[:complete].decode(errors="replace").splitlines():
            print(f"  | {line}", flush=True)
    return offset + complete


def run_logged(command: list[str], out: Path, err: Path, timeout: float, echo: bool,
               env: dict[str, str] | None = None) -> tuple[int | None, float]:
    """Run ``command`` with its output in files (never a pipe: a CA repeater it spawns would
    hold a pipe open); echo the output as it comes. Returns (exit code or None on timeout, s)."""
    started = time.monotonic()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=ROOT,
                                   env=env, start_new_session=True)
        offset = 0
        try:
            while process.poll() is None:
                if time.monotonic() - started > timeout:
                    process.terminate()
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                    return None, time.monotonic() - started
                time.sleep(0.5)
                if echo:
                    offset = echo_new_lines(out, offset)
        except KeyboardInterrupt:
            process.terminate()
            process.wait(30)
            raise
    if echo:
        echo_new_lines(out, offset)
    return process.returncode, time.monotonic() - started


def tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_benchmark(benchmark: Benchmark, quick: bool, log_dir: Path) -> None:
    """Run one script with ``--json``; fill in its status and result."""
    script = HERE / f"{benchmark.name}.py"
    if not script.exists():
        benchmark.status = "skipped: script not present"
        return
    output = log_dir / f"{benchmark.name}.json"
    arguments = benchmark.quick_arguments if quick else benchmark.arguments
    command = [sys.executable, str(script), "--json", str(output), *arguments]
    print(f"\n== {benchmark.name}: {' '.join(command[1:])}", flush=True)
    code, benchmark.seconds = run_logged(command, log_dir / f"{benchmark.name}.out",
                                         log_dir / f"{benchmark.name}.err",
                                         benchmark.timeout, echo=True)
    if code is None:
        benchmark.status = f"timed out after {benchmark.timeout / 60:.0f} min"
    elif code == SKIPPED_EXIT_CODE and benchmark.optional:
        benchmark.status = ("skipped: " + (tail(log_dir / f"{benchmark.name}.err", 1)
                                           or tail(log_dir / f"{benchmark.name}.out", 1)
                                           or "exit code 2"))
    elif code != 0:
        benchmark.status = f"failed (exit code {code}); see {log_dir / benchmark.name}.err"
        print(tail(log_dir / f"{benchmark.name}.err"), flush=True)
    else:
        benchmark.status = "ok"
    if output.exists():
        try:
            benchmark.result = json.loads(output.read_text())
        except json.JSONDecodeError as err:
            benchmark.status += f"; unreadable JSON ({err})"
    print(f"== {benchmark.name}: {benchmark.status} in {benchmark.seconds:.0f} s", flush=True)


def demo_breakdown(data_dir: Path) -> dict:
    """Wall seconds of the demo's runs, from its spool (every document of every run)."""
    runs = []
    for path in sorted((data_dir / "spool").rglob("*.jsonl")):
        start = stop = None
        with path.open() as stream:
            for line in stream:
                record = json.loads(line)
                if record["name"] == "start":
                    start = record["doc"]
                elif record["name"] == "stop":
                    stop = record["doc"]
        if start is not None and stop is not None:
            runs.append((start["time"], stop["time"], start.get("plan_name", "?"),
                         start.get("measurement", "")))
    runs.sort()
    if not runs:
        return {}
    by_kind: dict[str, float] = {}
    for began, ended, plan_name, measurement in runs:
        kind = measurement or plan_name
        by_kind[kind] = by_kind.get(kind, 0.0) + ended - began
    in_runs = sum(by_kind.values())
    return {"runs": len(runs), "in_runs": in_runs, "by_kind": by_kind,
            "between_runs": (runs[-1][1] - runs[0][0]) - in_runs,
            "first_start": runs[0][0], "last_stop": runs[-1][1]}


def run_demo(log_dir: Path, timeout: float) -> dict:
    """Time ``tcstation demo`` as ``make demo`` runs it, with a fresh data directory."""
    entry_point = Path(sys.executable).with_name("tcstation")
    command = ([str(entry_point)] if entry_point.exists()
               else [sys.executable, "-m", "tcstation.cli"]) + ["demo"]
    with tempfile.TemporaryDirectory(prefix="tcs-demo-") as directory:
        data_dir = Path(directory) / "data"
        command += ["--data-dir", str(data_dir), "--output", str(Path(directory) / "report")]
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("TCSTATION_", "EPICS_"))}
        print(f"\n== demo: {' '.join(command)} (log: {log_dir / 'demo.log'})", flush=True)
        began = time.time()
        code, seconds = run_logged(command, log_dir / "demo.log", log_dir / "demo.err",
                                   timeout, echo=False, env=env)
        breakdown = demo_breakdown(data_dir) if data_dir.exists() else {}
    if breakdown:
        breakdown["before_first_run"] = breakdown.pop("first_start") - began
        breakdown["after_last_run"] = began + seconds - breakdown.pop("last_stop")
    status = ("ok" if code == 0 else "timed out" if code is None
              else f"failed (exit code {code}); see {log_dir / 'demo.log'}")
    print(f"== demo: {status} in {seconds / 60:.1f} min", flush=True)
    return {"status": status, "seconds": seconds, "breakdown": breakdown}


def demo_figure(demo: dict) -> dict:
    """The row of ``make demo``'s wall time, with where the time went."""
    minutes = demo["seconds"] / 60.0
    met = demo["status"] == "ok" and minutes < DEMO_TARGET_MINUTES
    parts = []
    breakdown = demo.get("breakdown") or {}
    if breakdown:
        kinds = ", ".join(f"{kind} {seconds / 60:.1f}"
                          for kind, seconds in sorted(breakdown["by_kind"].items(),
                                                      key=lambda item: -item[1]))
        parts.append(f"{breakdown['runs']} runs {breakdown['in_runs'] / 60:.1f} min ({kinds}); "
                     f"between runs (settling, cool-downs) {breakdown['between_runs'] / 60:.1f}"
                     f" min; start-up {breakdown['before_first_run'] / 60:.1f} min; report and "
                     f"shutdown {breakdown['after_last_run'] / 60:.1f} min")
    status = "" if demo["status"] == "ok" else f" ({demo['status']})"
    row = {"what": "make demo: wall time", "value": minutes, "text": f"{minutes:.1f} min{status}",
           "conditions": f"tcstation demo (speed-up {DEFAULT_SPEEDUP:g}), venv installed, "
                         "fresh data directory" + (f"; {parts[0]}" if parts else ""),
           "target": f"< {DEMO_TARGET_MINUTES:g} min", "met": met}
    if not met and breakdown:
        transport = breakdown["by_kind"].get("transport", 0.0)
        row["note"] = (
            f"the runs themselves take {breakdown['in_runs'] / 60:.1f} min at "
            f"{DEFAULT_SPEEDUP:g}x ({transport / 60:.1f} min of transport ramps, four "
            f"interleaved biases each), and {breakdown['between_runs'] / 60:.1f} min go "
            "to settling and cool-downs between them. Closing the gap: less wall time per "
            "reading outside the settle (software and Channel Access), which the speed-up "
            "turns into simulated time")
    return row


def sections(benchmarks: list[Benchmark], demo: dict | None) -> list[tuple[str, list[dict]]]:
    """(title, figures) of every benchmark, in order, with the status of those that gave none."""
    result = []
    for benchmark in benchmarks:
        title = benchmark.name
        rows: list[dict] = []
        if benchmark.result is not None:
            title = benchmark.result.get("title", title)
            rows = [row for row in benchmark.result.get("figures", []) if isinstance(row, dict)]
            if not rows:  # a script with another layout: its top-level numbers
                rows = [{"what": key, "text": str(value)}
                        for key, value in benchmark.result.items()
                        if isinstance(value, int | float | str) and key != "benchmark"]
        if benchmark.status != "ok" or not rows:
            rows = rows + [{"what": f"{benchmark.name}.py", "text": benchmark.status}]
        result.append((f"{title} ({benchmark.name}.py, {benchmark.seconds:.0f} s)", rows))
    if demo is not None:
        result.append((f"make demo ({demo['seconds'] / 60:.1f} min)", [demo_figure(demo)]))
    return result


def verdict(row: dict) -> str:
    if "target" not in row:
        return ""
    return f"target {row['target']}: " + ("met" if row.get("met") else "MISSED")


def print_table(info: dict, parts: list[tuple[str, list[dict]]], total: float) -> None:
    print("\n" + "=" * WIDTH)
    print(f"Benchmarks, {info['date']}, {info['host']}: {info['cpu']}, {info['cores']} cores "
          f"({info['usable_cores']} usable), {info['memory']}, {info['platform']}, Python "
          f"{info['python']}; load average {info['load_before'][0]:.1f} before, "
          f"{info['load_after'][0]:.1f} after (shared machine); {total / 60:.1f} min in all")
    print("=" * WIDTH)
    wrap = textwrap.TextWrapper(width=WIDTH, initial_indent="      ", subsequent_indent="      ")
    for title, rows in parts:
        print(f"\n{title}")
        for row in rows:
            line = f"  {row.get('what', '?')}: {row.get('text', '')}"
            if verdict(row):
                line += f"   [{verdict(row)}]"
            print(textwrap.fill(line, WIDTH, subsequent_indent="      "))
            if row.get("conditions"):
                print(wrap.fill(f"conditions: {row['conditions']}"))
            if row.get("note"):
                print(wrap.fill(("why: " if row.get("met") is False else "note: ") + row["note"]))
    print("\nTargets")
    for _, rows in parts:
        for row in rows:
            if "target" in row and not row.get("detail"):
                print(textwrap.fill(f"  {row['what']}: {row.get('text', '')} "
                                    f"[{verdict(row)}]", WIDTH, subsequent_indent="      "))


def markdown(info: dict, parts: list[tuple[str, list[dict]]], total: float) -> str:
    """The table for the README."""

    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"Latest figures ({info['date']}, {info['host']}: {info['cpu']}, {info['cores']} "
             f"cores, {info['memory']}, Python {info['python']}; load average "
             f"{info['load_before'][0]:.1f} before and {info['load_after'][0]:.1f} after, on a "
             f"shared machine; `make bench` took {total / 60:.1f} min):", "",
             "| what | figure | target | conditions, and why a target is missed |",
             "|---|---|---|---|"]
    for title, rows in parts:
        lines.append(f"| **{cell(title.split(' (')[0])}** | | | |")
        for row in rows:
            notes = "; ".join(part for part in (row.get("conditions", ""),
                                                 ("**why:** " if row.get("met") is False
                                                  else "") + row.get("note", "")
                                                 if row.get("note") else "") if part)
            target = ""
            if "target" in row:
                target = f"{row['target']}: " + ("met" if row.get("met") else "**missed**")
            lines.append(f"| {cell(row.get('what', ''))} | {cell(row.get('text', ''))} | "
                         f"{cell(target)} | {cell(notes)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="every script's quick mode (the demo still runs unless skipped)")
    parser.add_argument("--skip-demo", action="store_true", help="do not time tcstation demo")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help="run only these scripts (names without .py; 'demo' for the demo)")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="write the table as markdown (for the README) here")
    parser.add_argument("--json", type=Path, default=None, help="write everything as JSON here")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="logs and per-script JSON (default var/bench/<date-time>/)")
    parser.add_argument("--demo-timeout", type=float, default=30.0, help="minutes (30)")
    options = parser.parse_args(argv)
    log_dir = options.log_dir or ROOT / "var" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    began = time.monotonic()
    print(f"tcstation benchmarks{' (quick)' if options.quick else ''}: logs in {log_dir}",
          flush=True)
    wanted = set(options.only) if options.only else None
    benchmarks = [benchmark for benchmark in BENCHMARKS
                  if wanted is None or benchmark.name in wanted]
    for benchmark in benchmarks:
        run_benchmark(benchmark, options.quick, log_dir)
    demo = None
    if not options.skip_demo and (wanted is None or "demo" in wanted):
        demo = run_demo(log_dir, options.demo_timeout * 60.0)
    total = time.monotonic() - began
    info["load_after"] = os.getloadavg()
    parts = sections(benchmarks, demo)
    print_table(info, parts, total)
    if options.markdown is not None:
        options.markdown.write_text(markdown(info, parts, total))
        print(f"\nmarkdown table: {options.markdown}")
    if options.json is not None:
        options.json.write_text(json.dumps({"machine": info, "seconds": total,
                                            "sections": parts}, indent=2, default=str))
    failed = [b.name for b in benchmarks if b.status.startswith(("failed", "timed out"))]
    if demo is not None and demo["status"] != "ok":
        failed.append("demo")
    if failed:
        print(f"\nfailed: {', '.join(failed)} (logs in {log_dir})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
