"""What the operator's page shows, each read from the service that owns it.

Every source keeps its latest state in memory, updated by its own thread (Channel
Access monitors, the document stream's dispatcher, a queue poller), so that the page's
broadcaster only copies small dictionaries: the cost of a page client does not touch the
station, the RunEngine or the RE manager.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from tcstation.analysis.live import LiveTransitions

logger = logging.getLogger(__name__)

SEVERITIES = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")
"""EPICS alarm severities, by their number."""

STATION_READINGS: tuple[tuple[str, str, str, str], ...] = (
    # key, instrument, PV suffix, label
    ("stage_temperature", "cryostat", "IN1:Kelvin", "Stage temperature"),
    ("sample_temperature", "cryostat", "IN2:Kelvin", "Sample temperature"),
    ("setpoint", "cryostat", "OUT1:SP_RBV", "Setpoint"),
    ("ramp_rate", "cryostat", "RampR1_RBV", "Ramp rate"),
    ("ramp_state", "cryostat", "OnRamp1_RBV", "Ramping"),
    ("control_mode", "cryostat", "OUT1:Mode_RBV", "Control mode"),
    ("heater_output", "cryostat", "HTR1", "Heater output"),
    ("heater_range", "cryostat", "HTR1:Range_RBV", "Heater range"),
    ("bias_setpoint", "bias_source", "Curr_RBV", "Bias setpoint"),
    ("bias_current", "bias_source", "CurrMeas", "Bias measured"),
    ("bias_voltage", "bias_source", "VoltMeas", "Source voltage"),
    ("bias_output", "bias_source", "Output_RBV", "Source output"),
    ("compliance", "bias_source", "VoltLimit_RBV", "Voltage compliance"),
    ("compliance_tripped", "bias_source", "Tripped", "In compliance"),
    ("susceptometer_x", "susceptometer", "X", "Susceptometer X"),
    ("susceptometer_y", "susceptometer", "Y", "Susceptometer Y"),
    ("susceptometer_overload", "susceptometer", "OVLD", "Susceptometer overload"),
    ("transport_x", "transport", "X", "Transport X"),
    ("transport_y", "transport", "Y", "Transport Y"),
    ("transport_overload", "transport", "OVLD", "Transport overload"),
    ("sample", "environment", "Sample_RBV", "Mounted sample"),
    ("insert", "environment", "Insert_RBV", "Insert"),
    ("contacts", "environment", "Contacts_RBV", "Contacts"),
    ("warm_time", "environment", "WarmTime_RBV", "Warm time"),
    ("max_safe_temperature", "environment", "MaxSafeTemp_RBV", "Sample's limit"),
    ("exposing", "environment", "Exposing_RBV", "Exposing"),
)
"""The readings of "the station now"."""

LIMIT_APPROACH = 2.0
"""K: the sample within this of its limit raises a MAJOR alarm on the page."""
WARM_WARNING_FRACTION = 0.8
"""A warm time past this fraction of the limit is a MINOR alarm, past the limit MAJOR."""


def station_pv_names(prefixes: Mapping[str, str]) -> dict[str, str]:
    """PV name of every reading of :data:`STATION_READINGS` under the instruments' prefixes."""
    return {key: prefixes[instrument] + suffix
            for key, instrument, suffix, _ in STATION_READINGS}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def warm_severity(warm_seconds: float | None, limit_seconds: float | None) -> str:
    """``NO_ALARM``, ``MINOR`` (past :data:`WARM_WARNING_FRACTION` of the limit) or ``MAJOR``
    (past the limit) for a warm time; ``NO_ALARM`` when either is unknown."""
    warm, limit = _number(warm_seconds), _number(limit_seconds)
    if warm is None or not limit:
        return "NO_ALARM"
    if warm > limit:
        return "MAJOR"
    return "MINOR" if warm > WARM_WARNING_FRACTION * limit else "NO_ALARM"


