"""Stopping the subprocesses the application starts (IOC, Redis, RE manager, Tiled server)."""

from __future__ import annotations

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
