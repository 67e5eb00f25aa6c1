"""caproto's asyncio Channel Access server, with an EPICS IOC's timing.

Three departures from caproto's defaults, each what an EPICS IOC (rsrv) does:

* **A put completes after its monitors.**  caproto sends the write response as
  soon as the putter returns, while the putter's monitor updates (the new value,
  its ``_RBV``, the measurements it changed) wait in the subscription queues.
  Here the write response (or the refusal) joins the end of the same queues, so
  a client sees every update the put caused before its put completes.
* **No batching delay.**  caproto holds each monitor update up to 10 ms (and
  longer under load) to batch it with later ones.  Here each circuit sends at
  once everything queued when it wakes: the updates of one tick or one put still
  leave as one TCP write, and nothing waits for updates that have not happened.
* **TCP_NODELAY.**  asyncio sets it only on sockets created with
  ``IPPROTO_TCP``; caproto's listening socket uses protocol 0, so a small update
  waited for the client's delayed ACK (about 40 ms).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import caproto as ca
from caproto.asyncio.server import Context, VirtualCircuit
from caproto.server.common import DisconnectedCircuit

ORDERED_RESPONSES = (ca.WriteNotifyResponse, ca.ErrorResponse)


class PutCompletion:
    """A put's response, queued behind the monitor updates the put caused."""

    __slots__ = ("circuit", "commands")

    def __init__(self, circuit: StationCircuit, commands: tuple):
        self.circuit = circuit
        self.commands = commands


class StationCircuit(VirtualCircuit):
    """One client's TCP circuit."""

    async def send(self, *commands):
        if (commands and self._sub_task is not None
                and all(isinstance(command, ORDERED_RESPONSES) for command in commands)):
            await self.context.subscription_queue.put(PutCompletion(self, commands))
            return
        await super().send(*commands)

    async def subscription_queue_loop(self):
        self.events_on.set()
        queue = self.subscription_queue
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            live = {sub.subscriptionid for subs in self.subscriptions.values() for sub in subs}
            commands = []
            for item in items:
                if isinstance(item, PutCompletion):
                    commands.extend(item.commands)
                    continue
                # A dead reference is an update dropped for a slow client (caproto's quota);
                # an update of a subscription cancelled since it was queued is not sent.
                command = item()
                if command is not None and command.subscriptionid in live:
                    commands.append(command)
            if not commands:
                continue
            try:
                await VirtualCircuit.send(self, *commands)
            except DisconnectedCircuit:
                await self._on_disconnect()
                self.circuit.disconnect()
                await self.context.circuit_disconnected(self)
                return


class StationContext(Context):
    """The server context: ordered put completions, TCP_NODELAY on every circuit."""

    CircuitClass = StationCircuit

    async def tcp_handler(self, client, addr):
        sock = client.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await super().tcp_handler(client, addr)

    async def subscription_queue_loop(self):
        while True:
            item = await self.subscription_queue.get()
            if isinstance(item, PutCompletion):
                circuit = item.circuit
                if not circuit.connected:
                    continue
                try:
                    circuit.subscription_queue.put_nowait(item)
                except asyncio.QueueFull:
                    # A client that far behind gets its response now rather than never.
                    try:
                        await VirtualCircuit.send(circuit, *item.commands)
                    except DisconnectedCircuit:
                        pass
                continue
            await self._subscription_queue_iteration(*item)


def run(pvdb: dict, interfaces: list[str],
        fill: Callable[[], Awaitable[None]] | None = None) -> None:
    """Serve ``pvdb`` until interrupted (as ``caproto.server.run`` does, with our context).

    ``fill``, if given, is awaited before the server answers anything: it writes the
    PVs' first values.
    """

    async def serve():
        if fill is not None:
            await fill()
        await StationContext(pvdb, interfaces).run()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