def station_alarms(readings: Mapping[str, dict], warm_limit: float | None) -> list[dict]:
    """The alarms of a station snapshot, worst first.

    Parameters
    ----------
    readings : mapping
        ``{key: {"value", "severity", "connected", "label", ...}}`` (see
        :meth:`StationMonitor.snapshot`).
    warm_limit : float or None
        Seconds the mounted sample may spend warm (None: not checked).

    Returns
    -------
    list of dict
        ``{"severity": "MINOR"|"MAJOR"|"INVALID", "source": key, "message": text}``.
    """
    alarms = []
    for key, reading in readings.items():
        if not reading.get("connected", False):
            alarms.append({"severity": "INVALID", "source": key,
                           "message": f"{reading.get('label', key)}: {reading.get('pv', key)} "
                                      "does not answer"})
        elif reading.get("severity", "NO_ALARM") != "NO_ALARM":
            alarms.append({"severity": reading["severity"], "source": key,
                           "message": f"{reading.get('label', key)}: "
                                      f"{reading.get('status') or reading['severity']} alarm"})
    for key in ("susceptometer_overload", "transport_overload", "compliance_tripped"):
        if readings.get(key, {}).get("value") == "Yes":
            alarms.append({"severity": "MAJOR", "source": key,
                           "message": readings[key].get("label", key)})
    sample = _number(readings.get("sample_temperature", {}).get("value"))
    limit = _number(readings.get("max_safe_temperature", {}).get("value"))
    if sample is not None and limit and sample > limit - LIMIT_APPROACH:
        alarms.append({"severity": "MAJOR", "source": "sample_temperature",
                       "message": f"sample at {sample:.2f} K, within {LIMIT_APPROACH:g} K of "
                                  f"its limit {limit:.1f} K"})
    warm = _number(readings.get("warm_time", {}).get("value"))
    severity = warm_severity(warm, warm_limit)
    if severity == "MAJOR":
        alarms.append({"severity": "MAJOR", "source": "warm_time",
                       "message": f"warm for {warm / 60:.1f} min, longer than its "
                                  f"{warm_limit / 60:.0f} min"})
    elif severity == "MINOR":
        alarms.append({"severity": "MINOR", "source": "warm_time",
                       "message": f"warm for {warm / 60:.1f} min of its "
                                  f"{warm_limit / 60:.0f} min"})
    order = {"INVALID": 0, "MAJOR": 1, "MINOR": 2}
    return sorted(alarms, key=lambda alarm: order.get(alarm["severity"], 3))


