"""The bridge end to end: emulators and the bridge IOC as subprocesses, real TCP between
them (PyVISA, pyvisa-py), real Channel Access to the test.

The LakeShore 336 is bridged: its readings follow the model, a setpoint put reaches the
emulated controller and reads back, and an emulator killed mid-run puts the PVs in
COMM / INVALID alarm until it is back, when the bridge reconnects by itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from caproto import AlarmSeverity, AlarmStatus, CaprotoError
from caproto.sync.client import read, write

from tcstation.ioc_process import free_port, loopback_client_environment
from tcstation.processes import stop_process
from tests.conftest import _next_port, random_prefix
from tests.integration.polling import wait_for

pytestmark = pytest.mark.integration

SPEEDUP = 60.0
START_TIMEOUT = 60.0  # s: importing the model and caproto on a busy machine is slow
WAIT = 30.0  # s: for a reading the model reaches in a few wall seconds


class Emulators:
    """``tcstation emulate`` on fixed loopback ports (so a restart takes the same ones)."""

    def __init__(self, directory):
        self.ports = {name: free_port() for name in
                      ("lakeshore336", "lockin1", "lockin2", "sourcemeter")}
        self.ports_file = directory / "ports.json"
        self.log = directory / "emulators.log"
        self.process = None

    def start(self):
        self.ports_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "tcstation.emulators", "--speedup", str(SPEEDUP),
                   "--seed", "1", "--ports-file", str(self.ports_file)]
        for name, port in self.ports.items():
            command += [f"--{name}-port", str(port)]
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        wait_for(lambda: self.ports_file.exists() or self.process.poll() is not None,
                 START_TIMEOUT, "the emulators to listen", poll=0.1)
        assert self.process.poll() is None, self.log.read_text()
        assert json.loads(self.ports_file.read_text()) == self.ports
        return self

    def stop(self):
        stop_process(self.process, 10.0)

    def ask(self, text: str) -> str:
        """A query to the emulated LakeShore on a connection of the test's own."""
        with socket.create_connection(("127.0.0.1", self.ports["lakeshore336"]),
                                      timeout=10.0) as line:
            line.sendall(text.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = line.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode().strip()


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    running = Emulators(tmp_path_factory.mktemp("emulators")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def bridge(emulators, tmp_path_factory):
    """The bridge IOC on a port of the session's pool; yields the instrument's PV prefix."""
    directory = tmp_path_factory.mktemp("bridge")
    prefix = random_prefix()
    port = next(_next_port)
    config = directory / "bridge.toml"
    config.write_text(
        f'prefix = "{prefix}"\n\n[instruments.cryostat]\nkind = "lakeshore336"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["lakeshore336"]}::SOCKET"\n'
        'timeout = 2.0\npoll_period = 0.25\nreconnect_period = 0.5\n')
    log = directory / "bridge.log"
    environment = {**os.environ, **loopback_client_environment(port)}
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tcstation.bridge", str(config), "--port", str(port),
             "--log-level", "WARNING"], stdout=output, stderr=subprocess.STDOUT,
            env=environment)
    pv_prefix = f"{prefix}TC:"
    try:
        wait_for(lambda: process.poll() is not None or value(f"{pv_prefix}Connected_RBV") == 1,
                 START_TIMEOUT, "the bridge to connect to the emulated LakeShore", poll=0.2)
        assert process.poll() is None, log.read_text()
        yield pv_prefix
    finally:
        stop_process(process, 10.0)


def reading(name: str):
    """A PV's value and alarm, or None while it does not answer."""
    try:
        response = read(name, data_type="time", timeout=2.0, repeater=False)
    except (CaprotoError, TimeoutError, OSError):
        return None
    return response.data[0], response.metadata.status, response.metadata.severity, \
        response.metadata.timestamp


def value(name: str):
    got = reading(name)
    return None if got is None else got[0]


