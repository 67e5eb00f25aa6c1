"""The live document stream: every RunEngine document published for other processes.

The field's way: each RunEngine has bluesky's 0MQ ``Publisher`` subscribed and pushes its
documents to a proxy (``bluesky.callbacks.zmq.Proxy``, what ``bluesky-0MQ-proxy`` runs);
anyone may follow the proxy's out port with ``RemoteDispatcher`` (``tcstation follow``,
live plots elsewhere, an operator's web page). The session and the queueserver's worker
(both through :func:`tcstation.session.open_session`) publish to the same proxy.

Configuration (environment variables):

``TCSTATION_STREAM``
    ``on`` (default) publishes every document; ``off`` does not.
``TCSTATION_STREAM_HOST``
    The proxy's host (default ``127.0.0.1``). On this machine (a loopback address) a
    session starts the proxy if none runs; elsewhere it only connects.
``TCSTATION_STREAM_IN_PORT``, ``TCSTATION_STREAM_OUT_PORT``
    The proxy's ports: publishers push to the first, followers subscribe to the second
    (default 5577 and 5578, bluesky's conventional pair).

The proxy is shared, owned by no session: the first session that finds none starts
``tcstation stream-proxy`` as a process of its own, bound to 127.0.0.1, and it stays up
while any publisher is connected and ``--idle`` seconds (default 600) after the last one
left, so a second session never loses it when the first ends. Followers reconnect by
themselves when a later session starts a new proxy on the same ports. For a station
service (a systemd unit) run ``tcstation stream-proxy --idle 0``: it then never stops on
its own, and sessions find it.

0MQ PUB never blocks: with no proxy, or a proxy with no follower, documents are dropped,
and the RunEngine does not wait. The payload is bluesky's default (pickle), so a follower
must trust whoever can publish to the in port: keep the proxy on loopback, or give other
machines only the out port.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

logger = logging.getLogger(__name__)

STREAM_VARIABLE = "TCSTATION_STREAM"
HOST_VARIABLE = "TCSTATION_STREAM_HOST"
IN_PORT_VARIABLE = "TCSTATION_STREAM_IN_PORT"
OUT_PORT_VARIABLE = "TCSTATION_STREAM_OUT_PORT"
STREAM_CHOICES = ("on", "off")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_IN_PORT = 5577
DEFAULT_OUT_PORT = 5578
DEFAULT_IDLE = 600.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
PROXY_START_TIMEOUT = 20.0
PUBLISHER_LINGER_MS = 1000


class StreamError(RuntimeError):
    """The document stream cannot be set up: a bad setting, or its ports are taken."""


@dataclass(frozen=True)
class StreamConfig:
    """Where the document stream's proxy is.

    Parameters
    ----------
    host
        The proxy's host; a loopback address lets a session start it.
    in_port
        Port publishers (RunEngines) push to.
    out_port
        Port followers subscribe to.
    enabled
        Whether sessions publish at all.
    """

    host: str = DEFAULT_HOST
    in_port: int = DEFAULT_IN_PORT
    out_port: int = DEFAULT_OUT_PORT
    enabled: bool = True

    def __post_init__(self) -> None:
        for variable, port in ((IN_PORT_VARIABLE, self.in_port),
                               (OUT_PORT_VARIABLE, self.out_port)):
            if not 1 <= port <= 65535:
                raise StreamError(f"{variable}={port}: expected a port in 1..65535")
        if self.in_port == self.out_port:
            raise StreamError(f"{IN_PORT_VARIABLE} and {OUT_PORT_VARIABLE} are both "
                              f"{self.in_port}: the proxy needs two ports")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> StreamConfig:
        """Read ``TCSTATION_STREAM*`` (see the module docstring).

        Raises
        ------
        StreamError
            Naming the variable, its value and what is allowed.
        """
        environ = os.environ if environ is None else environ
        enabled = environ.get(STREAM_VARIABLE, "on").strip().lower() or "on"
        if enabled not in STREAM_CHOICES:
            raise StreamError(f"{STREAM_VARIABLE}={enabled!r} is not one of "
                              f"{', '.join(STREAM_CHOICES)}")

        def port(variable: str, default: int) -> int:
            text = environ.get(variable, "").strip()
            if not text:
                return default
            try:
                return int(text)
            except ValueError:
                raise StreamError(f"{variable}={text!r}: expected a port number") from None

        return cls(host=environ.get(HOST_VARIABLE, "").strip() or DEFAULT_HOST,
                   in_port=port(IN_PORT_VARIABLE, DEFAULT_IN_PORT),
                   out_port=port(OUT_PORT_VARIABLE, DEFAULT_OUT_PORT),
                   enabled=enabled == "on")

    @property
    def in_address(self) -> str:
        return f"tcp://{self.host}:{self.in_port}"

    @property
    def out_address(self) -> str:
        return f"tcp://{self.host}:{self.out_port}"

    @property
    def is_local(self) -> bool:
        return self.host in LOCAL_HOSTS


def _port_answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _zmq_handshake(address: str, socket_type: int, timeout: float) -> bool:
    """Whether a 0MQ peer of a type that fits ``socket_type`` completes the handshake."""
    context = zmq.Context()
    sock = context.socket(socket_type)
    sock.setsockopt(zmq.LINGER, 0)
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED |
                                      zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                      zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    try:
        sock.connect(address)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not monitor.poll(remaining * 1000):
                return False
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return True
            if event != 0:
                return False
        return False
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        context.term()


def proxy_state(config: StreamConfig, timeout: float = 2.0) -> str:
    """``"proxy"`` if a 0MQ proxy serves both ports, ``"free"`` if neither is taken.

    A proxy is recognised without sending anything (followers would see a probe): its in
    port completes a 0MQ handshake with a PUB socket and its out port with a SUB socket.

    Raises
    ------
    StreamError
        Something else holds a port, naming it and the variables that move the stream.
    """
    taken = {port: _port_answers(config.host, port, timeout)
             for port in (config.in_port, config.out_port)}
    if not any(taken.values()):
        return "free"
    if (all(taken.values())
            and _zmq_handshake(config.in_address, zmq.PUB, timeout)
            and _zmq_handshake(config.out_address, zmq.SUB, timeout)):
        return "proxy"
    ports = ", ".join(str(port) for port, held in taken.items() if held)
    raise StreamError(
        f"port {ports} on {config.host} is taken by something that is not a bluesky 0MQ "
        f"proxy (in {config.in_port}, out {config.out_port}); find it with `ss -ltnp`, or "
        f"move the document stream with {IN_PORT_VARIABLE} and {OUT_PORT_VARIABLE} "
        f"(or {STREAM_VARIABLE}=off)")


@dataclass
class ProxyHandle:
    """A proxy found or started; ``process`` is None for one that already ran."""

    config: StreamConfig
    process: subprocess.Popen | None = None

    @property
    def started(self) -> bool:
        return self.process is not None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the proxy this handle started (for tests and the command line; sessions don't)."""
        from tcstation.processes import stop_process

        stop_process(self.process, timeout)