class StationMonitor:
    """The station's readings through Channel Access monitors (pyepics), no plan needed.

    Parameters
    ----------
    prefixes : mapping
        Each instrument's prefix (``tcstation.devices.station.station_prefixes`` or
        ``load_prefixes``).
    warm_limit : float or None
        Seconds the mounted sample may spend warm when the ledger does not say
        (``--warm-limit``; see :func:`warm_limit_for`).
    ledger : LedgerView, optional
        The sample ledger: the warm time is shown against the mounted sample's tolerance.
    """

    def __init__(self, prefixes: Mapping[str, str], warm_limit: float | None = None,
                 ledger: LedgerView | None = None):
        import epics

        self.warm_limit = warm_limit
        self.ledger = ledger
        self.names = station_pv_names(prefixes)
        self.labels = {key: label for key, _, _, label in STATION_READINGS}
        # form="time": every monitor update carries the alarm severity and status.
        self.pvs = {key: epics.get_pv(name, form="time", auto_monitor=True)
                    for key, name in self.names.items()}
        self._enum_strings: dict[str, tuple[str, ...]] = {}

    def _value(self, key: str, pv) -> tuple[Any, str]:
        value = pv.value
        if pv.type is not None and "enum" in pv.type:
            strings = self._enum_strings.get(key)
            if strings is None:
                controls = pv.get_ctrlvars(timeout=1.0) or {}
                strings = tuple(controls.get("enum_strs") or ())
                if strings:
                    self._enum_strings[key] = strings
            if strings and value is not None and 0 <= int(value) < len(strings):
                return strings[int(value)], ""
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        number = _number(value)
        if number is not None and not isinstance(value, str):
            return number, pv.units or ""
        return (value if value is None or isinstance(value, str | int) else str(value)), ""

    def mounted_warm_limit(self, readings: Mapping[str, dict]) -> dict:
        """The mounted sample's warm-time limit (:func:`warm_limit_for`) for these readings."""
        mounted = None
        if self.ledger is not None:
            try:
                mounted = self.ledger.mounted()
            except Exception:  # an unreadable ledger: the page falls back to --warm-limit
                logger.exception("reading the sample ledger %s failed", self.ledger.path)
        return warm_limit_for(mounted, readings.get("sample", {}).get("value"), self.warm_limit)

    def snapshot(self) -> dict:
        """``{"readings": {key: {...}}, "alarms": [...], "warm_limit": s, "warm_limit_source":
        {...}}`` (cached values; the limit as :func:`warm_limit_for` finds it)."""
        readings = {}
        for key, pv in self.pvs.items():
            reading = {"label": self.labels[key], "pv": self.names[key],
                       "connected": bool(pv.connected), "value": None, "units": "",
                       "severity": "INVALID", "status": ""}
            if pv.connected:
                try:
                    reading["value"], reading["units"] = self._value(key, pv)
                except Exception:  # a PV dropping between the checks: shown as unread
                    logger.debug("reading %s failed", pv.pvname, exc_info=True)
                severity = pv.severity if pv.severity is not None else 0
                reading["severity"] = SEVERITIES[min(int(severity), 3)]
                reading["status"] = str(pv.status or "")
            readings[key] = reading
        limit = self.mounted_warm_limit(readings)
        return {"readings": readings, "alarms": station_alarms(readings, limit["seconds"]),
                "warm_limit": limit["seconds"], "warm_limit_source": limit}

    def close(self) -> None:
        for pv in self.pvs.values():
            try:
                pv.clear_auto_monitor()
            except Exception:  # pyepics and ophyd's PV shim differ; the process ends anyway
                logger.debug("clearing the monitor of %s failed", pv.pvname, exc_info=True)


