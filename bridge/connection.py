"""One instrument connection: a PyVISA resource, one worker thread, one lock.

Every exchange (a write, a query, a write followed by its read-back) runs in
the connection's own thread, under its lock, so the event loop never blocks on
the wire and two exchanges never interleave. Any failure (a timeout, a closed
socket, a reply that does not parse) closes the resource: the next exchange
opens a fresh one, so a late reply to a timed-out query can never be taken for
the answer to the next.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tcstation.bridge.config import InstrumentConfig
from tcstation.protocol import ProtocolError

logger = logging.getLogger(__name__)


class CommunicationError(RuntimeError):
    """The instrument did not answer, or not in its protocol."""


class VisaConnection:
    """The bridge's line to one instrument."""

    def __init__(self, config: InstrumentConfig, backend: str = "@py"):
        self.config = config
        self.backend = backend
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1,
                                           thread_name_prefix=f"visa-{config.name}")
        self._manager = None
        self._resource = None

    # --- in the worker thread ----------------------------------------------------------

    def _open(self):
        import pyvisa

        if self._manager is None:
            self._manager = pyvisa.ResourceManager(self.backend)
        resource = self._manager.open_resource(
            self.config.resource, read_termination=self.config.read_termination,
            write_termination=self.config.write_termination,
            timeout=int(self.config.timeout * 1000))
        self._resource = resource
        return resource

    def _close(self) -> None:
        resource, self._resource = self._resource, None
        if resource is not None:
            try:
                resource.close()
            except Exception:  # noqa: BLE001 - closing a broken line may fail too
                pass

    def exchange(self, steps: list[tuple[str, str]]) -> list[str | None]:
        """Run ``steps`` (``('write', text)`` or ``('query', text)``) as one exchange.

        Returns the replies (None for a write). Any failure closes the line and
        raises :class:`CommunicationError` naming the instrument and the step.
        """
        replies: list[str | None] = []
        with self.lock:
            step = ("open", self.config.resource)
            try:
                resource = self._resource or self._open()
                for step in steps:
                    action, text = step
                    if action == "write":
                        resource.write(text)
                        replies.append(None)
                    else:
                        replies.append(resource.query(text).strip())
            except Exception as error:
                self._close()
                raise CommunicationError(
                    f"{self.config.name} ({self.config.resource}): {step[0]} {step[1]!r} "
                    f"failed: {type(error).__name__}: {error}") from error
        return replies

    def close(self) -> None:
        with self.lock:
            self._close()

    # --- from the event loop -----------------------------------------------------------

    async def run(self, function: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def query(self, text: str) -> str:
        return (await self.run(self.exchange, [("query", text)]))[0]

    async def transaction(self, steps: list[tuple[str, str]]) -> list[str | None]:
        return await self.run(self.exchange, steps)

    async def parsed(self, text: str, parse: Callable[[str, str], object]):
        """Query ``text`` and parse its reply; a reply that does not parse closes the line."""
        reply = await self.query(text)
        try:
            return parse(text, reply)
        except ProtocolError as error:
            await self.run(self.close)
            raise CommunicationError(str(error)) from error

    async def aclose(self) -> None:
        await self.run(self.close)
        self.executor.shutdown(wait=False)
