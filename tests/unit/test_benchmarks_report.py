"""The benchmark table's logic: targets, reasons beside missed ones, failed scripts shown."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


run_all = load("run_all")
helium_budget = load("helium_budget")

MACHINE = {"date": "2026-11-24 12:00 UTC", "host": "vm", "cpu": "cpu", "cores": 2,
           "usable_cores": 2, "memory": "23.5 GiB", "platform": "Linux", "python": "3.11.7",
           "load_before": (0.5, 0.4, 0.3), "load_after": (1.5, 1.0, 0.5)}


def test_a_slow_demo_is_marked_missed_with_where_its_time_went():
    breakdown = {"runs": 9, "in_runs": 300.0, "by_kind": {"transport": 200.0, "chi": 100.0},
                 "between_runs": 60.0, "before_first_run": 20.0, "after_last_run": 15.0}
    row = run_all.demo_figure({"status": "ok", "seconds": 6.2 * 60, "breakdown": breakdown})
    assert row["met"] is False
    assert row["text"] == "6.2 min"
    assert "transport ramps" in row["note"] and "1.0 min go to settling" in row["note"]
    fast = run_all.demo_figure({"status": "ok", "seconds": 200.0, "breakdown": breakdown})
    assert fast["met"] is True and "note" not in fast
    failed = run_all.demo_figure({"status": "failed (exit code 1)", "seconds": 100.0})
    assert failed["met"] is False and "failed" in failed["text"]


def test_a_failed_script_appears_in_the_table_with_its_status():
    broken = run_all.Benchmark("sim_speed", status="failed (exit code 1); see x.err",
                               seconds=3.0)
    good = run_all.Benchmark("ioc_cpu", status="ok", seconds=5.0, result={
        "title": "IOC CPU", "figures": [{"what": "IOC CPU floor", "text": "0.4 %"}]})
    parts = run_all.sections([broken, good], None)
    assert parts[0][1] == [{"what": "sim_speed.py", "text": "failed (exit code 1); see x.err"}]
    assert parts[1][0].startswith("IOC CPU (ioc_cpu.py")
    table = run_all.markdown(MACHINE, parts, 60.0)
    assert "| sim_speed.py | failed (exit code 1); see x.err |" in table


def test_markdown_escapes_pipes_and_puts_the_reason_beside_a_missed_target():
    row = {"what": "overhead", "text": "max |error| 3x", "target": "<= 1.5x", "met": False,
           "conditions": "40 points", "note": "the instruments wait"}
    table = run_all.markdown(MACHINE, [("Overhead per point (x.py, 1 s)", [row])], 60.0)
    line = next(line for line in table.splitlines() if line.startswith("| overhead"))
    assert "max \\|error\\| 3x" in line
    assert "<= 1.5x: **missed**" in line
    assert "40 points; **why:** the instruments wait" in line
    assert "2026-11-24 12:00 UTC" in table and "2 cores" in table


def way(key: str, onsets: dict[float, float], slow: float | None = None):
    result = helium_budget.Way(key, key, 1.5, slow)
    result.onsets = onsets
    result.minutes, result.seconds_per_reading = 20.0, 8.0
    return result


def test_the_helium_target_needs_all_four_onsets_in_one_ramp_within_the_error():
    truth = {0.0: 53.89, 0.2: 52.04, 0.3: 51.17, 0.4: 50.33}
    close = {bias: value + 0.1 for bias, value in truth.items()}
    assert helium_budget.one_ramp_ok(way("interleaved", close), truth)
    assert not helium_budget.one_ramp_ok(way("per_bias", close), truth)
    assert not helium_budget.one_ramp_ok(way("interleaved", {**close, 0.4: 50.6}), truth)
    three = {bias: value for bias, value in close.items() if bias != 0.3}
    assert math.isinf(way("interleaved", three).max_error(truth))


def test_the_missed_helium_note_gives_the_rate_that_would_work():
    note = helium_budget.missed_note(way("adaptive", {}, slow=0.3), 60.0)
    # 8 s a reading x 4 biases at 1.5 K/min: a point every 0.8 K per curve; 6 K / 9 points
    # wanted, so at most 60 * (6/9) / 32 = 1.25 K/min
    assert "a point every 0.80 K at 1.5 K/min" in note
    assert "ramp at <= 1.25 K/min" in note
    assert "it never slowed" in note