class LiveRun:
    """The running plan, from the published documents: its curves, progress and Tc table.

    Feed it documents (``live(name, doc)``) or let :meth:`follow` subscribe it to the stream
    proxy. Curves are kept per dc bias (one for susceptibility), as ``[temperature, signal]``
    points against the sample temperature; :meth:`snapshot` gives the points added since
    a given count, so a page that already has a curve only gets what is new.

    Parameters
    ----------
    refresh_seconds : float
        Wall seconds between recomputations of the live Tc table.
    max_points : int
        Points kept per run (later points are dropped, the count says so).
    """

    def __init__(self, refresh_seconds: float = 5.0, max_points: int = 200_000):
        self.max_points = max_points
        self._lock = threading.Lock()
        self.start_document: dict | None = None
        self.stop_document: dict | None = None
        self.primary: set[str] = set()
        self.points: list[tuple[float | None, float, float]] = []  # (bias, T, signal)
        self.times: list[float] = []
        self.rows: list[dict] = []
        self.first_time: float | None = None
        self.transitions = LiveTransitions(on_update=self._table, on_stop=self._table,
                                           refresh_seconds=refresh_seconds)
        self._dispatcher = None
        self._thread: threading.Thread | None = None

    def _table(self, start: dict, rows: list[dict]) -> None:
        with self._lock:
            if self.start_document is not None and start.get("uid") == self.start_document["uid"]:
                self.rows = [dict(row) for row in rows]

    def __call__(self, name: str, document: dict) -> None:
        try:
            handler = getattr(self, "_" + name, None)
            if handler is not None:
                handler(document)
        except Exception:
            logger.exception("the page's live run did not take a %s document", name)
        self.transitions(name, document)

    def _start(self, document: dict) -> None:
        with self._lock:
            self.start_document = dict(document)
            self.stop_document = None
            self.primary = set()
            self.points, self.times, self.rows = [], [], []
            self.first_time = None

    def _descriptor(self, document: dict) -> None:
        if document.get("name") == "primary":
            with self._lock:
                self.primary.add(document["uid"])

    def _event(self, document: dict) -> None:
        with self._lock:
            start = self.start_document
            if start is None or document.get("descriptor") not in self.primary:
                return
            fields = start.get("fields") or {}
            data = document["data"]
            temperature_field = fields.get("temperature") or _first_dimension(start)
            signal_field = fields.get("signal")
            if temperature_field not in data:
                return
            temperature = _number(data[temperature_field])
            signal = _number(data.get(signal_field)) if signal_field else None
            bias = _number(data.get(fields["bias"])) if fields.get("bias") else None
            if temperature is None:
                return
            if len(self.points) < self.max_points:
                self.points.append((None if bias is None else round(bias, 6), temperature,
                                    signal if signal is not None else math.nan))
                self.times.append(float(document.get("time", time.time())))
            if self.first_time is None:
                self.first_time = float(document.get("time", time.time()))

    def _stop(self, document: dict) -> None:
        with self._lock:
            if self.start_document and document.get("run_start") == self.start_document["uid"]:
                self.stop_document = dict(document)

    def progress(self) -> dict:
        """Fraction of the ramp's span reached and the ETA (s), from ``start["ramp"]``."""
        start = self.start_document or {}
        ramp = start.get("ramp") or {}
        span = (_number(ramp.get("start")), _number(ramp.get("stop")))
        if None in span or not self.points or span[0] == span[1]:
            return {"fraction": None, "eta_seconds": None}
        latest = self.points[-1][1]
        fraction = min(max((latest - span[0]) / (span[1] - span[0]), 0.0), 1.0)
        if self.stop_document is not None:
            return {"fraction": fraction, "eta_seconds": 0.0}
        elapsed = self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0
        first = min(max((self.points[0][1] - span[0]) / (span[1] - span[0]), 0.0), 1.0)
        made = fraction - first
        eta = elapsed * (1.0 - fraction) / made if made > 1e-6 and elapsed > 0 else None
        return {"fraction": fraction, "eta_seconds": eta}

    def snapshot(self, since: int = 0) -> dict:
        """The run's state and its points from index ``since`` on.

        Returns
        -------
        dict
            ``{"uid", "plan_name", "scan_id", "sample", "measurement", "ramp", "state"
            ("running" or the stop's exit status), "count", "since", "points"
            ([bias, T, signal] lists), "progress", "tc_table", "units"}``, or
            ``{"uid": None}`` before any run.
        """
        with self._lock:
            start = self.start_document
            if start is None:
                return {"uid": None}
            fields = start.get("fields") or {}
            since = max(0, min(int(since), len(self.points)))
            return {
                "uid": start.get("uid"), "plan_name": start.get("plan_name"),
                "scan_id": start.get("scan_id"), "sample": _plain(start.get("sample")),
                "measurement": start.get("measurement"), "ramp": _plain(start.get("ramp")),
                "signal_field": fields.get("signal"), "temperature_field":
                    fields.get("temperature") or _first_dimension(start),
                "state": ("running" if self.stop_document is None
                          else self.stop_document.get("exit_status", "?")),
                "count": len(self.points), "since": since,
                "points": [list(point) for point in self.points[since:]],
                "progress": self.progress(), "tc_table": _plain(self.rows),
            }

    def follow(self, address: str) -> None:
        """Subscribe to the document stream's proxy (``tcp://host:port``) in a thread."""
        from bluesky.callbacks.zmq import RemoteDispatcher

        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._dispatcher = RemoteDispatcher(address, loop=loop)
            self._dispatcher.subscribe(self)
            ready.set()
            try:
                self._dispatcher.start()
            except (asyncio.CancelledError, RuntimeError):
                pass
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="web-document-stream", daemon=True)
        self._thread.start()
        ready.wait(10.0)

    def close(self) -> None:
        dispatcher = self._dispatcher
        if dispatcher is not None and not dispatcher.closed:
            def cancel() -> None:
                for task in asyncio.all_tasks(dispatcher.loop):
                    task.cancel()
            dispatcher.loop.call_soon_threadsafe(cancel)
        if self._thread is not None:
            self._thread.join(5.0)


