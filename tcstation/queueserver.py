"""The station's queueserver: Redis, the RE manager on our profile, and its plan list.

``tcstation qserver`` checks that Redis answers (and starts a private
``redis-server`` for the manager's lifetime if nothing answers on a local
address), optionally starts the simulated station, then runs
``start-re-manager`` on ``profile_collection/startup`` with the profile's
``existing_plans_and_devices.yaml`` and ``user_group_permissions.yaml``. It
stops what it started, on Ctrl-C and on SIGTERM alike.

Access: the manager's 0MQ sockets (control and console output) listen on
127.0.0.1 only; a 0MQ client names its own permission group, so the socket is
for this machine's station account. ``--http`` also starts bluesky-httpserver
(``profile_collection/httpserver.yml``, see :mod:`tcstation.qserver_access`)
as the only way in from elsewhere: every request is authenticated (a login or
an API key), the group comes from the server's configuration, never from the
client, and the 0MQ socket is then encrypted with a key only the HTTP server
holds, so local clients cannot go around it either.

``tcstation qserver-yaml`` regenerates ``existing_plans_and_devices.yaml`` from
the code (loading the startup against a temporary simulated station, with
storage off); ``--check`` only compares and fails when the file is stale.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tcstation.ioc_process import SimulatedStationProcess, free_port, loopback_client_environment
from tcstation.processes import stop_process
from tcstation.qserver_access import load_or_create_secret
from tcstation.storage.config import StorageConfig, StorageConfigError, prepare_data_dir

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profile_collection"
STARTUP_DIR = PROFILE_DIR / "startup"
EXISTING_PLANS_FILE = STARTUP_DIR / "existing_plans_and_devices.yaml"
PERMISSIONS_FILE = STARTUP_DIR / "user_group_permissions.yaml"
HTTP_CONFIG_FILE = PROFILE_DIR / "httpserver.yml"
LOOPBACK = "127.0.0.1"
DEFAULT_ZMQ_CONTROL_PORT = 60615
DEFAULT_ZMQ_INFO_PORT = 60625
DEFAULT_HTTP_PORT = 60610
HTTP_START_TIMEOUT = 60.0
REDIS_VARIABLE = "TCSTATION_REDIS_ADDR"
DEFAULT_REDIS = "127.0.0.1:6379"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
REDIS_START_TIMEOUT = 10.0


class ServiceError(RuntimeError):
    """A service the queueserver needs is missing and could not be started."""


def split_address(address: str, default_port: int = 6379) -> tuple[str, int]:
    """``host[:port][/db]`` as (host, port)."""
    host_port = address.split("/", 1)[0]
    host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, "", "")
    if not port:
        return host_port or "127.0.0.1", default_port
    try:
        return host, int(port)
    except ValueError:
        raise ServiceError(f"Redis address {address!r}: port {port!r} is not a number") from None


def redis_answers(address: str, timeout: float = 1.0) -> bool:
    """Whether a Redis server at ``address`` (``host:port``) answers PING."""
    import redis

    host, port = split_address(address)
    client = redis.Redis(host=host, port=port, socket_connect_timeout=timeout,
                         socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


class LocalRedis:
    """A private ``redis-server`` on a loopback port that keeps nothing on disk."""

    def __init__(self, port: int, log_path: Path | None = None):
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = REDIS_START_TIMEOUT) -> LocalRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError(
                f"no Redis answers at {self.address} and there is no redis-server to start: "
                "install it (Debian/Ubuntu: apt install redis-server; conda: conda install "
                "redis) or point --redis-addr (or TCSTATION_REDIS_ADDR) at a running one")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        try:
            while not redis_answers(self.address, timeout=0.5):
                if self.process.poll() is not None:
                    raise ServiceError(f"redis-server exited with code "
                                       f"{self.process.returncode} on port {self.port}" +
                                       (f"; see {self.log_path}" if self.log_path else ""))
                if time.monotonic() > deadline:
                    raise ServiceError(f"redis-server did not answer on {self.address} within "
                                       f"{timeout:g} s")
                time.sleep(0.1)
        except BaseException:  # a failed start, Ctrl-C or SIGTERM: leave no server behind
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        stop_process(self.process, timeout)

    def __enter__(self) -> LocalRedis:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def ensure_redis(address: str, log_path: Path | None = None) -> LocalRedis | None:
    """Use the Redis at ``address`` if it answers; else start a private one there.

    Returns the started server (stop it when done), or None if one was running.

    Raises
    ------
    ServiceError
        Nothing answers at a remote address, or no ``redis-server`` can be started.
    """
    if redis_answers(address):
        return None
    host, port = split_address(address)
    if host not in LOCAL_HOSTS:
        raise ServiceError(f"no Redis answers at {address}; start it there, or give a local "
                           "address (127.0.0.1:PORT) and one is started for you")
    print(f"no Redis at {address}: starting a private redis-server there (keeps nothing on "
          "disk, stops with the manager)", flush=True)
    return LocalRedis(port, log_path).start()


def loopback_address(port: int) -> str:
    """A 0MQ address on 127.0.0.1 (the manager binds it; clients on this machine connect to it)."""
    return f"tcp://{LOOPBACK}:{port}"


def is_loopback_address(address: str) -> bool:
    """Whether a 0MQ ``tcp://host:port`` address is bound to loopback only."""
    host = address.removeprefix("tcp://").rpartition(":")[0].strip("[]")
    return host in LOCAL_HOSTS


