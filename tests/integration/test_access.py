"""Who may queue what: `tcstation qserver --http`, real Redis, RE manager and bluesky-httpserver.

The permission group comes from the HTTP server's configuration (per account,
hence per API key), never from the client; the manager's 0MQ sockets listen on
loopback only and, behind the HTTP front, answer only clients holding its key.
No worker environment is opened: the manager checks plans and permissions
when an item is queued.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.http import REManagerAPI as HTTPManagerAPI
from bluesky_queueserver_api.zmq import REManagerAPI as ZMQManagerAPI

from tcstation.queueserver import ensure_redis, http_answers
from tcstation.storage.server import free_tcp_port

pytestmark = pytest.mark.integration

START_TIMEOUT = 90.0
PASSWORDS = {"olga": "operator-secret", "ada": "admin-secret"}
EXPOSURE = BPlan("expose_to_room_temperature", minutes=1)


def http_config(path: Path) -> Path:
    """The station's httpserver.yml with test accounts (passwords instead of PAM)."""
    config = {
        "authentication": {
            "providers": [{"provider": "local",
                           "authenticator": "bluesky_httpserver.authenticators:"
                                            "DictionaryAuthenticator",
                           "args": {"users_to_passwords": PASSWORDS}}],
            "allow_anonymous_access": False},
        "api_access": {"policy": "bluesky_httpserver.authorization:DictionaryAPIAccessControl",
                       "args": {"users": {"olga": {"roles": "user"},
                                          "ada": {"roles": ["admin", "expert"]}}}},
        "resource_access": {"policy": "tcstation.qserver_access:StationResourceAccessControl",
                            "args": {"groups": {"admin": ["ada"]}, "default_group": "primary"}},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def non_loopback_addresses() -> list[str]:
    return [address.address for addresses in psutil.net_if_addrs().values()
            for address in addresses
            if address.family == socket.AF_INET and not address.address.startswith("127.")]


def listening_addresses(port: int) -> set[str]:
    return {connection.laddr.ip for connection in psutil.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port}


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """`tcstation qserver --http` on free ports; yields (http uri, control port, info port)."""
    work = tmp_path_factory.mktemp("access")
    redis_address = f"127.0.0.1:{free_tcp_port()}"
    redis = ensure_redis(redis_address)
    control, info, http = free_tcp_port(), free_tcp_port(), free_tcp_port()
    log_path = work / "qserver.log"
    environment = {**os.environ, "TCSTATION_STORAGE": "off",
                   "TCSTATION_DATA_DIR": str(work / "data")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("tcstation")), "qserver", "--http",
             "--http-config", str(http_config(work / "httpserver.yml")),
             "--http-port", str(http), "--redis-addr", redis_address,
             "--zmq-control-port", str(control), "--zmq-info-port", str(info)],
            env=environment, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    uri = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (http_answers(uri) and listening_addresses(control)):
            assert process.poll() is None and time.monotonic() < deadline, (
                "tcstation qserver --http did not come up:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        yield uri, control, info, log_path
    finally:
        descendants = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(60.0)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            if redis is not None:
                redis.stop()
    # The HTTP server and the manager stop with the command.
    assert code == 143, log_path.read_text()[-3000:]
    psutil.wait_procs(descendants, timeout=30.0)
    assert [child.pid for child in descendants if child.is_running()
            and child.status() != psutil.STATUS_ZOMBIE] == []


def client_with_key(uri: str, user: str, log_path: Path) -> HTTPManagerAPI:
    """A client holding an API key ``user`` made for himself after logging in."""
    login = HTTPManagerAPI(http_server_uri=uri, http_auth_provider="/local/token")
    login.login(user, password=PASSWORDS[user])
    key = login.apikey_new(expires_in=900)["secret"]
    login.close()
    api = HTTPManagerAPI(http_server_uri=uri)
    api.set_authorization_key(api_key=key)
    deadline = time.monotonic() + START_TIMEOUT
    while True:  # the manager answers the HTTP server once it has started
        try:
            api.status()
            return api
        except (api.RequestTimeoutError, api.HTTPServerError):
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]


def test_an_operator_key_cannot_queue_an_exposure_whatever_group_it_claims(front):
    uri, _, _, log_path = front
    api = client_with_key(uri, "olga", log_path)
    try:
        for claimed in ({}, {"user_group": "admin"}):
            with pytest.raises(api.RequestFailedError, match="expose_to_room_temperature"):
                api.item_add(EXPOSURE, **claimed)
        added = api.item_add(BPlan("transport_ramp", start=45.0, stop=60.0))
        api.item_remove(uid=added["item"]["item_uid"])
        assert api.queue_get()["items"] == []
    finally:
        api.close()


def test_an_admin_key_may_queue_an_exposure(front):
    uri, _, _, log_path = front
    api = client_with_key(uri, "ada", log_path)
    try:
        added = api.item_add(EXPOSURE)
        assert added["item"]["user_group"] == "admin"
        api.item_remove(uid=added["item"]["item_uid"])
        assert api.queue_get()["items"] == []
    finally:
        api.close()


def test_no_key_no_access(front):
    uri, _, _, _ = front
    api = HTTPManagerAPI(http_server_uri=uri)
    try:
        with pytest.raises(api.HTTPClientError, match="401"):
            api.item_add(EXPOSURE)
    finally:
        api.close()


def test_the_manager_sockets_listen_on_loopback_only(front):
    _, control, info, _ = front
    for port in (control, info):
        assert listening_addresses(port) == {"127.0.0.1"}
    for address in non_loopback_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, control), timeout=2.0).close()


def test_a_local_zmq_client_without_the_key_gets_no_answer(front):
    _, control, info, _ = front
    api = ZMQManagerAPI(zmq_control_addr=f"tcp://127.0.0.1:{control}",
                        zmq_info_addr=f"tcp://127.0.0.1:{info}", timeout_recv=1.0)
    try:
        with pytest.raises(api.RequestTimeoutError):
            api.item_add(EXPOSURE, user_group="admin")
    finally:
        api.close()