def _first_dimension(start: dict) -> str | None:
    dimensions = start.get("hints", {}).get("dimensions") or []
    try:
        return dimensions[0][0][0]
    except (IndexError, TypeError):
        return None


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and NaN made JSON-able (NaN -> None)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    number = _number(value)
    if number is not None:
        return int(value) if isinstance(value, int) else number
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _plain(tolist())
    return None if isinstance(value, float) else str(value)


QUEUE_ACTIONS = ("add", "start", "stop", "remove")
"""The queue actions the page offers (each needs the key)."""


class QueueActionError(ValueError):
    """A queue action the RE manager refused, or one with bad arguments."""


class QueueMonitor:
    """The RE manager's status, queue and history, polled through bluesky-queueserver-api.

    Parameters
    ----------
    api : bluesky_queueserver_api.zmq.REManagerAPI or compatible
        The manager's API client (``REManagerAPI(zmq_control_addr=..., zmq_info_addr=...)``).
    period : float
        Seconds between status polls; the queue and the history are read again only when
        the manager says they changed.
    """

    def __init__(self, api, period: float = 1.0):
        self.api = api
        self.period = period
        self._lock = threading.Lock()
        self._api_lock = threading.Lock()
        self._state: dict = {"connected": False, "status": {}, "running": None, "queue": [],
                             "history": [], "error": "not polled yet"}
        self._queue_uid = self._history_uid = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> dict:
        """Read the manager once; returns (and keeps) the page's queue state."""
        try:
            with self._api_lock:
                status = self.api.status()
                state = dict(self._state)
                if status.get("plan_queue_uid") != self._queue_uid or state["error"]:
                    queue = self.api.queue_get()
                    state["queue"] = [_item(item) for item in queue.get("items", [])]
                    running = queue.get("running_item") or None
                    state["running"] = _item(running) if running else None
                    self._queue_uid = status.get("plan_queue_uid")
                if status.get("plan_history_uid") != self._history_uid or state["error"]:
                    history = self.api.history_get()
                    state["history"] = [_item(item) for item in history.get("items", [])][::-1]
                    self._history_uid = status.get("plan_history_uid")
        except Exception as error:  # the manager is down or busy: the page says so
            with self._lock:
                self._state = {**self._state, "connected": False,
                               "error": f"the RE manager does not answer ({error})"}
                self._queue_uid = self._history_uid = None
                return dict(self._state)
        keep = ("manager_state", "worker_environment_exists", "items_in_queue",
                "items_in_history", "running_item_uid", "re_state", "queue_stop_pending")
        state.update(connected=True, error="",
                     status={key: status.get(key) for key in keep})
        with self._lock:
            self._state = state
        return dict(state)

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._state)

    def start(self) -> QueueMonitor:
        def run() -> None:
            while not self._stop.is_set():
                self.poll()
                self._stop.wait(self.period)

        self._thread = threading.Thread(target=run, name="web-queue-poll", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
        try:
            self.api.close()
        except Exception:
            pass

    def act(self, action: str, payload: Mapping[str, Any] | None = None) -> dict:
        """Do a queue action: ``add`` (``{"plan": name, "kwargs": {...}}``), ``start``,
        ``stop`` (at the end of the running item) or ``remove`` (``{"uid": item_uid}``).

        Raises
        ------
        QueueActionError
            For an unknown action, missing arguments, or the manager's refusal (its message).
        """
        from bluesky_queueserver_api import BPlan

        payload = dict(payload or {})
        if action not in QUEUE_ACTIONS:
            raise QueueActionError(f"unknown queue action {action!r}; the actions are "
                                   f"{', '.join(QUEUE_ACTIONS)}")
        try:
            with self._api_lock:
                if action == "add":
                    plan = payload.get("plan")
                    kwargs = payload.get("kwargs") or {}
                    if not isinstance(plan, str) or not plan:
                        raise QueueActionError("add needs {'plan': NAME, 'kwargs': {...}}; "
                                               f"got plan={plan!r}")
                    if not isinstance(kwargs, dict):
                        raise QueueActionError(f"kwargs must be an object, not {kwargs!r}")
                    result = self.api.item_add(BPlan(plan, **kwargs))
                elif action == "start":
                    result = self.api.queue_start()
                elif action == "stop":
                    result = self.api.queue_stop()
                else:
                    uid = payload.get("uid")
                    if not isinstance(uid, str) or not uid:
                        raise QueueActionError(f"remove needs {{'uid': ITEM_UID}}; got {uid!r}")
                    result = self.api.item_remove(uid=uid)
        except QueueActionError:
            raise
        except Exception as error:
            raise QueueActionError(f"the RE manager refused {action}: {error}") from error
        self._queue_uid = None  # read the queue again at the next poll
        return _plain({key: value for key, value in dict(result).items() if key != "item"}
                      | ({"item": _item(result["item"])} if result.get("item") else {}))


def _item(item: Mapping[str, Any]) -> dict:
    """A queue or history item as the page lists it."""
    result = item.get("result") or {}
    return _plain({"item_uid": item.get("item_uid"), "name": item.get("name"),
                   "kwargs": item.get("kwargs", {}), "user": item.get("user"),
                   "exit_status": result.get("exit_status"),
                   "run_uids": result.get("run_uids", []), "msg": result.get("msg", "")})


class RecentRuns:
    """The newest runs in Tiled with their Tc tables (as ``tcstation report`` finds them).

    Parameters
    ----------
    connect : callable
        Returns a Tiled client of the station's catalog root (called on first use, again
        after an error); the runs are in its ``raw`` container, their Tc tables in ``derived``.
    """

    def __init__(self, connect: Callable[[], Any], cache_seconds: float = 5.0):
        self._connect = connect
        self.cache_seconds = cache_seconds
        self._listed: tuple[float, int, list[dict]] | None = None
        self._client = None
        self._tables: dict[str, list[dict]] = {}
        self._lock = threading.Lock()

    @property
    def client(self):
        if self._client is None:
            self._client = self._connect()
        return self._client

    def recent(self, count: int = 10) -> list[dict]:
        """The ``count`` newest runs: uid, scan id, plan, sample, time, exit status, Tc table."""
        from tcstation.report import stored_tc_table
        from tcstation.storage.layout import LayoutError, runs_container
        from tcstation.storage.lookup import newest_runs

        with self._lock:
            if self._listed is not None:
                listed_at, listed_count, listed = self._listed
                if listed_count == count and time.monotonic() - listed_at < self.cache_seconds:
                    return listed
            try:
                runs = newest_runs(runs_container(self.client), count)
            except LayoutError:
                runs = []  # a catalog no session has written to yet
            except Exception:
                self._client = None
                raise
            listed = []
            for run in runs:
                start = run.metadata.get("start", {})
                stop = run.metadata.get("stop") or {}
                uid = start.get("uid")
                if uid not in self._tables and stop:
                    table = stored_tc_table(self.client, uid)
                    if table is not None:
                        self._tables[uid] = table
                listed.append(_plain({
                    "uid": uid, "scan_id": start.get("scan_id"),
                    "plan_name": start.get("plan_name"), "sample": start.get("sample"),
                    "measurement": start.get("measurement"), "time": start.get("time"),
                    "exit_status": stop.get("exit_status"),
                    "tc_table": self._tables.get(uid, []),
                }))
            self._listed = (time.monotonic(), count, listed)
            return listed

    def run(self, uid: str):
        """The run whose uid (or unique prefix) is ``uid`` (RunLookupError otherwise)."""
        from tcstation.storage.layout import runs_container
        from tcstation.storage.lookup import resolve_run

        with self._lock:
            return resolve_run(runs_container(self.client), uid)


class LedgerView:
    """The sample ledger as the page reads it, read again only when its file changed.

    Parameters
    ----------
    ledger : tcstation.ledger.SampleLedger
        The ledger file of the station's data directory (the one the sessions append to).
    """

    def __init__(self, ledger):
        self.ledger = ledger
        self._lock = threading.Lock()
        self._stamp: Any = object()
        self._samples: list[dict] = []

    @property
    def path(self):
        return self.ledger.path

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            status = self.ledger.path.stat()
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_size, status.st_mtime_ns

    def samples(self) -> list[dict]:
        """:meth:`tcstation.ledger.SampleLedger.samples`, cached until the file changes, each
        with ``warm_severity`` (its latest warm time against its tolerance,
        :func:`warm_severity`)."""
        with self._lock:
            # Stamped before reading: a line appended meanwhile is read again next time.
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._samples = [
                    {**sample, "warm_severity": warm_severity(sample.get("warm_seconds"),
                                                              sample.get("warm_tolerance"))}
                    for sample in self.ledger.samples()]
                self._stamp = stamp
            return [dict(sample) for sample in self._samples]

    def mounted(self) -> dict | None:
        """The summary of the sample the ledger last saw mounted, or None."""
        return next((sample for sample in self.samples() if sample.get("current")), None)

    def history(self, sample_id: str) -> list[dict]:
        """:meth:`tcstation.ledger.SampleLedger.history` (LedgerError for an unknown id)."""
        return self.ledger.history(sample_id)


def warm_limit_for(mounted: Mapping[str, Any] | None, station_kind: Any,
                   fallback: float | None) -> dict:
    """The warm time the mounted sample tolerates, and where the page has it from.

    The ledger's current mount decides (its ``warm_tolerance``, the tolerance of its kind).
    When the station reports another kind than that mount, the ledger has not seen the sample
    yet (it was mounted without ``mount_sample``; the next run records it): the tolerance of
    the station's kind is taken. ``fallback`` (``--warm-limit``) only when neither kind has
    a tolerance or the ledger has no mount.

    Parameters
    ----------
    mounted : mapping or None
        The ledger's current sample (:meth:`LedgerView.mounted`).
    station_kind : str or None
        The sample kind the station's environment reports now.
    fallback : float or None
        Seconds; None: not checked.

    Returns
    -------
    dict
        ``{"seconds", "source" ("ledger", "kind" or "option"), "sample_id", "kind", "note"}``.
    """
    from tcstation.ledger import warm_tolerance

    option = {"seconds": fallback, "source": "option", "sample_id": None, "kind": None}
    if mounted is None:
        return {**option, "note": "the sample ledger has no mount"}
    kind = mounted.get("kind")
    sample_id = mounted.get("sample_id")
    if isinstance(station_kind, str) and station_kind and kind and station_kind != kind:
        tolerance = warm_tolerance(station_kind)
        note = (f"the station's sample is a {station_kind}, the ledger's last mount "
                f"{sample_id} a {kind}: not in the ledger until its next run")
        if tolerance is None:
            return {**option, "kind": station_kind, "note": note}
        return {"seconds": tolerance, "source": "kind", "sample_id": None,
                "kind": station_kind, "note": note}
    tolerance = mounted.get("warm_tolerance")
    if tolerance is None and kind:
        tolerance = warm_tolerance(kind)
    if tolerance is None:
        return {**option, "sample_id": sample_id, "kind": kind,
                "note": f"{sample_id} ({kind or 'kind unknown'}) has no warm-time tolerance"}
    return {"seconds": float(tolerance), "source": "ledger", "sample_id": sample_id,
            "kind": kind, "note": ""}


def load_ledger(data_dir=None) -> LedgerView:
    """The sample ledger of ``data_dir``, or of ``TCSTATION_DATA_DIR`` as the session finds it.

    Raises
    ------
    tcstation.storage.config.StorageConfigError
        If the storage variables are wrong (the message names the variable).
    """
    from tcstation.ledger import SampleLedger, ledger_path

    if data_dir is None:
        return LedgerView(SampleLedger.from_environment())
    return LedgerView(SampleLedger(ledger_path(data_dir)))