def start_proxy(config: StreamConfig, *, idle: float = DEFAULT_IDLE,
                log_path: str | Path | None = None,
                timeout: float = PROXY_START_TIMEOUT) -> ProxyHandle:
    """Start ``tcstation stream-proxy`` as a process of its own and wait until it serves.

    It runs in a session of its own (a Ctrl-C in the terminal does not reach it) and
    outlives its starter; it stops ``idle`` s after its last publisher left (0: never).
    If another starter wins the ports first, that proxy is used.
    """
    with tempfile.TemporaryDirectory(prefix="tcstation-stream-") as scratch:
        ready = Path(scratch) / "ready"
        command = [sys.executable, "-m", "tcstation.stream", "--bind", config.host,
                   "--in-port", str(config.in_port),
                   "--out-port", str(config.out_port), "--idle", str(idle),
                   "--ready-file", str(ready)]
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       close_fds=True)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                if proxy_state(config) == "proxy":  # another session's proxy won the ports
                    return ProxyHandle(config)
                raise StreamError(f"the document stream's proxy exited with code "
                                  f"{process.returncode} ({' '.join(command)})")
            if time.monotonic() > deadline:
                ProxyHandle(config, process).stop()
                raise StreamError(f"the document stream's proxy did not start within "
                                  f"{timeout:g} s")
            time.sleep(0.05)
    logger.info("document stream proxy started (pid %d): in %s, out %s", process.pid,
                config.in_address, config.out_address)
    return ProxyHandle(config, process)


