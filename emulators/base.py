"""The part every emulator shares: an asyncio TCP server of terminated text messages.

A message is split at ``;`` into commands, each handled in turn; the replies of
its queries go back in one line joined by ``;`` (or, where the instrument does
so, each on its own line), ended by the instrument's terminator. A command the
instrument would not take raises :class:`CommandError`; the emulator then does
what the instrument does (ignore it, set a status bit, queue an error) through
:meth:`InstrumentEmulator.refuse`, and carries on with the rest of the message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

logger = logging.getLogger(__name__)


class CommandError(ValueError):
    """A command the instrument refuses; ``kind`` is ``'header'`` (unknown command) or
    ``'range'`` (a parameter it cannot take)."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def unknown(command: str) -> CommandError:
    return CommandError("header", f"unknown command {command!r}")


def parameters(command: str, text: str, count: int | tuple[int, ...]) -> list[str]:
    """The comma-separated parameters of ``command`` (``count`` of them, or one of the counts)."""
    fields = [field.strip() for field in text.split(",")] if text.strip() else []
    counts = (count,) if isinstance(count, int) else count
    if len(fields) not in counts:
        raise CommandError("range", f"{command!r} takes {counts} parameters, got {len(fields)}")
    return fields


def number(command: str, text: str, low: float = -math.inf, high: float = math.inf) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError("range", f"{command!r}: {text!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise CommandError("range", f"{command!r}: {text} is outside {low:g} to {high:g}")
    return value


def whole(command: str, text: str, low: int, high: int) -> int:
    value = number(command, text, low, high)
    if value != int(value):
        raise CommandError("range", f"{command!r}: {text} is not a whole number")
    return int(value)


class Clock:
    """Advances the shared simulation to the wall time, times the speed-up."""

    def __init__(self, simulation, speedup: float = 1.0, max_step: float = 10.0):
        self.simulation = simulation
        self.speedup = speedup
        self.max_step = max_step
        self._last = time.monotonic()
        self.listeners: list = []
        """Called after every step (an emulator latching a status bit)."""

    def catch_up(self) -> None:
        """Bring the simulation to now (in steps of at most ``max_step`` simulated s)."""
        now = time.monotonic()
        remaining = (now - self._last) * self.speedup
        self._last = now
        while remaining > 1e-6:
            step = min(remaining, self.max_step)
            self.simulation.advance(step)
            remaining -= step
            for listener in self.listeners:
                listener()

    async def run(self, period: float = 0.1) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                self.catch_up()
            except Exception:
                logger.exception("simulation step failed; the emulators keep answering")


class InstrumentEmulator:
    """One instrument on one TCP port. Subclasses set the class attributes and ``handle``."""

    name = "instrument"
    write_termination = "\r\n"
    """What ends a reply."""
    join_replies = True
    """Replies of a chained message in one line joined by ``;`` (else a line each)."""
    command_interval = 0.0
    """Wall seconds the instrument takes per command (its pace)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.server: asyncio.base_events.Server | None = None
        self.connections = 0

    @property
    def simulation(self):
        return self.clock.simulation

    def handle(self, command: str, argument: str) -> str | None:
        """Answer one command: ``command`` upper-cased without its parameters, ``argument``
        the text after it; return the reply of a query, None for a command."""
        raise NotImplementedError

    def refuse(self, error: CommandError, command: str) -> None:
        """What the instrument does with a command it refuses (default: ignore it)."""
        logger.info("%s ignores %r: %s", self.name, command, error)

    def split(self, text: str) -> tuple[str, str]:
        """``'SETP 1,4.2'`` -> ``('SETP', '1,4.2')``; ``'KRDG?A'`` -> ``('KRDG?', 'A')``."""
        text = text.strip()
        head, _, rest = text.partition(" ")
        if "?" in head and not head.endswith("?"):
            head, _, tail = head.partition("?")
            head, rest = head + "?", tail + (" " + rest if rest else "")
        return head.upper(), rest.strip()

    def message(self, line: str) -> list[str]:
        """The replies to one terminated message."""
        self.clock.catch_up()
        replies = []
        for part in line.split(";"):
            if not part.strip():
                continue
            command, argument = self.split(part)
            try:
                reply = self.handle(command, argument)
            except CommandError as error:
                self.refuse(error, part.strip())
                continue
            if reply is not None:
                replies.append(reply)
        return replies

    async def serve_connection(self, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    await reader.read(65536)
                    continue
                line = raw.decode("ascii", errors="replace").rstrip("\r\n")
                commands = max(1, line.count(";") + 1)
                if self.command_interval:
                    await asyncio.sleep(self.command_interval * commands)
                replies = self.message(line)
                if not replies:
                    continue
                if self.join_replies:
                    text = ";".join(replies) + self.write_termination
                else:
                    text = "".join(reply + self.write_termination for reply in replies)
                writer.write(text.encode("ascii"))
                await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            self.connections -= 1
            writer.close()

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host``:``port`` (0: a free port); return the port."""
        self.server = await asyncio.start_server(self.serve_connection, host, port)
        return self.server.sockets[0].getsockname()[1]
