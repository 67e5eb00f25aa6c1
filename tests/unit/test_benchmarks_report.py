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


reading_cost = load("reading_cost")
safety_overshoot = load("safety_overshoot")
reconnect_time = load("reconnect_time")
tiled_server_cpu = load("tiled_server_cpu")


def readings(transport_s: float, wall_ms: float = 20.0) -> dict:
    return {"transport": {"wall_ms_mean": wall_ms, "wall_ms_median": wall_ms,
                          "simulated_s": transport_s},
            "susceptibility": {"wall_ms_mean": 9.0, "wall_ms_median": 8.0, "simulated_s": 2.1}}


def test_the_reading_cost_target_is_the_transport_reading_at_120x_beyond_its_settle():
    results = {"readings": 24, "speedups": {"60": readings(2.3), "120": readings(3.6, 12.5),
                                            "600": readings(9.0)}}
    rows = reading_cost.figures(results)
    assert len(rows) == 6
    targeted = [row for row in rows if "target" in row]
    assert len(targeted) == 1
    row = targeted[0]
    assert "120x" in row["what"] and row["target"] == "<= 1.2 s"
    assert math.isclose(row["value"], 1.5) and row["met"] is False
    # 1.5 simulated s at 120x: 12.5 ms of wall time outside the settle; 10 ms would do
    assert "12.5 ms of wall time" in row["note"] and "at most 10.0 ms" in row["note"]
    assert "12.5 ms wall" in row["text"]
    results["speedups"]["120"] = readings(3.2)
    row = next(row for row in reading_cost.figures(results) if "target" in row)
    assert row["met"] is True and "note" not in row
    results["speedups"]["120"] = readings(2.1 - 1e-4)
    assert next(row for row in reading_cost.figures(results)
                if "target" in row)["text"].startswith("0.00 s (2.10 simulated s")
    chi = next(row for row in rows if row["what"] == "susceptibility reading at 600x")
    assert "2.10 simulated s" in chi["text"] and "target" not in chi


def case(speedup: float, setup: str, peak: float, layer: str) -> dict:
    return {"speedup": speedup, "setup": setup, "sample_peak": peak, "stage_peak": peak + 1.0,
            "overshoot": peak - (77.0 - safety_overshoot.GUARD_MARGIN), "limit": 77.0,
            "layer": layer, "wall": 5.0}


def test_the_overshoot_headline_is_the_worst_of_the_station_set_ups_with_its_layer():
    rows = [case(1.0, "all", 76.6, "guard"), case(60.0, "all", 76.7, "guard"),
            case(60.0, "idle", 76.9, "watchdog"), case(1000.0, "tlimit", 78.5,
                                                       "controller TLIMIT")]
    figures = safety_overshoot.figures(rows)
    headline = figures[0]
    assert headline["met"] is True and "detail" not in headline
    assert math.isclose(headline["value"], 76.9 - 76.5)
    assert "at 60x, stopped by watchdog" in headline["text"]
    assert "speed-ups 1 to 1000" in headline["conditions"]
    tlimit = next(row for row in figures if "TLIMIT alone" in row["what"])
    assert "target" not in tlimit and "(1.50 K above the limit)" in tlimit["text"]
    assert "sample peak 76.90 K, 0.40 K above the trip point (0.10 K below the limit)" in \
        headline["text"]
    idle = next(row for row in figures if "no plan" in row["what"])
    assert idle["detail"] is True and idle["met"] is True
    rows.append(case(1000.0, "idle", 77.3, "controller TLIMIT"))
    headline = safety_overshoot.figures(rows)[0]
    assert headline["met"] is False
    assert "idle at 1000x (77.30 K, stopped by controller TLIMIT)" in headline["note"]
    assert safety_overshoot.figures([]) == []


def test_the_reconnection_target_is_on_the_renewal_row_only():
    outages = [{"outage": 1.0, "reconnected": 0.4, "phase": 3.0, "fresh_channel": 0.05},
               {"outage": 3.0, "reconnected": 1.1, "phase": 5.0, "fresh_channel": 0.07}]
    renewal = reconnect_time.figure(outages, renewal=True)
    assert renewal["met"] is True and renewal["value"] == 1.1
    assert "slowest 1.10 s, median 0.75 s over 2 outages" in renewal["text"]
    assert "outages of 1, 3 s" in renewal["conditions"]
    slow = reconnect_time.figure([{**outages[0], "reconnected": 6.2}], renewal=True)
    assert slow["met"] is False and "beacon" in slow["note"]
    plain = reconnect_time.figure([{**outages[0], "reconnected": 6.2}], renewal=False)
    assert "target" not in plain and "governor" in plain["note"]
    assert "no outage" in reconnect_time.figure([], renewal=True)["text"]


