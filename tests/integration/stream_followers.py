"""``tcstation follow`` subprocesses for the tests, and the probe that proves they receive."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import bluesky.plans as bp
from bluesky import RunEngine
from ophyd.sim import det

from tcstation.stream import StreamConfig, open_stream

DEADLINE = 30.0


class Follower:
    """``tcstation follow`` as a subprocess, its output lines collected by a thread."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("tcstation")), "follow", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not any(predicate(line) for line in list(self.lines)):
            assert self.process.poll() is None, self.process.stderr.read()
            assert time.monotonic() < deadline, f"the follower never printed {what}"
            time.sleep(0.02)

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(DEADLINE)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(5.0)
        return code, self.process.stderr.read()


def documents(follower: Follower) -> list[tuple[str, dict]]:
    return [(entry["name"], entry["doc"]) for entry in map(json.loads, list(follower.lines))]


def wait_until_following(followers: list[Follower], config: StreamConfig) -> None:
    """Publish probe runs to the proxy until every follower has printed one.

    0MQ drops what a subscriber sends before its subscription reached the proxy (the
    slow joiner); after this, nothing a publisher sends to the proxy is lost to them.
    """
    RE = RunEngine({}, call_returns_result=False)
    stream = open_stream(RE, config)
    assert stream is not None and not stream.proxy.started, "the test run's proxy was not found"
    deadline = time.monotonic() + DEADLINE
    try:
        while True:
            (uid,) = RE(bp.count([det]), purpose="probe")
            if all(any(uid[:8] in line for line in list(follower.lines))
                   for follower in followers):
                return
            for follower in followers:
                assert follower.process.poll() is None, follower.process.stderr.read()
            assert time.monotonic() < deadline, "no probe run ever reached the followers"
            time.sleep(0.1)
    finally:
        stream.close(RE)