def test_probe_names_the_emulated_instruments(emulators, tmp_path):
    config = tmp_path / "probe.toml"
    config.write_text(
        '[instruments.cryostat]\nkind = "lakeshore336"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["lakeshore336"]}::SOCKET"\n'
        '[instruments.bias_source]\nkind = "sourcemeter"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["sourcemeter"]}::SOCKET"\n'
        '[instruments.susceptometer]\nkind = "sr830"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["lockin1"]}::SOCKET"\n'
        '[instruments.nothing]\nkind = "sr830"\n'
        f'resource = "TCPIP0::127.0.0.1::{free_port()}::SOCKET"\ntimeout = 1.0\n')
    result = subprocess.run([sys.executable, "-m", "tcstation.bridge", str(config), "--probe"],
                            capture_output=True, text=True, timeout=60)
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "answers: LSCI,MODEL336" in lines["cryostat"], result.stdout
    assert "answers: KEITHLEY INSTRUMENTS INC.,MODEL 2400" in lines["bias_source"]
    assert "answers: Stanford_Research_Systems,SR830" in lines["susceptometer"]
    assert "does not answer" in lines["nothing"]
    assert result.returncode == 1


def test_serves_the_controller_identity(bridge):
    assert value(f"{bridge}IDN_RBV").startswith(b"LSCI,MODEL336")
    assert value(f"{bridge}IN2:Name_RBV") == b"Sample"


def test_setpoint_reaches_the_controller_and_inputs_follow_the_model(bridge, emulators):
    write(f"{bridge}OUT1:SP", 15.0, notify=True, timeout=10.0, repeater=False)
    assert value(f"{bridge}OUT1:SP_RBV") == pytest.approx(15.0)
    assert float(emulators.ask("SETP? 1")) == pytest.approx(15.0)
    write(f"{bridge}HTR1:Range", "High", notify=True, timeout=10.0, repeater=False)
    assert emulators.ask("RANGE? 1") == "3"
    # the stage (input A) and then the sample (B, lagging it) reach the setpoint
    for pv in ("IN1", "IN2"):
        wait_for(lambda pv=pv: (value(f"{bridge}{pv}") or 0) > 14.8, WAIT,
                 f"{bridge}{pv} to reach 15 K", poll=0.2)
    # what the bridge serves is what the emulated controller reads now (settled: within
    # the sensor noise and the drift between the poll and this query)
    for pv, letter in (("IN1", "A"), ("IN2", "B")):
        served = value(f"{bridge}{pv}")
        assert served == pytest.approx(float(emulators.ask(f"KRDG? {letter}")), abs=0.1)
    assert value(f"{bridge}IN1:Kelvin") == pytest.approx(value(f"{bridge}IN1"), abs=0.1)
    assert value(f"{bridge}HTR1") > 0.0


def test_a_refused_put_changes_nothing(bridge, emulators):
    before = emulators.ask("SETP? 1")
    with pytest.raises(CaprotoError):
        write(f"{bridge}OUT1:SP", 1000.0, notify=True, timeout=10.0, repeater=False)
    assert emulators.ask("SETP? 1") == before


def test_a_lost_controller_alarms_and_the_bridge_reconnects(bridge, emulators):
    wait_for(lambda: (reading(f"{bridge}IN1") or (0, -1))[1] == AlarmStatus.NO_ALARM, WAIT,
             f"{bridge}IN1 without alarm before the outage", poll=0.2)
    emulators.stop()
    for pv in ("IN1", "IN2", "OUT1:SP_RBV", "HTR1"):
        wait_for(lambda pv=pv: (reading(f"{bridge}{pv}") or (0, 0, 0))[1:3] == (
            AlarmStatus.COMM, AlarmSeverity.INVALID_ALARM), WAIT,
            f"{bridge}{pv} in COMM / INVALID alarm with the controller gone", poll=0.2)
    assert value(f"{bridge}Connected_RBV") == 0
    stale = reading(f"{bridge}IN1")
    with pytest.raises(CaprotoError):  # a put while the controller is gone fails
        write(f"{bridge}OUT1:SP", 6.0, notify=True, timeout=10.0, repeater=False)
    emulators.start()  # a fresh controller: the stage back at 4.2 K
    wait_for(lambda: value(f"{bridge}Connected_RBV") == 1, START_TIMEOUT,
             "the bridge to reconnect", poll=0.2)
    fresh = wait_for(lambda: (lambda got: got if got and got[1] == AlarmStatus.NO_ALARM
                              and got[3] > stale[3] else None)(reading(f"{bridge}IN1")),
                     WAIT, f"{bridge}IN1 fresh and without alarm", poll=0.2)
    assert fresh[0] == pytest.approx(4.2, abs=0.2)
    assert value(f"{bridge}OUT1:SP_RBV") == pytest.approx(4.2)
    write(f"{bridge}OUT1:SP", 6.0, notify=True, timeout=10.0, repeater=False)
    assert float(emulators.ask("SETP? 1")) == pytest.approx(6.0)
