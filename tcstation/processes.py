"""Stopping the subprocesses the application starts (IOC, Redis, RE manager, Tiled server)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time

logger = logging.getLogger(__name__)


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


def stop_when_orphaned(owner_pid: int, what: str, poll: float = 0.5) -> threading.Thread:
    """SIGTERM this process once ``owner_pid`` is no longer its parent.

    A helper server (the Tiled server, the CA repeater) runs in a session of its
    own, so that a Ctrl-C meant for a plan does not kill it; but an owner that dies
    without stopping it (the queueserver's worker is killed, not closed) must not
    leave it running.  ``what`` names the server in the log line.
    """
    def watch() -> None:
        while os.getppid() == owner_pid:
            time.sleep(poll)
        logger.warning("the process that started this %s (pid %d) is gone; stopping",
                       what, owner_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="owner-watch", daemon=True)
    thread.start()
    return thread
