"""Redis checks of the queueserver launcher, without a server (logic only)."""

import pytest

from tcstation import queueserver
from tcstation.queueserver import ServiceError, ensure_redis, re_manager_command, split_address


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:6380", ("127.0.0.1", 6380)),
    ("localhost", ("localhost", 6379)),
    ("redis.lab:7000/2", ("redis.lab", 7000)),
])
def test_split_address(address, expected):
    assert split_address(address) == expected


def test_a_port_that_is_not_a_number_is_named():
    with pytest.raises(ServiceError, match="port 'abc' is not a number"):
        split_address("localhost:abc")


def test_no_redis_at_a_remote_address_is_an_error_not_a_start(monkeypatch):
    monkeypatch.setattr(queueserver, "redis_answers", lambda address, timeout=1.0: False)
    with pytest.raises(ServiceError, match="no Redis answers at redis.lab:6379; start it there"):
        ensure_redis("redis.lab:6379")


def test_no_redis_and_no_binary_says_how_to_install(monkeypatch):
    monkeypatch.setattr(queueserver, "redis_answers", lambda address, timeout=1.0: False)
    monkeypatch.setattr(queueserver.shutil, "which", lambda name: None)
    with pytest.raises(ServiceError, match="apt install redis-server"):
        ensure_redis("127.0.0.1:6390")


def test_a_running_redis_is_used_as_it_is(monkeypatch):
    monkeypatch.setattr(queueserver, "redis_answers", lambda address, timeout=1.0: True)
    assert ensure_redis("127.0.0.1:6379") is None


def test_the_manager_never_rewrites_the_committed_plan_list():
    command = re_manager_command("127.0.0.1:6379")
    assert command[command.index("--update-existing-plans-devices") + 1] == "NEVER"
    assert command[command.index("--startup-dir") + 1] == str(queueserver.STARTUP_DIR)
    assert command[command.index("--user-group-permissions") + 1] == str(
        queueserver.PERMISSIONS_FILE)


def test_the_manager_sockets_default_to_loopback():
    command = re_manager_command("127.0.0.1:6379")
    assert command[command.index("--zmq-control-addr") + 1] == "tcp://127.0.0.1:60615"
    assert command[command.index("--zmq-info-addr") + 1] == "tcp://127.0.0.1:60625"
    options = queueserver.qserver_parser().parse_args([])
    assert (options.zmq_control_addr, options.http_host) == (None, "127.0.0.1")


@pytest.mark.parametrize("address, loopback", [
    ("tcp://127.0.0.1:60615", True), ("tcp://localhost:1", True), ("tcp://*:60615", False),
    ("tcp://0.0.0.0:60615", False), ("tcp://192.0.2.2:60615", False),
])
def test_loopback_addresses_are_told_apart(address, loopback):
    assert queueserver.is_loopback_address(address) is loopback


def test_the_http_front_knows_where_the_manager_is_and_keeps_its_secret_private(tmp_path):
    environment = queueserver.http_server_environment(
        {}, tmp_path, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "public")
    assert environment["QSERVER_ZMQ_CONTROL_ADDRESS"] == "tcp://127.0.0.1:1"
    assert environment["QSERVER_ZMQ_PUBLIC_KEY"] == "public"
    assert str(tmp_path) in environment["QSERVER_HTTP_SERVER_DATABASE_URI"]
    secret = tmp_path / "httpserver_secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    again = queueserver.http_server_environment({}, tmp_path, "", "", "")
    assert again["QSERVER_HTTP_SERVER_SERVER_SECRET_KEYS"] == secret.read_text().strip()


def test_accounts_are_mapped_to_the_queue_groups_and_nothing_else():
    from tcstation.qserver_access import AccessConfigError, StationResourceAccessControl

    policy = StationResourceAccessControl(groups={"admin": ["ada"]}, default_group="primary")
    assert policy.get_resource_group("ada") == "admin"
    assert policy.get_resource_group("olga") == "primary"
    with pytest.raises(AccessConfigError, match="'boss' is not one of admin, primary"):
        StationResourceAccessControl(groups={"boss": ["ada"]})
    with pytest.raises(AccessConfigError, match="'ada' is in two queue groups"):
        StationResourceAccessControl(groups={"admin": ["ada"], "primary": ["ada"]})


def test_the_station_http_configuration_loads():
    import yaml

    from tcstation.qserver_access import StationResourceAccessControl

    config = yaml.safe_load(queueserver.HTTP_CONFIG_FILE.read_text())
    policy = StationResourceAccessControl(**config["resource_access"]["args"])
    assert policy.get_resource_group("station-admin") == "admin"
    assert config["authentication"]["allow_anonymous_access"] is False