def re_manager_command(redis_address: str, *, startup_dir: Path = STARTUP_DIR,
                       zmq_control_addr: str | None = None, zmq_info_addr: str | None = None,
                       redis_name_prefix: str | None = None,
                       extra: list[str] | None = None) -> list[str]:
    """The ``start-re-manager`` command line for the station's profile.

    The 0MQ sockets default to 127.0.0.1 (ports 60615 and 60625), not
    start-re-manager's ``tcp://*``: whoever reaches the control socket may
    claim any permission group.
    """
    command = [str(Path(sys.executable).with_name("start-re-manager")),
               "--startup-dir", str(startup_dir),
               "--existing-plans-devices", str(startup_dir / EXISTING_PLANS_FILE.name),
               "--user-group-permissions", str(startup_dir / PERMISSIONS_FILE.name),
               # The committed plan list is the reference (a test checks it is current);
               # the manager must not rewrite it.
               "--update-existing-plans-devices", "NEVER",
               "--redis-addr", redis_address,
               "--zmq-control-addr", zmq_control_addr or loopback_address(DEFAULT_ZMQ_CONTROL_PORT),
               "--zmq-info-addr", zmq_info_addr or loopback_address(DEFAULT_ZMQ_INFO_PORT),
               "--zmq-publish-console", "ON"]
    if redis_name_prefix:
        command += ["--redis-name-prefix", redis_name_prefix]
    return command + list(extra or [])


def http_server_command(config_path: Path, host: str, port: int) -> list[str]:
    """The ``start-bluesky-httpserver`` command line."""
    return [str(Path(sys.executable).with_name("start-bluesky-httpserver")),
            "--config_path", str(config_path), "--host", host, "--port", str(port)]


def http_server_environment(environment: dict[str, str], data_dir: Path, control_addr: str,
                            info_addr: str, public_key: str) -> dict[str, str]:
    """The HTTP server's environment: where the manager is, its key, the key database, a secret."""
    return {**environment,
            "QSERVER_ZMQ_CONTROL_ADDRESS": control_addr,
            "QSERVER_ZMQ_INFO_ADDRESS": info_addr,
            "QSERVER_ZMQ_PUBLIC_KEY": public_key,
            "QSERVER_HTTP_SERVER_DATABASE_URI": f"sqlite:///{data_dir / 'httpserver.sqlite'}",
            "QSERVER_HTTP_SERVER_SERVER_SECRET_KEYS": load_or_create_secret(data_dir)}


