"""End to end through the queueserver: Redis, the simulated IOC, Tiled, the RE manager.

The manager runs the station's own profile (profile_collection/startup); the
test drives it only through bluesky-queueserver-api, as a client would, and
then finds the run and its Tc table in Tiled.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.zmq import REManagerAPI
from ramp_sampling import ONSET_SPACING, assert_curve_sampling, assert_detection_margin
from stream_followers import Follower, documents, wait_until_following
from tiled.client import from_uri

from tcstation.ioc_sim.sample import SampleModel
from tcstation.queueserver import ensure_redis, re_manager_command, redis_answers
from tcstation.report import read_run
from tcstation.storage.config import StorageConfig
from tcstation.storage.layout import DERIVED_KEY, RUNS_KEY, transitions_key
from tcstation.storage.server import LocalTiledServer, free_tcp_port

pytestmark = pytest.mark.integration

BIASES = [0.0, 0.2, 0.3, 0.4]
START, STOP, RATE = 44.0, 62.0, 0.5
"""K, K, K/min: at 120x each bias curve got a point every 0.084 K at 0.4 K/min with one
core kept busy (load 6 on 2 cores, 2026-12-04), a third of what the transition finder
needs (ONSET_SPACING); 0.5 K/min leaves it under half."""
MANAGER_TIMEOUT = 120.0


def wait_until_answering(api, process, log_path: Path) -> None:
    """Until the RE manager answers; fails with its log if it exits or takes too long."""
    deadline = time.monotonic() + MANAGER_TIMEOUT
    while True:
        try:
            api.status()
            return
        except api.RequestTimeoutError:
            assert process.poll() is None and time.monotonic() < deadline, (
                "the RE manager did not answer:\n" + log_path.read_text()[-3000:])


def open_environment(api, log_path: Path) -> None:
    api.environment_open()
    api.wait_for_idle(timeout=MANAGER_TIMEOUT)
    assert api.status()["worker_environment_exists"], log_path.read_text()[-3000:]


@pytest.fixture(scope="module")
def tiled_server(tmp_path_factory):
    server = LocalTiledServer(StorageConfig(data_dir=tmp_path_factory.mktemp("tiled"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_address():
    # A free port: nothing answers there, so the project's own check starts a private server.
    address = f"127.0.0.1:{free_tcp_port()}"
    started = ensure_redis(address)
    assert started is not None, "ensure_redis should have started a redis-server"
    yield address
    started.stop()


@pytest.fixture(scope="module")
def manager_addresses():
    """The manager's control and console-output (info) 0MQ addresses."""
    return f"tcp://127.0.0.1:{free_tcp_port()}", f"tcp://127.0.0.1:{free_tcp_port()}"


@pytest.fixture(scope="module")
def manager(station_factory, tiled_server, redis_address, manager_addresses, tmp_path_factory):
    ioc = station_factory(speedup=120.0, noise=True)
    work = tmp_path_factory.mktemp("re-manager")
    control, info = manager_addresses
    environment = {**os.environ, "TCSTATION_PREFIX": ioc.prefix,
                   "TCSTATION_DATA_DIR": str(work / "data"),
                   "TCSTATION_TILED_URI": tiled_server.uri,
                   "TCSTATION_TILED_API_KEY": tiled_server.api_key,
                   "TCSTATION_STORAGE": "tiled"}
    environment.pop("TCSTATION_STATION_CONFIG", None)
    command = re_manager_command(redis_address, zmq_control_addr=control, zmq_info_addr=info,
                                 redis_name_prefix=f"tcs_{uuid.uuid4().hex[:8]}")
    log_path = work / "manager.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    api = REManagerAPI(zmq_control_addr=control, zmq_info_addr=info, timeout_recv=5.0)
    try:
        wait_until_answering(api, process, log_path)
        open_environment(api, log_path)
        yield api, ioc, log_path
    finally:
        try:
            api.environment_close()
            api.wait_for_idle(timeout=30.0)
        except Exception:
            pass
        api.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20.0)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_worker_lists_the_profile_plans_and_devices(manager):
    api, _, _ = manager
    operator_plans = set(api.plans_allowed()["plans_allowed"])
    assert {"transport_ramp", "susceptibility_ramp", "adaptive_transport_ramp"} <= operator_plans
    assert "expose_to_room_temperature" not in operator_plans
    admin_plans = set(api.plans_allowed(user_group="admin")["plans_allowed"])
    assert {"expose_to_room_temperature", "calibrate_susceptometer"} <= admin_plans
    assert {"cryostat", "transport", "bias_source"} <= set(api.devices_allowed()["devices_allowed"])
    parameters = {parameter["name"]: parameter for parameter in
                  api.plans_allowed()["plans_allowed"]["transport_ramp"]["parameters"]}
    assert "station" not in parameters
    assert (parameters["rate"]["min"], parameters["rate"]["max"]) == ("0.1", "5")


