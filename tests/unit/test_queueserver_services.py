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
