"""Polling for a condition the test waits on, with a message naming what it waited for."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.02):
    """Return the predicate's first truthy result; fail after ``timeout`` wall seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def events_of(RE, plan) -> list[dict]:
    """Run ``plan`` and return its events' data, in order."""
    events = []
    RE(plan, {"event": lambda name, doc: events.append(doc["data"])})
    return events
