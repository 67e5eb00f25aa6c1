"""Stopping the subprocesses the application starts (IOC, Redis, RE manager, Tiled server)."""

from __future__ import annotations

import os
import subprocess


def stop_process(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM ``process``, then SIGKILL if it has not exited after ``timeout`` s; reap it.

    A no-op for ``None`` or a process that has already exited.
    """
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def process_exists(pid: int) -> bool:
    """True while a process ``pid`` exists (also one of another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
