"""The station's watchdog: keeps the sample below its limit with no plan running.

A small process of its own (``tcstation watchdog --prefix P``, or
:func:`start_watchdog` from Python), independent of any RunEngine: it watches,
over Channel Access, the sample sensor in kelvin (``TC:IN2:Kelvin``; the stage,
``TC:IN1:Kelvin``, when the sample sensor does not answer), the stage, which
leads the sample when heating, and the mounted sample's limit
(``ENV:MaxSafeTemp_RBV``). It predicts each reading one reaction time ahead from
its rate of rise (the same rule as the RunEngine's guard, :mod:`tcstation.plans.policy`),
capped where the controller as set stops the rise (a closed loop short of its
setpoint), and when a prediction passes ``limit - WATCHDOG_MARGIN`` it puts the
heater range Off at once, then the setpoint to a safe hold
(``min(stage, limit - HOLD_MARGIN)``), ramping off and closed loop, and logs
what it did. So it protects the sample while the RunEngine is idle, paused,
busy or dead. During a room-temperature exposure (``ENV:Exposing_RBV``) the
sample is warm on purpose and only the stage counts; a sample cooling back
(falling) never trips it.

It also arms the controller's input limits (``TC:IN2:TLimit`` and ``TC:IN1:TLimit``,
LakeShore ``TLIMIT``) with the sample's limit when it finds them off.

One watchdog per station prefix: a second one finds the lock taken and exits,
reporting the one already running. A watchdog whose parent process has gone
keeps watching, and exits only once the station has not answered for
:data:`ORPHAN_EXIT_AFTER` seconds (the IOCs were shut down).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tcstation.instruments import environment, lakeshore336
from tcstation.plans.policy import (
    HOLD_MARGIN,
    RESUME_MARGIN,
    WATCHDOG_MARGIN,
    WATCHDOG_REACTION_TIME,
    RisePredictor,
    heating_bound,
)
from tcstation.processes import process_exists, stop_process

logger = logging.getLogger("tcstation.watchdog")

ORPHAN_EXIT_AFTER = 30.0
"""Wall seconds without the station answering after which an orphaned watchdog exits."""
REPEAT_ACTION_AFTER = 0.5
"""Wall seconds after an action before the watchdog acts again if the heater came back on."""
DEFAULT_ENUMS = {"heater_range": lakeshore336.HEATER_RANGES,
                 "mode": lakeshore336.CONTROL_MODES,
                 "exposing": environment.NO_YES}
"""Enum strings until the IOC's own are read (those of the LakeShore 336 and the simulator)."""
READY_TIMEOUT = 30.0
"""Wall seconds :func:`start_watchdog` waits for the watchdog to connect."""


@dataclass(frozen=True)
class WatchdogPVs:
    """The PV names the watchdog reads and writes."""

    sample: str
    stage: str
    limit: str
    exposing: str
    heater_range: str
    heater_range_rbv: str
    mode: str
    mode_rbv: str
    setpoint: str
    setpoint_rbv: str
    ramp_enabled: str
    sample_input_limit: str
    stage_input_limit: str

    @classmethod
    def from_prefixes(cls, cryostat: str, environment: str) -> WatchdogPVs:
        return cls(sample=cryostat + "IN2:Kelvin", stage=cryostat + "IN1:Kelvin",
                   limit=environment + "MaxSafeTemp_RBV", exposing=environment + "Exposing_RBV",
                   heater_range=cryostat + "HTR1:Range",
                   heater_range_rbv=cryostat + "HTR1:Range_RBV",
                   mode=cryostat + "OUT1:Mode", mode_rbv=cryostat + "OUT1:Mode_RBV",
                   setpoint=cryostat + "OUT1:SP", setpoint_rbv=cryostat + "OUT1:SP_RBV",
                   ramp_enabled=cryostat + "OnRamp1",
                   sample_input_limit=cryostat + "IN2:TLimit",
                   stage_input_limit=cryostat + "IN1:TLimit")

    @classmethod
    def for_station(cls, prefix: str = "TCS:", config_path: str | Path | None = None
                    ) -> WatchdogPVs:
        if config_path is not None:
            from tcstation.devices.station import load_prefixes

            prefixes = load_prefixes(config_path)
            return cls.from_prefixes(prefixes["cryostat"], prefixes["environment"])
        return cls.from_prefixes(prefix + "TC:", prefix + "ENV:")