def server(batch_size: int, cpu: float, max_delay: float) -> dict:
    return {"label": f"batch {batch_size}", "batch_size": batch_size, "cpu_per_event": cpu,
            "idle_rate": 0.01, "median_delay": max_delay / 2, "max_delay": max_delay,
            "seen": "40/40"}


def test_the_tiled_figures_hold_readability_and_the_live_table_to_their_targets():
    table = {"callback_median": 40e-6, "callback_max": 0.02, "refreshes": 12,
             "first_tenth_median": 30e-6, "last_tenth_median": 50e-6,
             "full_table": 1.8, "points": 5000}
    rows = tiled_server_cpu.figures([server(1, 0.052, 0.3), server(10, 0.006, 0.9)], table,
                                    120, 0.11)
    before, now, live = rows
    assert "target" not in before and "52.0 ms CPU/event (47 % of a core)" in before["text"]
    assert now["met"] is True and math.isclose(now["value"], 6.0)
    assert live["met"] is True
    assert "median 40 us (first tenth of the run 30 us, last tenth 50 us), max 20.0 ms" in \
        live["text"]
    late = tiled_server_cpu.figures([server(10, 0.006, 2.4)], {**table, "callback_max": 0.5},
                                    120, 0.11)
    assert late[0]["met"] is False and "2.40 s to be readable" in late[0]["note"]
    assert late[1]["met"] is False and "0.28 of the full table" in late[1]["note"]
    unseen = tiled_server_cpu.figures([server(10, 0.006, float("nan"))], table, 120, 0.11)
    assert unseen[0]["met"] is False and "no event was seen" in unseen[0]["note"]


def test_the_reading_cost_target_moves_to_the_runengine_reading_when_it_is_measured():
    measured = {**readings(2.2), "transport_plan": {"wall_ms_mean": 30.0, "wall_ms_median": 28.0,
                                                   "simulated_s": 3.4}}
    rows = reading_cost.figures({"readings": 24, "speedups": {"120": measured}})
    targeted = [row for row in rows if "target" in row]
    assert len(targeted) == 1 and "in a RunEngine run at 120x" in targeted[0]["what"]
    assert targeted[0]["met"] is False and "no subscribers" in targeted[0]["conditions"]
    device = next(row for row in rows if row["what"].startswith("transport reading at 120x"))
    assert "target" not in device and "device calls only" in device["conditions"]


adaptive_ramp = load("adaptive_ramp")


def adaptive_results(adaptive_minutes: float, adaptive_shift: float) -> dict:
    truth = {0.0: 54.11, 0.2: 52.23, 0.3: 51.36, 0.4: 50.56}
    constant = way("constant", {bias: value + 0.05 for bias, value in truth.items()})
    constant.minutes = 44.8
    adaptive = way("adaptive", {bias: value + adaptive_shift for bias, value in truth.items()},
                   slow=1.5)
    adaptive.minutes = adaptive_minutes
    errors = {bias: 0.02 for bias in truth}
    return {"truth": truth, "ways": [constant, adaptive], "span": (4.5, 70.0),
            "speedup": 10.0, "nice": 19, "load": ((6.8, 6.0, 5.0), (6.0, 6.0, 5.0)),
            "extra": {key: {"onset_errors": errors, "spacing": {b: (0.2, 0.21) for b in truth}}
                      for key in ("constant", "adaptive")}}


def test_the_adaptive_target_needs_the_minutes_and_an_error_no_worse():
    assert adaptive_ramp.verdict(adaptive_results(20.3, 0.054))["met"]
    # Worse than the constant ramp's 0.05 K by less than the stated 0.02 K: still no worse.
    assert adaptive_ramp.verdict(adaptive_results(20.3, 0.065))["met"]
    assert not adaptive_ramp.verdict(adaptive_results(20.3, 0.09))["met"]
    assert not adaptive_ramp.verdict(adaptive_results(30.0, 0.0))["met"], "0.67 of the minutes"
    missing = adaptive_results(20.3, 0.0)
    del missing["ways"][1].onsets[0.4]
    assert not adaptive_ramp.verdict(missing)["met"], "an onset not found is no Tc"
    rows = adaptive_ramp.figures(adaptive_results(20.3, 0.054))
    (row,) = [row for row in rows if "target" in row]
    assert row["met"] and "0.45 of the minutes" in row["text"]
