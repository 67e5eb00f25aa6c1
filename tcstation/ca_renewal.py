"""Reconnect pyepics channels at once when a restarted IOC's beacons arrive.

libca puts a channel whose circuit closed into its context's disconnect
governor, a free-running 10 s timer, and searches it again only when that timer
next fires: after an IOC restart the channels come back 0 to 10 s after the IOC
serves (benchmarks/reconnect_time.py), whatever the beacons say.  A channel
created anew is searched at once.  ``ChannelRenewal`` registers with the CA
repeater, and on each beacon it clears and re-creates every disconnected
pyepics channel (the same PV objects keep their callbacks and monitors), so
they reconnect within the search's round trip of the IOC's return.

A repeater must run on ``EPICS_CA_REPEATER_PORT`` (``start_repeater``) and the
IOC must beacon to it (``ioc_sim`` does, on 127.0.0.1).

``open_session`` starts one (``start_channel_renewal``), so the IPython session,
the queue worker and the demo reconnect within about a second of an IOC's return.
The connection guard's suspension calls the cryostat's ``stop()`` while the IOC
is away; that ``stop()`` writes nothing on a disconnected controller, since a put
queued on a renewed channel would land when the IOC returns and hold the stage
mid-ramp. (A renewed channel also needs the PV's access-rights callback, which
ophyd keeps its signals' write access by; that is registered below.)
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import caproto
import epics
from epics import ca

from tcstation.ioc_process import CARepeater, start_repeater

logger = logging.getLogger(__name__)

REGISTER_TIMEOUT = 5.0  # s to wait for the repeater's confirmation at start
REGISTER_PERIOD = 1.0  # s between repeater registrations until confirmed, as libca does
PREVIOUSLY_CONNECTED = 1  # libca's cs_prev_conn: was connected, has lost its circuit


def renew_disconnected_channels() -> list[str]:
    """Clear and re-create every pyepics channel that lost its circuit; return their names.

    Channels still searching for the first time (never connected, or renewed and
    not yet connected) are left alone: they are in libca's search already.

    Each channel's connection callbacks (pyepics PVs' own) are registered on the
    new channel, and each PV's channel id is replaced at once, so a PV never holds
    a cleared channel.  A PV's auto-monitor is re-subscribed on the new connection.
    """
    renewed = []
    for entry in list(ca._chid_cache.values()):
        with entry.lock:
            chid = entry.chid
        if chid is None or ca.state(chid) != PREVIOUSLY_CONNECTED:
            continue
        callbacks = list(entry.callbacks or [])
        owners = [owner for owner in (getattr(cb, "__self__", None) for cb in callbacks)
                  if isinstance(owner, epics.PV)]
        for owner in owners:
            # the old subscription goes with the old channel
            owner._monref = None
            owner._monref_mask = None
        ca.clear_channel(chid)
        new_chid = None
        for callback in callbacks:
            new_chid = ca.create_channel(entry.pvname, connect=False, auto_cb=True,
                                         callback=callback)
        if new_chid is None:
            new_chid = ca.create_channel(entry.pvname, connect=False, auto_cb=True)
        for owner in owners:
            owner.chid = owner._args["chid"] = new_chid
            # ophyd keeps a signal's write access from these events
            ca.replace_access_rights_event(new_chid,
                                           callback=owner._PV__on_access_rights_event)
        renewed.append(entry.pvname)
    return renewed


class ChannelRenewal:
    """A thread that renews disconnected channels whenever an IOC's beacon arrives.

    Parameters
    ----------
    repeater_port
        The CA repeater's UDP port (default: ``EPICS_CA_REPEATER_PORT``, else 5065).
    """

    def __init__(self, repeater_port: int | None = None):
        if repeater_port is None:
            repeater_port = int(os.environ.get("EPICS_CA_REPEATER_PORT", "5065"))
        self.repeater_port = repeater_port
        self.renewals = 0
        self._stop = threading.Event()
        self._registered = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(REGISTER_PERIOD)
        self._broadcaster = caproto.Broadcaster(our_role=caproto.CLIENT)
        self._context = None
        self.repeater: CARepeater | None = None
        self._thread = threading.Thread(target=self._run, name="ca-channel-renewal",
                                        daemon=True)

    def start(self) -> ChannelRenewal:
        ca.initialize_libca()
        self._context = ca.current_context()
        self._thread.start()
        return self

    def wait_registered(self, timeout: float) -> bool:
        """Wait until the repeater confirms the registration; True if it did."""
        return self._registered.wait(timeout)

    def stop(self) -> None:
        """Stop renewing, and the repeater ``start_channel_renewal`` started for it."""
        self._stop.set()
        self._thread.join(5.0)
        self._socket.close()
        if self.repeater is not None:
            self.repeater.stop()

    def _register(self) -> None:
        request = self._broadcaster.send(caproto.RepeaterRegisterRequest("127.0.0.1"))
        try:
            self._socket.sendto(request, ("127.0.0.1", self.repeater_port))
        except OSError as error:
            logger.debug("CA repeater registration failed: %s", error)

    def _run(self) -> None:
        ca.attach_context(self._context)
        next_register = 0.0
        while not self._stop.is_set():
            if not self._registered.is_set() and time.monotonic() >= next_register:
                self._register()
                next_register = time.monotonic() + REGISTER_PERIOD
            try:
                datagram, address = self._socket.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                commands = self._broadcaster.recv(datagram, address)
            except caproto.CaprotoError:
                continue
            if any(isinstance(c, caproto.RepeaterConfirmResponse) for c in commands):
                self._registered.set()
            if any(isinstance(c, caproto.Beacon) for c in commands):
                renewed = renew_disconnected_channels()
                if renewed:
                    self.renewals += 1
                    logger.info("renewed %d disconnected channels on a beacon", len(renewed))


def start_channel_renewal(repeater_port: int | None = None) -> ChannelRenewal:
    """Start a CA repeater unless one runs, and a ``ChannelRenewal`` registered with it.

    A repeater started here stops with the renewal (or with this process); one that
    already ran belongs to someone else and is left alone.  A repeater that does not
    confirm within ``REGISTER_TIMEOUT`` is logged; the channels then reconnect only
    at libca's own pace (up to 10 s after the IOC's return).
    """
    repeater = start_repeater(repeater_port)
    renewal = ChannelRenewal(repeater.port).start()
    renewal.repeater = repeater
    if not renewal.wait_registered(REGISTER_TIMEOUT):
        logger.warning("the CA repeater on UDP port %d did not confirm within %g s: "
                       "channels reconnect up to 10 s after an IOC's return",
                       repeater.port, REGISTER_TIMEOUT)
    return renewal