class Watchdog:
    """Watch the sample's temperature and stop the heating before it reaches its limit.

    Parameters
    ----------
    pvs : WatchdogPVs
        What to watch and where to act.
    reaction_time : float
        Wall seconds from a reading to the heater being off (the prediction horizon).
    """

    def __init__(self, pvs: WatchdogPVs, reaction_time: float = WATCHDOG_REACTION_TIME):
        import epics

        self.pvs = pvs
        self.reaction_time = reaction_time
        self.predictors = {"stage": RisePredictor(), "sample": RisePredictor()}
        self.latest: dict[str, float] = {}
        self.values: dict[str, object] = {}
        self.enums: dict[str, tuple[str, ...]] = dict(DEFAULT_ENUMS)
        self.actions: list[dict] = []
        self.armed = True
        self.last_action = -math.inf
        self._lock = threading.Lock()
        self._act = threading.Event()
        self._stop = threading.Event()
        self._pending_reason = ""
        pv = epics.get_pv
        # Monitor callbacks only store values: a get inside a callback would wait for
        # the very thread that runs the callback.
        self.monitored = {role: pv(name, auto_monitor=True)
                          for role, name in (("limit", pvs.limit), ("exposing", pvs.exposing),
                                             ("heater_range", pvs.heater_range_rbv),
                                             ("mode", pvs.mode_rbv),
                                             ("setpoint", pvs.setpoint_rbv))}
        for role, monitored in self.monitored.items():
            monitored.add_callback(self._store, role=role)
        self.heater_range_pv = pv(pvs.heater_range)
        self.mode_pv = pv(pvs.mode)
        self.setpoint_pv = pv(pvs.setpoint)
        self.ramp_pv = pv(pvs.ramp_enabled)
        self.input_limit_pvs = (pv(pvs.sample_input_limit), pv(pvs.stage_input_limit))
        self.sensor_pvs = {"stage": pv(pvs.stage, auto_monitor=True),
                           "sample": pv(pvs.sample, auto_monitor=True)}
        for role, sensor in self.sensor_pvs.items():
            sensor.add_callback(self._reading, role=role)
        self.monitored["limit"].add_callback(self._limit_changed)

    # -- state -----------------------------------------------------------------------
    def _store(self, value=None, role="", **kwargs) -> None:
        self.values[role] = value

    def _choice(self, role: str) -> str | None:
        value = self.values.get(role)
        if isinstance(value, str) or value is None:
            return value
        choices = self.enums.get(role, ())
        index = int(value)
        return choices[index] if 0 <= index < len(choices) else None

    def learn_enums(self) -> None:
        """The IOC's enum strings of the heater range, the mode and the exposure flag."""
        for role in ("heater_range", "mode", "exposing"):
            monitored = self.monitored[role]
            if monitored.wait_for_connection(timeout=2.0):
                controls = monitored.get_ctrlvars(timeout=2.0) or {}
                strings = controls.get("enum_strs")
                if strings:
                    self.enums[role] = tuple(strings)

    @property
    def limit(self) -> float | None:
        try:
            value = float(self.values.get("limit"))
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) and value > 0 else None

    @property
    def exposing(self) -> bool:
        return self._choice("exposing") == "Yes"

    def connected(self) -> bool:
        """The limit, the heater and at least one kelvin sensor answer."""
        return (self.monitored["limit"].connected and self.heater_range_pv.connected
                and any(sensor.connected for sensor in self.sensor_pvs.values()))

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected():
                return True
            time.sleep(0.05)
        return self.connected()

    # -- the trip rule ---------------------------------------------------------------
    def _bound(self) -> float:
        return heating_bound(self._choice("mode"), self._choice("heater_range"),
                             self.values.get("setpoint"))

    def assess(self) -> str:
        """Why the heating must stop now ('' when it need not)."""
        limit = self.limit
        if limit is None:
            return ""
        trip_point = limit - WATCHDOG_MARGIN
        bound = self._bound()
        stage = self.predictors["stage"]
        sample = self.predictors["sample"]
        reasons = []
        if stage.history:
            predicted = stage.predicted(self.reaction_time, bound)
            if predicted > trip_point:
                reasons.append(f"stage {stage.history[-1][1]:.2f} K rising "
                               f"{stage.rate:.3g} K/s (wall), predicted {predicted:.2f} K")
        sample_counts = sample.history and not self.exposing and sample.rate > 0
        if sample_counts:
            stage_now = stage.history[-1][1] if stage.history else math.inf
            predicted = sample.predicted(self.reaction_time, max(stage_now, bound))
            if predicted > trip_point:
                reasons.append(f"sample {sample.history[-1][1]:.2f} K rising "
                               f"{sample.rate:.3g} K/s (wall), predicted {predicted:.2f} K")
        if not reasons:
            return ""
        return (f"{'; '.join(reasons)}, past the trip point {trip_point:g} K "
                f"({WATCHDOG_MARGIN:g} K below the sample's {limit:g} K limit)")

    def _cool_enough(self) -> bool:
        limit = self.limit
        if limit is None:
            return False
        roles = ("stage",) if self.exposing else ("stage", "sample")
        predicted = [self.predictors[role].predicted(self.reaction_time) for role in roles
                     if self.predictors[role].history]
        return all(value < limit - RESUME_MARGIN for value in predicted)

    def _reading(self, pvname=None, value=None, timestamp=None, role="stage", **kwargs) -> None:
        try:
            kelvin = float(value)
        except (TypeError, ValueError):
            return
        stamp = float(timestamp) if timestamp else time.time()
        with self._lock:
            self.predictors[role].update(stamp, kelvin)
            self.latest[role] = kelvin
            reason = self.assess()
            if not reason:
                if not self.armed and self._cool_enough():
                    self.armed = True
                    logger.warning("watchdog: the sample is %g K or more below its limit "
                                   "again; re-armed", RESUME_MARGIN)
                return
            heater_on = self._choice("heater_range") != "Off"
            now = time.monotonic()
            if not (self.armed or (heater_on and now - self.last_action > REPEAT_ACTION_AFTER)):
                return
            self.armed = False
            self.last_action = now
            self._pending_reason = reason
        # Straight from the monitor callback, by index: a put without waiting is safe here.
        self.heater_range_pv.put(self.enums["heater_range"].index("Off"), wait=False)
        logger.error("watchdog: %s: heater range Off", reason)
        self._act.set()

    def _limit_changed(self, value=None, **kwargs) -> None:
        threading.Thread(target=self.arm_controller_limit, daemon=True,
                         name="watchdog-tlimit").start()

    # -- actions ---------------------------------------------------------------------
    def arm_controller_limit(self) -> None:
        """Put the sample's limit into the controller's input TLIMITs (B, then A) where off."""
        limit = self.limit
        if limit is None:
            return
        for pv in self.input_limit_pvs:
            if not pv.wait_for_connection(timeout=2.0):
                continue
            present = pv.get(timeout=2.0)
            if present is None or float(present) == 0.0:
                pv.put(limit, wait=True, timeout=5.0)
                logger.warning("watchdog: the controller's limit %s was off; armed it at the "
                               "sample's %g K", pv.pvname, limit)

    def make_safe(self, reason: str) -> dict:
        """Heater Off, setpoint to the safe hold, ramping off, closed loop; log it."""
        limit = self.limit or math.inf
        stage = self.latest.get("stage", self.latest.get("sample", math.inf))
        hold = min(stage, limit - HOLD_MARGIN)
        record = {"time": time.time(), "reason": reason, "hold": hold,
                  "stage": self.latest.get("stage"), "sample": self.latest.get("sample")}
        failures = []
        puts = [(self.heater_range_pv, "Off"), (self.setpoint_pv, hold),
                (self.ramp_pv, "Off"), (self.mode_pv, "Closed Loop")]
        if not math.isfinite(hold):
            puts = [puts[0]]  # no reading to hold at: the heater off is what is left
        for pv, value in puts:
            try:
                if pv.put(value, wait=True, timeout=5.0) is None:
                    failures.append(pv.pvname)
            except Exception as err:
                failures.append(f"{pv.pvname} ({err})")
        record["failed"] = failures
        self.actions.append(record)
        logger.error("watchdog: made safe: heater range Off, setpoint %.2f K, ramping off, "
                     "closed loop%s", hold,
                     f"; these puts failed: {', '.join(failures)}" if failures else "")
        return record

    def run(self, parent_pid: int | None = None) -> int:
        """Serve until stopped (SIGTERM / :meth:`stop`), or orphaned with the station gone."""
        self.learn_enums()
        self.arm_controller_limit()
        unreachable_since: float | None = None
        while not self._stop.is_set():
            if self._act.wait(0.5):
                self._act.clear()
                if self._stop.is_set():
                    break
                with self._lock:
                    reason = self._pending_reason
                self.make_safe(reason)
                continue
            if parent_pid is not None and not process_exists(parent_pid):
                if self.connected():
                    unreachable_since = None
                elif unreachable_since is None:
                    unreachable_since = time.monotonic()
                elif time.monotonic() - unreachable_since > ORPHAN_EXIT_AFTER:
                    logger.warning("watchdog: parent %d gone and the station silent for %g s; "
                                   "exiting", parent_pid, ORPHAN_EXIT_AFTER)
                    return 0
        return 0

    def stop(self) -> None:
        self._stop.set()
        self._act.set()