def ensure_proxy(config: StreamConfig, *, log_path: str | Path | None = None) -> ProxyHandle:
    """Use the proxy on ``config``'s ports, starting one if none runs and the host is local.

    Raises
    ------
    StreamError
        The ports are held by something else, or a remote proxy does not answer.
    """
    state = proxy_state(config)
    if state == "proxy":
        return ProxyHandle(config)
    if not config.is_local:
        raise StreamError(f"no document stream proxy answers at {config.host} (in "
                          f"{config.in_port}, out {config.out_port}); start one there "
                          f"(`tcstation stream-proxy`) or unset {HOST_VARIABLE}")
    return start_proxy(config, log_path=log_path)


class StreamPublisher:
    """bluesky's 0MQ ``Publisher`` as a RunEngine callback that can never fail a run.

    A document that cannot be sent is logged (once per run) and dropped. The socket's
    linger is short, so closing it with the proxy gone does not hang.
    """

    def __init__(self, address: str):
        from bluesky.callbacks.zmq import Publisher

        self.publisher = Publisher(address)
        self.address = address
        # An XPUB sends as the Publisher's PUB does, and also hands over the proxy's
        # subscription: until that has arrived a PUB drops every message, so the first
        # documents of a run started right after connecting could be lost on a busy machine.
        self.publisher._socket.close(0)
        self._socket = self.publisher._socket = self.publisher._context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.LINGER, PUBLISHER_LINGER_MS)
        self._socket.connect(self.publisher.address)
        self._warned = False

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start":
            self._warned = False
        try:
            self.publisher(name, doc)
        except Exception as error:
            if not self._warned:
                logger.warning("the document stream dropped a %s document (%s); the run goes on",
                               name, error)
                self._warned = True

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the proxy has subscribed: from then on no document is dropped.

        Only from the thread that owns the publisher, before any document is sent.
        """
        if not self._socket.poll(timeout * 1000, zmq.POLLIN):
            return False
        self._socket.recv()  # the subscription message
        return True

    def close(self) -> None:
        self.publisher.close()


@dataclass
class DocumentStream:
    """The session's part of the stream: its publisher and the proxy it found or started."""

    config: StreamConfig
    publisher: StreamPublisher
    proxy: ProxyHandle
    token: int | None = None

    def close(self, RE=None) -> None:
        if RE is not None and self.token is not None:
            RE.unsubscribe(self.token)
        self.publisher.close()


def open_stream(RE, config: StreamConfig | None = None, *,
                log_path: str | Path | None = None,
                connect_timeout: float = 5.0) -> DocumentStream | None:
    """Publish ``RE``'s documents to the stream's proxy (started if needed).

    Returns None, with a warning that says why, when the stream is off or cannot be set
    up: the stream is for watching, and never keeps a session from opening.
    """
    try:
        config = config or StreamConfig.from_environment()
        if not config.enabled:
            return None
        proxy = ensure_proxy(config, log_path=log_path)
    except StreamError as error:
        logger.warning("no live document stream: %s", error)
        return None
    publisher = StreamPublisher(config.in_address)
    if not publisher.wait_connected(connect_timeout):
        logger.warning("the document stream's proxy at %s did not accept the publisher within "
                       "%g s; documents are dropped until it does", config.in_address,
                       connect_timeout)
    stream = DocumentStream(config, publisher, proxy)
    stream.token = RE.subscribe(publisher)
    return stream


