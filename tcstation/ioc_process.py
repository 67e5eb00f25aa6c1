"""Run the simulated station IOC as a subprocess on loopback, and wait for it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from caproto import CaprotoError
from caproto.sync.client import read as ca_read

from tcstation.processes import stop_process


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (Channel Access uses both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free TCP+UDP port found on 127.0.0.1")


def loopback_client_environment(*ports: int) -> dict[str, str]:
    """Environment variables that point a Channel Access client at loopback ``ports``.

    Each port is searched separately (``127.0.0.1:port`` entries), so several
    IOCs, each on its own port, are all found by one client context.
    """
    return {
        "EPICS_CA_ADDR_LIST": " ".join(f"127.0.0.1:{port}" for port in ports),
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_SERVER_PORT": str(ports[0]),
        "EPICS_CA_REPEATER_PORT": str(ports[0] + 1),
    }


def udp_port_in_use(port: int) -> bool:
    """Whether a UDP socket already holds ``port`` (on any address, as a CA repeater does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


class CARepeater:
    """A Channel Access repeater subprocess (``caproto-repeater``); ``stop()`` ends it.

    libca finds a restarted IOC at once only through its beacons, which reach a
    client through the repeater it registered with (on ``EPICS_CA_REPEATER_PORT``):
    without one, a client's disconnected channels wait for the search back-off,
    several seconds.  Its output goes to ``/dev/null`` in its own session, so it
    never holds the caller's stdout (a CI pipe) open.  ``process`` is ``None``
    when a repeater already ran on the port: that one belongs to someone else.
    """

    def __init__(self, port: int, process: subprocess.Popen | None):
        self.port = port
        self.process = process

    def stop(self, timeout: float = 5.0) -> None:
        stop_process(self.process, timeout)

    def __enter__(self) -> CARepeater:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_repeater(port: int | None = None, timeout: float = 10.0) -> CARepeater:
    """Start a CA repeater on ``port`` (default: ``EPICS_CA_REPEATER_PORT``, else 5065).

    Start it before the clients' CA context (pyepics registers with the repeater
    when its context starts, and retries while none answers).  The caller stops it;
    it also stops itself once the calling process is gone.
    """
    if port is None:
        port = int(os.environ.get("EPICS_CA_REPEATER_PORT", "5065"))
    if udp_port_in_use(port):
        return CARepeater(port, None)
    environment = {**os.environ, "EPICS_CA_REPEATER_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tcstation.ca_repeater", "--owner-pid", str(os.getpid())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=environment, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not udp_port_in_use(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process, 1.0)
            raise RuntimeError(f"the CA repeater did not start on UDP port {port} "
                               f"within {timeout:g} s (exit code {process.returncode})")
        time.sleep(0.02)
    return CARepeater(port, process)


class SimulatedStationProcess:
    """The station IOC in a subprocess: start, wait until it serves, stop, restart.

    Parameters
    ----------
    prefix, port, speedup, sample, noise, seed, state_file
        Passed to ``python -m ioc_sim``.
    log_path
        Where the IOC's output goes (default: discarded).
    """

    def __init__(self, prefix: str, port: int, speedup: float = 1.0, sample: str = "mg_mgo",
                 noise: bool = True, seed: int | None = None, log_path: Path | None = None,
                 state_file: Path | None = None, beacon_port: int | None = None):
        if beacon_port is None:
            beacon_port = int(os.environ.get("EPICS_CA_REPEATER_PORT", port + 1))
        self.beacon_port = beacon_port
        self.prefix = prefix
        self.port = port
        self.speedup = speedup
        self.sample = sample
        self.noise = noise
        self.seed = seed
        self.log_path = log_path
        self.state_file = state_file
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        command = [sys.executable, "-m", "tcstation.ioc_sim", "--prefix", self.prefix,
                   "--port", str(self.port), "--speedup", str(self.speedup),
                   "--sample", self.sample]
        if not self.noise:
            command.append("--no-noise")
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        if self.state_file is not None:
            command += ["--state-file", str(self.state_file)]
        return command

    def start(self, timeout: float = 30.0) -> SimulatedStationProcess:
        if self.process is not None and self.process.poll() is None:
            return self
        environment = {**os.environ, **loopback_client_environment(self.port),
                       "EPICS_CAS_BEACON_PORT": str(self.beacon_port),
                       "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(self.command, stdout=output,
                                            stderr=subprocess.STDOUT, env=environment)
        finally:
            if output is not subprocess.DEVNULL:
                output.close()
        self.wait_until_serving(timeout)
        return self

    def wait_until_serving(self, timeout: float) -> None:
        """Poll the simulation clock PV until it answers and has advanced."""
        deadline = time.monotonic() + timeout
        saved = {key: os.environ.get(key) for key in loopback_client_environment(self.port)}
        os.environ.update(loopback_client_environment(self.port))
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the station IOC exited with code {self.process.returncode} "
                        f"before serving (command: {' '.join(self.command)})"
                    )
                try:
                    # no repeater: a spawned one would inherit (and hold open) our stdout
                    clock = ca_read(f"{self.prefix}SIM:Time_RBV", timeout=1.0,
                                    repeater=False).data[0]
                except (CaprotoError, TimeoutError, OSError):
                    continue
                if clock > 0:
                    return
                time.sleep(0.05)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.stop()
        raise TimeoutError(f"the station IOC did not serve {self.prefix}SIM:Time_RBV on port "
                           f"{self.port} within {timeout:g} s")

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout)

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    def __enter__(self) -> SimulatedStationProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