def lock_path(pvs: WatchdogPVs) -> Path:
    """The lock file that keeps one watchdog per station (per sensor PV and CA addresses)."""
    key = f"{pvs.stage}|{os.environ.get('EPICS_CA_ADDR_LIST', '')}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"tcstation-watchdog-{os.getuid()}-{digest}.lock"


def take_lock(pvs: WatchdogPVs):
    """The open, locked lock file, or None if another watchdog holds it."""
    path = lock_path(pvs)
    handle = open(path, "a+")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcstation watchdog",
        description="Watch the sample's temperature in kelvin and stop the heating before it "
                    "reaches the sample's limit, with or without a plan running.")
    parser.add_argument("--prefix", default=os.environ.get("TCSTATION_PREFIX", "TCS:"),
                        help="station prefix of the simulated layout (default TCSTATION_PREFIX "
                        "or TCS:)")
    parser.add_argument("--config", default=os.environ.get("TCSTATION_STATION_CONFIG"),
                        help="TOML file of the real IOCs' prefixes (see devices.station)")
    parser.add_argument("--reaction-time", type=float, default=WATCHDOG_REACTION_TIME,
                        help="wall seconds from a reading to the heater off (default "
                        f"{WATCHDOG_REACTION_TIME:g})")
    parser.add_argument("--ready-file", type=Path, default=None,
                        help="write this file once connected ('watching' or 'already')")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit once this process is gone and the station silent for "
                        f"{ORPHAN_EXIT_AFTER:g} s")
    parser.add_argument("--connect-timeout", type=float, default=20.0,
                        help="seconds to wait for the PVs before reporting them missing")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def watchdog_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    pvs = WatchdogPVs.for_station(args.prefix, args.config)
    lock = take_lock(pvs)
    if lock is None:
        print(f"tcstation watchdog: another watchdog already watches {pvs.stage}", flush=True)
        if args.ready_file is not None:
            args.ready_file.write_text("already")
        return 0
    from tcstation.ca_renewal import start_channel_renewal

    renewal = start_channel_renewal()  # sees a restarted IOC within a second, not ten
    watchdog = Watchdog(pvs, reaction_time=args.reaction_time)
    signal.signal(signal.SIGTERM, lambda *_: watchdog.stop())
    signal.signal(signal.SIGINT, lambda *_: watchdog.stop())
    if not watchdog.wait_connected(args.connect_timeout):
        missing = [pv.pvname for pv in (watchdog.monitored["limit"], watchdog.heater_range_pv,
                                        *watchdog.sensor_pvs.values()) if not pv.connected]
        logger.error("watchdog: not connected within %g s: %s; it keeps trying",
                     args.connect_timeout, ", ".join(missing))
    print(f"tcstation watchdog: watching {pvs.sample} / {pvs.stage} against {pvs.limit}, "
          f"margin {WATCHDOG_MARGIN:g} K, reaction {args.reaction_time:g} s", flush=True)
    if args.ready_file is not None:
        args.ready_file.write_text("watching")
    try:
        return watchdog.run(args.parent_pid)
    finally:
        renewal.stop()
        lock.close()