def proxy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcstation stream-proxy",
        description="Serve the document stream: bluesky's 0MQ Proxy, RunEngines publish to "
                    "the in port, followers (`tcstation follow`) subscribe to the out port.")
    config = StreamConfig.from_environment()
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default %(default)s; 0.0.0.0 serves "
                             "other machines, with no authentication)")
    parser.add_argument("--in-port", type=int, default=config.in_port,
                        help=f"publishers' port (default {IN_PORT_VARIABLE} or %(default)s)")
    parser.add_argument("--out-port", type=int, default=config.out_port,
                        help=f"followers' port (default {OUT_PORT_VARIABLE} or %(default)s)")
    parser.add_argument("--idle", type=float, default=0.0,
                        help="stop this many seconds after the last publisher left "
                             "(default 0: never; sessions start it with 600)")
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    return parser


def run_proxy(bind: str, in_port: int, out_port: int, idle: float = 0.0,
              ready_file: Path | None = None) -> int:
    """Forward from ``in_port`` to ``out_port`` until SIGTERM, Ctrl-C or ``idle`` s unused.

    The sockets are made as bluesky's ``Proxy`` makes them (its ``configure_server_socket``:
    a SUB subscribed to everything, a PUB); forwarding is ``zmq.proxy_steerable`` so that
    the idle rule can stop it cleanly. Publishers are counted from the in socket's events.
    """
    import signal
    import threading

    from bluesky.callbacks.zmq import Proxy

    context = zmq.Context()
    try:
        frontend, _ = Proxy.configure_server_socket(context, zmq.SUB, f"{bind}:{in_port}", None)
        backend, _ = Proxy.configure_server_socket(context, zmq.PUB, f"{bind}:{out_port}", None)
    except zmq.ZMQError as error:
        context.destroy(0)
        print(f"tcstation stream-proxy: cannot listen on {bind} ports {in_port}/{out_port}: "
              f"{error}", file=sys.stderr, flush=True)
        return 3
    frontend.setsockopt_string(zmq.SUBSCRIBE, "")
    monitor = frontend.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
    control_address = f"inproc://stream-proxy-control-{os.getpid()}"
    control = context.socket(zmq.PAIR)
    control.bind(control_address)
    forwarder = threading.Thread(target=zmq.proxy_steerable,
                                 args=(frontend, backend, None, control), daemon=True)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())
    forwarder.start()
    print(f"document stream: publishers to tcp://{bind}:{in_port}, followers on "
          f"tcp://{bind}:{out_port}" + (f"; stops {idle:g} s after the last publisher left"
                                       if idle > 0 else ""), flush=True)
    if ready_file is not None:
        ready_file.write_text("ready")
    publishers, last_seen = 0, time.monotonic()
    reason = "stopped"
    try:
        while not stop_requested.is_set():
            if monitor.poll(200):
                event = recv_monitor_message(monitor)["event"]
                publishers += 1 if event == zmq.EVENT_ACCEPTED else -1
                publishers = max(publishers, 0)
                last_seen = time.monotonic()
            elif idle > 0 and publishers == 0 and time.monotonic() - last_seen > idle:
                reason = f"no publisher for {idle:g} s"
                break
    except KeyboardInterrupt:
        reason = "interrupted"
    commander = context.socket(zmq.PAIR)
    commander.connect(control_address)
    commander.send(b"TERMINATE")
    forwarder.join(5.0)
    print(f"document stream proxy: {reason}; exiting", flush=True)
    context.destroy(0)
    return 0


def proxy_main(argv: list[str]) -> int:
    args = proxy_parser().parse_args(argv)
    if args.bind not in LOCAL_HOSTS:
        print(f"tcstation stream-proxy: WARNING: {args.bind} is reachable from other machines; "
              "anyone who reaches the in port can publish to every follower (pickled "
              "documents, no authentication)", file=sys.stderr, flush=True)
    return run_proxy(args.bind, args.in_port, args.out_port, args.idle, args.ready_file)


if __name__ == "__main__":
    sys.exit(proxy_main(sys.argv[1:]))