@pytest.mark.parametrize("kwargs, reason", [
    ({"start": 45, "stop": 60, "rate": 10}, "out of range [0.1, 5]"),
    ({"start": "warm", "stop": 60}, "valid number"),
    ({"start": 45, "stop": 60, "contacts": "edge"}, "'core' or 'surface'"),
])
def test_bad_parameters_are_refused_when_queued(manager, kwargs, reason):
    api, _, _ = manager
    with pytest.raises(api.RequestFailedError, match=reason.replace("[", r"\[")):
        api.item_add(BPlan("transport_ramp", **kwargs))
    assert api.queue_get()["items"] == []


def test_operators_cannot_queue_an_exposure_but_admins_can(manager):
    api, _, _ = manager
    with pytest.raises(api.RequestFailedError, match="expose_to_room_temperature"):
        api.item_add(BPlan("expose_to_room_temperature", minutes=1))
    added = api.item_add(BPlan("expose_to_room_temperature", minutes=1), user_group="admin")
    api.item_remove(uid=added["item"]["item_uid"])
    assert api.queue_get()["items"] == []


def test_queued_transport_ramp_lands_in_tiled_with_its_tc_table(manager, tiled_server,
                                                                stream_proxy):
    api, _, log_path = manager
    # The worker's RunEngine publishes to the test run's document stream proxy.
    follower = Follower("--json")
    wait_until_following([follower], stream_proxy.config)
    api.item_add(BPlan("transport_ramp", start=START, stop=STOP, rate=RATE, biases=BIASES))
    api.queue_start()
    api.wait_for_idle(timeout=600.0)
    item = api.history_get()["items"][-1]
    result = item["result"]
    assert result["exit_status"] == "completed", (result, log_path.read_text()[-3000:])
    assert "%|" not in log_path.read_text(), "progress bars in the worker's output"
    (uid,) = result["run_uids"]

    # The worker's session laid the (here external) Tiled out: runs in RUNS_KEY, the Tc
    # table in DERIVED_KEY. Read as an outside client would, with tiled's own from_uri.
    root = from_uri(tiled_server.uri, api_key=tiled_server.api_key)
    assert set(root) == {RUNS_KEY, DERIVED_KEY}
    runs, derived = root[RUNS_KEY], root[DERIVED_KEY]
    deadline = time.monotonic() + 60.0
    while transitions_key(uid) not in derived and time.monotonic() < deadline:
        time.sleep(0.5)
    run = runs[-1]
    assert run.metadata["start"]["uid"] == uid
    assert runs[run.metadata["start"]["scan_id"]].metadata["start"]["uid"] == uid
    assert run.metadata["start"]["plan_name"] == "transport_ramp"
    assert run.metadata["stop"]["exit_status"] == "success"
    truth = SampleModel("mg_mgo")
    expected = {bias: truth.true_onsets(bias_current=bias)["dudi_onset"] for bias in BIASES}
    columns = read_run(run).columns
    assert_curve_sampling(columns["temperature"], columns["bias"], BIASES,
                          spacing_needed=ONSET_SPACING, onsets=expected)
    assert_detection_margin(columns["temperature"], columns["bias"], columns["signal"], BIASES)
    assert derived[transitions_key(uid)].metadata["raw_run"] == uid
    table = derived[transitions_key(uid)].read()
    assert list(table["bias"]) == pytest.approx(BIASES, abs=1e-3)
    for bias, onset in zip(BIASES, table["onset"], strict=True):
        assert onset == pytest.approx(expected[bias], abs=0.3), f"{bias} A"

    follower.wait_for(lambda line: '"stop"' in line and uid in line, "the worker run's stop")
    follower.interrupt()
    received = documents(follower)
    first = next(index for index, (name, doc) in enumerate(received)
                 if name == "start" and doc["uid"] == uid)
    last = next(index for index, (name, doc) in enumerate(received)
                if name == "stop" and doc["run_start"] == uid)
    streams = {doc["uid"]: doc["name"] for name, doc in received[first:last]
               if name == "descriptor"}
    followed: dict[str, int] = {}
    for name, doc in received[first:last]:
        if name == "event":
            followed[streams[doc["descriptor"]]] = followed.get(streams[doc["descriptor"]], 0) + 1
    assert followed == run.metadata["stop"]["num_events"], "the stream lost documents"