def http_answers(uri: str, timeout: float = 1.0) -> bool:
    """Whether the HTTP server at ``uri`` answers (any HTTP status counts)."""
    import httpx

    try:
        httpx.get(f"{uri}/api", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return True


class Terminated(Exception):  # noqa: N818 (a signal, like KeyboardInterrupt)
    """SIGTERM arrived: stop everything started, as on Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def qserver_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcstation qserver",
        description="Run the bluesky-queueserver RE manager on the station's profile, starting "
                    "Redis (and, with --simulate, the simulated station) if needed. Its 0MQ "
                    "sockets listen on 127.0.0.1; --http adds the authenticated front "
                    "(bluesky-httpserver) for every other client.",
        epilog="Arguments after -- go to start-re-manager unchanged. Then: "
               "`qserver environment open`, `qserver queue add plan "
               "'{\"name\": \"transport_ramp\", \"kwargs\": {\"start\": 45, \"stop\": 60}}'`, "
               "`qserver queue start` (or bluesky-queueserver-api). With --http, clients use "
               "REManagerAPI(http_server_uri=...) with a login or an API key.")
    parser.add_argument("--redis-addr", default=os.environ.get(REDIS_VARIABLE, DEFAULT_REDIS),
                        help=f"Redis host:port (default {REDIS_VARIABLE} or {DEFAULT_REDIS})")
    parser.add_argument("--simulate", action="store_true",
                        help="also start the simulated station IOC and point the worker at it")
    parser.add_argument("--speedup", type=float, default=60.0,
                        help="speed-up of the simulated station (default 60)")
    parser.add_argument("--zmq-control-port", type=int, default=DEFAULT_ZMQ_CONTROL_PORT,
                        help="manager's control port on 127.0.0.1 (default %(default)s)")
    parser.add_argument("--zmq-info-port", type=int, default=DEFAULT_ZMQ_INFO_PORT,
                        help="manager's console output port on 127.0.0.1 (default %(default)s)")
    parser.add_argument("--zmq-control-addr", default=None,
                        help="manager's full control address instead of the port, e.g. "
                             "tcp://127.0.0.1:60615; a non-loopback address lets any client "
                             "that reaches it claim any group")
    parser.add_argument("--zmq-info-addr", default=None,
                        help="manager's full console output address instead of the port")
    parser.add_argument("--http", action="store_true",
                        help="also start bluesky-httpserver, the authenticated front, and "
                             "encrypt the 0MQ socket for it")
    parser.add_argument("--http-config", type=Path, default=HTTP_CONFIG_FILE,
                        help="bluesky-httpserver configuration (accounts, roles, groups; "
                             "default %(default)s)")
    parser.add_argument("--http-host", default=LOOPBACK,
                        help="address the HTTP server listens on (default %(default)s; "
                             "0.0.0.0 for remote clients, ideally behind TLS)")
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT,
                        help="HTTP server port (default %(default)s)")
    return parser


def _wait_for_http(process: subprocess.Popen, uri: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not http_answers(uri):
        if process.poll() is not None:
            raise ServiceError(f"bluesky-httpserver exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise ServiceError(f"bluesky-httpserver did not answer at {uri} within {timeout:g} s")
        time.sleep(0.2)


def qserver_main(argv: list[str]) -> int:
    own, extra = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else \
        (argv, [])
    args = qserver_parser().parse_args(own)
    control_addr = args.zmq_control_addr or loopback_address(args.zmq_control_port)
    info_addr = args.zmq_info_addr or loopback_address(args.zmq_info_port)
    for address in (control_addr, info_addr):
        if not is_loopback_address(address):
            print(f"tcstation qserver: WARNING: {address} is reachable from other machines, and "
                  "a 0MQ client names its own permission group; use the default loopback "
                  "address and --http for remote clients", file=sys.stderr, flush=True)
    if args.http and not args.http_config.is_file():
        print(f"tcstation qserver: --http-config {args.http_config} is not a file",
              file=sys.stderr)
        return 2
    # SIGTERM (a service manager, `kill`) stops everything as Ctrl-C does.
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    environment = dict(os.environ)
    started: list = []
    try:
        try:
            started.append(ensure_redis(args.redis_addr))
        except ServiceError as error:
            print(f"tcstation qserver: {error}", file=sys.stderr)
            return 2
        if args.simulate:
            port = free_port()
            prefix = f"QS{uuid.uuid4().hex[:4]}:"
            environment.update(loopback_client_environment(port))
            environment["TCSTATION_PREFIX"] = prefix
            ioc = SimulatedStationProcess(prefix, port, speedup=args.speedup)
            started.append(ioc)  # before start(): a SIGTERM while it starts stops it too
            ioc.start()
            print(f"simulated station {prefix} at {args.speedup:g}x on 127.0.0.1:{port}",
                  flush=True)
        if environment.get("TCSTATION_WATCHDOG", "on").strip().lower() != "off":
            from tcstation.watchdog import start_watchdog

            started.append(start_watchdog(environment.get("TCSTATION_PREFIX"),
                                          config_path=environment.get("TCSTATION_STATION_CONFIG"),
                                          environment=environment))
        manager_environment = dict(environment)
        public_key = None
        if args.http:
            import zmq

            public_key, private_key = (key.decode() for key in zmq.curve_keypair())
            manager_environment["QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER"] = private_key
        command = re_manager_command(args.redis_addr, zmq_control_addr=control_addr,
                                     zmq_info_addr=info_addr, extra=extra)
        print("starting: " + " ".join(command), flush=True)
        manager = subprocess.Popen(command, env=manager_environment)
        started.append(manager)
        if args.http:
            try:
                data_dir = prepare_data_dir(StorageConfig.from_environment(environment))
            except StorageConfigError as error:
                print(f"tcstation qserver: {error}", file=sys.stderr)
                return 2
            uri = f"http://{args.http_host}:{args.http_port}"
            http_server = subprocess.Popen(
                http_server_command(args.http_config, args.http_host, args.http_port),
                env=http_server_environment(environment, data_dir, control_addr, info_addr,
                                            public_key))
            started.append(http_server)
            _wait_for_http(http_server, uri, HTTP_START_TIMEOUT)
            print(f"bluesky-httpserver on {uri} ({args.http_config}); the 0MQ socket "
                  f"{control_addr} is encrypted for it", flush=True)
        return manager.wait()
    except (KeyboardInterrupt, Terminated) as stop:
        print("stopping the RE manager and what was started for it...", flush=True)
        return 143 if isinstance(stop, Terminated) else 130
    except ServiceError as error:
        print(f"tcstation qserver: {error}", file=sys.stderr)
        return 2
    finally:
        # A second SIGTERM must not cut the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for service in reversed(started):
            if isinstance(service, subprocess.Popen):
                stop_process(service, 30.0)
            elif service is not None:
                service.stop()
        signal.signal(signal.SIGTERM, previous_handler)


def generate_plan_list(output: Path, startup_dir: Path = STARTUP_DIR,
                       timeout: float = 180.0) -> None:
    """Write the profile's plans and devices to ``output``, as the queueserver lists them.

    The startup is loaded in a subprocess, against a temporary simulated station
    on a free loopback port, with storage and the document stream off.
    """
    port = free_port()
    prefix = f"QL{uuid.uuid4().hex[:4]}:"
    environment = {**os.environ, **loopback_client_environment(port),
                   "TCSTATION_PREFIX": prefix, "TCSTATION_STORAGE": "off",
                   # Listing plans publishes nothing, and must leave no stream proxy behind.
                   "TCSTATION_STREAM": "off"}
    environment.pop("TCSTATION_STATION_CONFIG", None)
    with SimulatedStationProcess(prefix, port, speedup=1.0):
        result = subprocess.run(
            [str(Path(sys.executable).with_name("qserver-list-plans-devices")),
             "--startup-dir", str(startup_dir), "--file-dir", str(output.parent),
             "--file-name", output.name],
            env=environment, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or not output.exists():
        raise RuntimeError("qserver-list-plans-devices failed:\n" + result.stdout[-3000:] +
                           result.stderr[-3000:])


def stale_difference(generated: Path, committed: Path) -> str:
    """A unified diff of the committed plan list against the generated one ('' if equal)."""
    old = committed.read_text().splitlines(keepends=True) if committed.exists() else []
    new = generated.read_text().splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, str(committed), "generated from the code"))


def yaml_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tcstation qserver-yaml",
        description=f"Regenerate {EXISTING_PLANS_FILE.name} from the code (or check it).")
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 with the difference if the file is stale")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        generated = Path(scratch) / EXISTING_PLANS_FILE.name
        generate_plan_list(generated)
        difference = stale_difference(generated, EXISTING_PLANS_FILE)
        if args.check:
            if difference:
                print(f"{EXISTING_PLANS_FILE} is stale against the code; regenerate it with "
                      f"`tcstation qserver-yaml`:\n{difference}")
                return 1
            print(f"{EXISTING_PLANS_FILE} is current")
            return 0
        shutil.copyfile(generated, EXISTING_PLANS_FILE)
        print(f"wrote {EXISTING_PLANS_FILE}" + ("" if difference else " (unchanged)"))
        return 0
