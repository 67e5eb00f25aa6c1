"""Emulators and the bridge as subprocesses, for the bridge's integration tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from caproto import CaprotoError
from caproto.sync.client import read

from tcstation.ioc_process import free_port, loopback_client_environment
from tcstation.processes import stop_process
from tests.conftest import _next_port, random_prefix
from tests.integration.polling import wait_for

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

    def kill(self):
        """SIGKILL: the instruments vanish mid-exchange, no goodbye on any socket."""
        self.process.kill()
        self.process.wait(10.0)

    def ask(self, text: str, instrument: str = "lakeshore336") -> str:
        """A query to an emulated instrument on a connection of the test's own."""
        with socket.create_connection(("127.0.0.1", self.ports[instrument]),
                                      timeout=10.0) as line:
            line.sendall(text.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = line.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode().strip()


class BridgeProcess:
    """``tcstation bridge`` on a CA port of the session's pool, from a TOML of ``instruments``."""

    def __init__(self, directory, instruments: str):
        self.prefix = random_prefix()
        self.port = next(_next_port)
        self.config = directory / "bridge.toml"
        self.config.write_text(f'prefix = "{self.prefix}"\n\n' + instruments)
        self.log = directory / "bridge.log"
        self.process = None

    def start(self, connected_pv: str):
        environment = {**os.environ, **loopback_client_environment(self.port)}
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tcstation.bridge", str(self.config), "--port",
                 str(self.port), "--log-level", "WARNING"], stdout=output,
                stderr=subprocess.STDOUT, env=environment)
        wait_for(lambda: self.process.poll() is not None
                 or value(f"{self.prefix}{connected_pv}") == 1,
                 START_TIMEOUT, f"the bridge to serve {connected_pv} = Yes", poll=0.2)
        assert self.process.poll() is None, self.log.read_text()
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        stop_process(self.process, timeout)
        return None if self.process is None else self.process.returncode


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