def test_console_output_reaches_qserver_console_monitor(manager, manager_addresses):
    api, _, log_path = manager
    monitor = subprocess.Popen(
        [str(Path(sys.executable).with_name("qserver-console-monitor")),
         "--zmq-info-addr", manager_addresses[1]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(monitor.stdout), daemon=True)
    reader.start()
    try:
        # The worker prints a marker until the monitor shows one (0MQ's slow joiner).
        deadline = time.monotonic() + MANAGER_TIMEOUT
        for attempt in itertools.count():
            api.script_upload(f"print('console-probe-{attempt}')")
            api.wait_for_idle(timeout=MANAGER_TIMEOUT)
            probe_deadline = time.monotonic() + 2.0
            while time.monotonic() < probe_deadline:
                if any("console-probe-" in line for line in list(lines)):
                    return
                time.sleep(0.05)
            assert monitor.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, (
                "qserver-console-monitor never showed the worker's output:\n" + "".join(lines)
                + log_path.read_text()[-2000:])
    finally:
        monitor.terminate()
        monitor.wait(10.0)


def test_a_sample_limit_breach_is_refused_when_queued_and_nothing_moves(manager):
    api, ioc, _ = manager
    from caproto.sync.client import read

    def setpoint() -> float:
        return float(read(ioc.prefix + "TC:OUT1:SP_RBV", repeater=False).data[0])

    before = setpoint()
    with pytest.raises(api.RequestFailedError,
                       match=r"key='stop', value='90.0': Value 90.0 is out of range \[4.2, 76\]"):
        api.item_add(BPlan("transport_ramp", start=45.0, stop=90.0))
    assert api.queue_get()["items"] == []
    assert setpoint() == before


def test_qserver_command_starts_and_stops_everything_it_needs(tmp_path):
    redis_address = f"127.0.0.1:{free_tcp_port()}"
    control, info = f"tcp://127.0.0.1:{free_tcp_port()}", f"tcp://127.0.0.1:{free_tcp_port()}"
    environment = {**os.environ, "TCSTATION_STORAGE": "off"}
    log_path = tmp_path / "qserver.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("tcstation")), "qserver", "--simulate",
             "--redis-addr", redis_address, "--zmq-control-addr", control,
             "--zmq-info-addr", info], env=environment, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    api = REManagerAPI(zmq_control_addr=control, zmq_info_addr=info, timeout_recv=5.0)
    try:
        wait_until_answering(api, process, log_path)
        assert redis_answers(redis_address), "the command started no Redis"
        # The worker's environment under `tcstation qserver` is opened by
        # test_qserver_lifetime.py; here only what the command starts, and its Ctrl-C.
    finally:
        api.close()
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(30.0)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    output = log_path.read_text()
    assert code == 130, output[-3000:]
    assert "starting a private redis-server" in output and "simulated station QS" in output
    assert not redis_answers(redis_address), "Redis outlived the command"
    survivors = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True)
    assert survivors.stdout.strip() == "", f"processes left: {survivors.stdout}"