class WatchdogHandle:
    """A started watchdog process: ``stop()`` ends it if this handle started it."""

    def __init__(self, process: subprocess.Popen | None, owned: bool, log_path: Path | None):
        self.process = process
        self.owned = owned
        self.log_path = log_path

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.owned:
            stop_process(self.process, timeout)

    def __enter__(self) -> WatchdogHandle:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_watchdog(prefix: str | None = None, *, config_path: str | Path | None = None,
                   log_path: str | Path | None = None, timeout: float = READY_TIMEOUT,
                   reaction_time: float | None = None,
                   environment: dict[str, str] | None = None) -> WatchdogHandle:
    """Start ``tcstation watchdog`` as a subprocess and wait until it watches.

    Parameters
    ----------
    prefix : str, optional
        Station prefix (default ``TCSTATION_PREFIX`` or ``TCS:``).
    config_path : str or Path, optional
        TOML file of the real IOCs' prefixes.
    log_path : str or Path, optional
        Where its log goes (default: discarded; it never shares our stdout).
    timeout : float
        Wall seconds to wait for it to connect.
    reaction_time : float, optional
        Its prediction horizon (wall seconds).
    environment : dict, optional
        Its environment (default ours: the Channel Access settings carry over).

    Returns
    -------
    WatchdogHandle
        ``owned`` is False when a watchdog already watched the station (then
        ``stop()`` leaves that one running).
    """
    with tempfile.TemporaryDirectory(prefix="tcstation-watchdog-") as scratch:
        ready = Path(scratch) / "ready"
        command = [sys.executable, "-m", "tcstation.watchdog", "--ready-file", str(ready),
                   "--parent-pid", str(os.getpid())]
        if prefix is not None:
            command += ["--prefix", prefix]
        if config_path is not None:
            command += ["--config", str(config_path)]
        if reaction_time is not None:
            command += ["--reaction-time", str(reaction_time)]
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env=environment if environment is not None else None)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the watchdog exited with code {process.returncode} before "
                                   f"watching (command: {' '.join(command)})")
            if time.monotonic() > deadline:
                stop_process(process, 5.0)
                raise TimeoutError(f"the watchdog did not start watching within {timeout:g} s")
            time.sleep(0.05)
        state = ready.read_text()
    if state == "already":
        process.wait(5.0)
        logger.info("a watchdog already watches this station; using it")
        return WatchdogHandle(None, owned=False, log_path=None)
    logger.info("watchdog started (pid %d)", process.pid)
    return WatchdogHandle(process, owned=True, log_path=Path(log_path) if log_path else None)


if __name__ == "__main__":
    sys.exit(watchdog_main(sys.argv[1:]))
