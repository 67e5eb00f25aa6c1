"""The operator page's logic with fake sources: binding rules, keys, the feed, the live run."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from tcstation.web.app import Broadcaster, Sources, WebConfigError, check_binding, create_app
from tcstation.web.cli import web_main
from tcstation.web.sources import (
    LiveRun,
    QueueActionError,
    QueueMonitor,
    station_alarms,
)

KEY = "s3cret-key"
LOOPBACK = ("127.0.0.1", 50000)
BIASES = (0.0, 0.2)
FIELDS = {"temperature": "T", "signal": "dudi", "bias": "I"}


def transport_documents(points: int, uid: str = "run-1"):
    """A transport ramp 40 -> 60 K: a dU/dI step at 52 K (minus 5 K/A) on two biases."""
    rng = np.random.default_rng(3)
    start = {"uid": uid, "measurement": "transport", "fields": FIELDS, "scan_id": 7,
             "plan_name": "transport_ramp", "sample": {"name": "mg_mgo"},
             "ramp": {"start": 40.0, "stop": 60.0, "rate": 0.5}, "time": 1000.0}
    descriptor = {"uid": f"desc-{uid}", "name": "primary", "run_start": uid}
    events = []
    for number, temperature in enumerate(np.linspace(40.0, 60.0, points)):
        bias = BIASES[number % len(BIASES)]
        step = 1e-3 if temperature > 52.0 - 5 * bias else 0.0
        events.append({"descriptor": f"desc-{uid}", "seq_num": number + 1,
                       "time": 1000.0 + 10.0 * number,
                       "data": {"T": float(temperature), "I": bias,
                                "dudi": 4e-3 + step + rng.normal(0, 1e-5)}})
    return start, descriptor, events, {"uid": f"stop-{uid}", "run_start": uid,
                                       "exit_status": "success"}


class FakeStation:
    def snapshot(self):
        readings = {"sample_temperature": {"label": "Sample temperature", "pv": "P:IN2:Kelvin",
                                           "connected": True, "value": 44.5, "units": "K",
                                           "severity": "NO_ALARM", "status": ""}}
        return {"readings": readings, "alarms": [], "warm_limit": 1800.0}


class FakeQueue:
    def __init__(self):
        self.actions = []

    def snapshot(self):
        return {"connected": True, "running": None, "queue": [], "history": [], "error": ""}

    def act(self, action, payload):
        if action == "add" and not payload.get("plan"):
            raise QueueActionError("add needs a plan")
        self.actions.append((action, payload))
        return {"success": True}


@pytest.fixture
def queue():
    return FakeQueue()


@pytest.fixture
def app(queue):
    return create_app(Sources(station=FakeStation(), live=LiveRun(), queue=queue), api_key=KEY,
                      rate=10.0)


def test_binding_beyond_loopback_needs_the_flag_and_a_key():
    check_binding("127.0.0.1", False, None)
    check_binding("localhost", False, None)
    check_binding("::1", False, None)
    with pytest.raises(WebConfigError, match="0.0.0.0 is beyond loopback.*--allow-remote"):
        check_binding("0.0.0.0", False, KEY)
    with pytest.raises(WebConfigError, match="192.168.1.5 with --allow-remote needs an API key"):
        check_binding("192.168.1.5", True, None)
    check_binding("192.168.1.5", True, KEY)


def test_the_command_refuses_bad_settings_in_one_line(capsys, monkeypatch):
    monkeypatch.delenv("TCSTATION_WEB_API_KEY", raising=False)
    assert web_main(["--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert web_main(["--rate", "50"]) == 2
    assert "--rate 50: expected 0.1 to 20" in capsys.readouterr().err
    assert web_main(["--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err


def test_the_page_and_its_state_are_served_on_loopback(app):
    with TestClient(app, client=LOOPBACK) as client:
        page = client.get("/")
        assert page.status_code == 200 and "EventSource" in client.get("/static/page.js").text
        state = client.get("/api/state").json()
    assert state["station"]["readings"]["sample_temperature"]["value"] == 44.5
    assert state["queue"]["connected"] is True
    assert state["run"] == {"uid": None}
    assert state["actions_enabled"] is True
    assert state["ledger_available"] is False


def test_reading_from_beyond_loopback_needs_the_key(app):
    with TestClient(app, client=("192.168.1.9", 50000)) as client:
        refused = client.get("/api/state")
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert client.get("/api/state", headers={"X-API-Key": KEY}).status_code == 200
        assert client.get(f"/api/state?api_key={KEY}").status_code == 200


def test_queue_actions_without_the_key_are_refused(app, queue):
    with TestClient(app, client=LOOPBACK) as client:
        refused = client.post("/api/queue/start")
        assert refused.status_code == 403
        assert "needs the page's API key" in refused.json()["error"]
        wrong = client.post("/api/queue/start", headers={"X-API-Key": "guess"})
        assert wrong.status_code == 403
        assert queue.actions == []
        done = client.post("/api/queue/add", headers={"X-API-Key": KEY},
                           json={"plan": "transport_ramp", "kwargs": {"start": 44}})
        assert done.status_code == 200 and done.json()["ok"] is True
        bad = client.post("/api/queue/add", headers={"Authorization": f"Apikey {KEY}"},
                          json={"kwargs": {}})
        assert bad.status_code == 400 and "needs a plan" in bad.json()["error"]
        unknown = client.post("/api/queue/launch", headers={"X-API-Key": KEY})
        assert unknown.status_code == 404 and "add, start, stop, remove" in unknown.json()["error"]
    assert queue.actions == [("add", {"plan": "transport_ramp", "kwargs": {"start": 44}})]


def test_without_a_configured_key_every_action_is_refused(queue):
    app = create_app(Sources(queue=queue), api_key=None)
    with TestClient(app, client=LOOPBACK) as client:
        refused = client.post("/api/queue/start", headers={"X-API-Key": ""})
    assert refused.status_code == 403 and "without an API key" in refused.json()["error"]
    assert queue.actions == []


def test_the_feed_sends_server_sent_events(app):
    with TestClient(app, client=LOOPBACK) as client:
        with client.stream("GET", "/api/events?limit=2") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    updates = [json.loads(line[len("data: "):]) for line in lines]
    assert len(updates) == 2
    assert updates[1]["sequence"] > updates[0]["sequence"]
    assert updates[0]["station"]["readings"]["sample_temperature"]["value"] == 44.5


def test_the_feed_sends_each_point_once_and_a_new_run_from_its_start():
    live = LiveRun()
    broadcaster = Broadcaster(Sources(live=live), rate=2.0)
    start, descriptor, events, stop = transport_documents(40)
    live("start", start)
    live("descriptor", descriptor)
    for event in events[:10]:
        live("event", event)
    first = broadcaster.build()["run"]
    assert (first["since"], first["count"], len(first["points"])) == (0, 10, 10)
    for event in events[10:25]:
        live("event", event)
    second = broadcaster.build()["run"]
    assert (second["since"], len(second["points"])) == (10, 15)
    assert broadcaster.build(advance=False)["run"]["since"] == 0
    assert broadcaster.build()["run"]["points"] == []
    start2, descriptor2, events2, _ = transport_documents(5, uid="run-2")
    live("start", start2)
    live("descriptor", descriptor2)
    live("event", events2[0])
    fresh = broadcaster.build()["run"]
    assert (fresh["uid"], fresh["since"], len(fresh["points"])) == ("run-2", 0, 1)


def test_the_live_run_keeps_curves_by_bias_progress_and_the_tc_table():
    live = LiveRun(refresh_seconds=1e9)
    start, descriptor, events, stop = transport_documents(400)
    live("start", start)
    live("descriptor", descriptor)
    for event in events[:200]:
        live("event", event)
    running = live.snapshot()
    assert running["state"] == "running"
    assert {point[0] for point in running["points"]} == set(BIASES)
    assert running["progress"]["fraction"] == pytest.approx(
        (events[199]["data"]["T"] - 40.0) / 20.0)
    # 199 events took 1990 s for half the span: the other half takes as long.
    assert running["progress"]["eta_seconds"] == pytest.approx(1990.0, rel=0.02)
    for event in events[200:]:
        live("event", event)
    live("stop", stop)
    done = live.snapshot()
    assert done["state"] == "success" and done["progress"]["eta_seconds"] == 0.0
    onsets = {row["bias"]: row["onset"] for row in done["tc_table"]}
    assert set(onsets) == set(BIASES)
    assert onsets[0.0] == pytest.approx(52.0, abs=0.3)
    assert onsets[0.2] == pytest.approx(51.0, abs=0.3)
    json.dumps(done, allow_nan=False)


def test_events_of_other_streams_and_runs_are_left_out():
    live = LiveRun()
    start, descriptor, events, _ = transport_documents(5)
    live("start", start)
    live("descriptor", {"uid": "baseline", "name": "baseline", "run_start": "run-1"})
    live("event", {**events[0], "descriptor": "baseline"})
    live("descriptor", descriptor)
    live("event", {**events[1], "data": {"dudi": 1.0}})
    assert live.snapshot()["count"] == 0


def test_station_alarms_name_what_is_wrong_worst_first():
    readings = {
        "sample_temperature": {"label": "Sample", "connected": True, "value": 99.0,
                               "severity": "NO_ALARM"},
        "max_safe_temperature": {"label": "Limit", "connected": True, "value": 100.0,
                                 "severity": "NO_ALARM"},
        "transport_overload": {"label": "Transport overload", "connected": True,
                               "value": "Yes", "severity": "NO_ALARM"},
        "heater_output": {"label": "Heater", "connected": True, "value": 90.0,
                          "severity": "MINOR", "status": "HIGH"},
        "bias_current": {"label": "Bias", "pv": "P:SRC:CurrMeas", "connected": False},
        "warm_time": {"label": "Warm", "connected": True, "value": 1500.0,
                      "severity": "NO_ALARM"},
    }
    alarms = station_alarms(readings, warm_limit=1800.0)
    assert [alarm["severity"] for alarm in alarms] == ["INVALID", "MAJOR", "MAJOR", "MINOR",
                                                       "MINOR"]
    messages = " | ".join(alarm["message"] for alarm in alarms)
    assert "P:SRC:CurrMeas does not answer" in messages
    assert "within 2 K of its limit 100.0 K" in messages
    assert "Heater: HIGH alarm" in messages
    assert "warm for 25.0 min of its 30 min" in messages
    readings["warm_time"]["value"] = 2000.0
    assert any("longer than its 30 min" in alarm["message"] and alarm["severity"] == "MAJOR"
               for alarm in station_alarms(readings, warm_limit=1800.0))
    assert not any(alarm["source"] == "warm_time" for alarm in station_alarms(readings, None))


class FakeManagerAPI:
    def __init__(self):
        self.added = []
        self.status_calls = 0

    def status(self):
        self.status_calls += 1
        return {"manager_state": "idle", "plan_queue_uid": f"q{len(self.added)}",
                "plan_history_uid": "h1", "worker_environment_exists": True}

    def queue_get(self):
        return {"items": [{"item_uid": f"i{n}", "name": plan.name, "kwargs": plan.kwargs}
                          for n, plan in enumerate(self.added)], "running_item": {}}

    def history_get(self):
        return {"items": [{"item_uid": "old", "name": "count", "kwargs": {},
                           "result": {"exit_status": "completed", "run_uids": ["abc"]}}]}

    def item_add(self, plan):
        if plan.name == "unknown":
            raise RuntimeError("Plan 'unknown' is not in the list of allowed plans")
        self.added.append(plan)
        return {"success": True, "msg": "", "item": {"item_uid": "new", "name": plan.name,
                                                     "kwargs": plan.kwargs}}


def test_the_queue_monitor_reads_the_manager_and_relays_its_refusals():
    api = FakeManagerAPI()
    monitor = QueueMonitor(api)
    state = monitor.poll()
    assert state["connected"] and state["queue"] == []
    assert state["history"][0]["exit_status"] == "completed"
    result = monitor.act("add", {"plan": "transport_ramp", "kwargs": {"start": 44.0}})
    assert result["item"]["name"] == "transport_ramp"
    assert [item["name"] for item in monitor.poll()["queue"]] == ["transport_ramp"]
    with pytest.raises(QueueActionError, match="refused add: Plan 'unknown' is not in"):
        monitor.act("add", {"plan": "unknown"})
    with pytest.raises(QueueActionError, match="kwargs must be an object"):
        monitor.act("add", {"plan": "count", "kwargs": [1]})
    with pytest.raises(QueueActionError, match="unknown queue action 'pause'"):
        monitor.act("pause")


def test_a_manager_that_does_not_answer_is_shown_not_raised():
    class Down:
        def status(self):
            raise TimeoutError("timeout")

    state = QueueMonitor(Down()).poll()
    assert state["connected"] is False and "does not answer (timeout)" in state["error"]


def test_broadcaster_runs_without_sources():
    broadcaster = Broadcaster(Sources(), rate=1.0)
    asyncio.run(broadcaster.publish_once())
    update = json.loads(broadcaster.message)
    assert update["station"] is None and update["run"] is None


def test_the_key_file_must_hold_a_key(tmp_path, capsys):
    from tcstation.web.cli import read_api_key

    key_file = tmp_path / "key"
    key_file.write_text("  abc123 \nsecond line\n")
    assert read_api_key(key_file) == "abc123"
    key_file.write_text("\n")
    with pytest.raises(WebConfigError, match="is empty"):
        read_api_key(key_file)
    with pytest.raises(WebConfigError, match="No such file"):
        read_api_key(tmp_path / "missing")
