"""SIGTERM to `tcstation qserver` stops everything it started, as Ctrl-C does.

Redis it started, the simulated IOC, the RE manager, its worker, and the
worker's local Tiled server (which runs in a session of its own, so a Ctrl-C
in the terminal does not reach it): no descendant survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from bluesky_queueserver_api.zmq import REManagerAPI

from tcstation.queueserver import redis_answers
from tcstation.storage.server import free_tcp_port

pytestmark = pytest.mark.integration

TIMEOUT = 90.0


def alive(processes: list[psutil.Process]) -> list[str]:
    """The processes still running (a zombie has exited: only its reaping is left)."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return running


def test_sigterm_stops_redis_the_ioc_the_manager_and_the_workers_tiled_server(tmp_path):
    redis_address = f"127.0.0.1:{free_tcp_port()}"
    control, info = free_tcp_port(), free_tcp_port()
    data_dir = tmp_path / "data"
    environment = {**os.environ, "TCSTATION_STORAGE": "tiled", "TCSTATION_DATA_DIR": str(data_dir)}
    for variable in ("TCSTATION_TILED_URI", "TCSTATION_TILED_API_KEY", "TCSTATION_STATION_CONFIG"):
        environment.pop(variable, None)
    log_path = tmp_path / "qserver.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("tcstation")), "qserver", "--simulate",
             "--redis-addr", redis_address, "--zmq-control-port", str(control),
             "--zmq-info-port", str(info)], env=environment, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    api = REManagerAPI(zmq_control_addr=f"tcp://127.0.0.1:{control}",
                       zmq_info_addr=f"tcp://127.0.0.1:{info}", timeout_recv=5.0)
    try:
        api.wait_for_idle(timeout=TIMEOUT)
        api.environment_open()
        api.wait_for_idle(timeout=TIMEOUT)
        assert api.status()["worker_environment_exists"], log_path.read_text()[-3000:]
        tiled_pid = json.loads((data_dir / "tiled_server.json").read_text())["pid"]
        descendants = psutil.Process(process.pid).children(recursive=True)
        assert tiled_pid in {child.pid for child in descendants}, "the worker's Tiled server"
        assert redis_answers(redis_address)
    finally:
        api.close()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(TIMEOUT)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    output = log_path.read_text()
    assert code == 143, output[-3000:]
    psutil.wait_procs(descendants, timeout=30.0)
    assert alive(descendants) == [], output[-3000:]
    assert not redis_answers(redis_address), "Redis outlived the command"
