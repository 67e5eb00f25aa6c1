"""The session factory: station, RunEngine, safety, storage, live analysis, progress.

``open_session()`` is what the IPython profile, the queueserver's startup and
``tcstation demo`` call; they only bind the names it returns.

Configuration (environment variables):

* ``TCSTATION_PREFIX``: station prefix of the simulated layout (default ``TCS:``);
* ``TCSTATION_STATION_CONFIG``: a TOML file naming each real IOC's prefix
  (see :mod:`tcstation.devices.station`); when set, the prefix is not used;
* ``TCSTATION_STORAGE``: ``tiled`` (default) writes every run to Tiled; ``off``
  keeps no data (for listing the queueserver's plans, not for measuring);
* ``TCSTATION_WATCHDOG``: ``on`` (default) starts the station's watchdog
  (:mod:`tcstation.watchdog`, a process of its own that keeps the sample below its
  limit whether or not a plan runs) unless one already watches; ``off`` does not;
* ``TCSTATION_STREAM`` (``on`` by default) and ``TCSTATION_STREAM_*``: every document is
  published to the live document stream's 0MQ proxy (:mod:`tcstation.stream`), started
  if none runs; ``tcstation follow`` prints it;
* the storage variables of :mod:`tcstation.storage.config` (``TCSTATION_DATA_DIR``,
  ``TCSTATION_TILED_URI``, ...); with storage on, every mount, exposure and run is also
  appended to the sample ledger in the data directory (:mod:`tcstation.ledger`).

With storage on, ``RE.md`` is a ``bluesky.utils.PersistentDict`` in the data directory and
scan ids come from its shared counter (:mod:`tcstation.storage.run_metadata`): they go on
counting after a restart, and a session and the queueserver's worker on one data
directory never hand out the same one.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field, replace

from bluesky import RunEngine

from tcstation.analysis.live import LiveTransitions, format_table, row_units
from tcstation.analysis.live_plot import LiveCurves, interactive_backend
from tcstation.ca_renewal import start_channel_renewal
from tcstation.devices.station import DEFAULT_PREFIX, Station, build_station
from tcstation.plans.progress import RampProgress, running_in_queueserver
from tcstation.plans.safety import (
    CompliancePause,
    InstrumentConnectionGuard,
    SampleTemperatureGuard,
    refuse_unsafe_setpoints,
)

logger = logging.getLogger(__name__)

STORAGE_VARIABLE = "TCSTATION_STORAGE"
STORAGE_CHOICES = ("tiled", "off")
WATCHDOG_VARIABLE = "TCSTATION_WATCHDOG"
WATCHDOG_CHOICES = ("on", "off")


@dataclass
class Session:
    """Everything a user of the station works with, made once."""

    station: Station
    RE: RunEngine
    storage: object | None
    transitions: LiveTransitions
    tc_tables: dict[str, tuple[dict, list[dict]]] = field(default_factory=dict)
    compliance: CompliancePause | None = None
    pending_stores: list[threading.Thread] = field(default_factory=list)
    watchdog: object | None = None
    channel_renewal: object | None = None
    stream: object | None = None
    ledger: object | None = None
    """The sample ledger (:class:`tcstation.ledger.SampleLedger`: ``session.ledger.samples()``,
    ``.history(sample_id)``); None without storage."""
    ledger_callback: object | None = None
    """The RunEngine subscription appending to it (:class:`tcstation.ledger.LedgerCallback`)."""

    @property
    def description(self) -> str:
        kind = "simulated" if self.station.simulation is not None else "real"
        if self.storage is None:
            where = "no Tiled storage"
        else:
            where = self.storage.uri or "Tiled not answering: runs kept in the local spool"
        return f"{kind} station ({self.station.cryostat.prefix}), data: {where}"

    def close(self, timeout: float = 30.0) -> None:
        for thread in self.pending_stores:
            thread.join(timeout)
        if self.compliance is not None:
            self.compliance.remove()
        if self.storage is not None:
            self.storage.close()
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.channel_renewal is not None:
            self.channel_renewal.stop()
        if self.stream is not None:
            self.stream.close(self.RE)
        close_metadata = getattr(getattr(self.RE, "md", None), "close", None)
        if close_metadata is not None:
            close_metadata()


def store_transitions(storage, start: dict, rows: list[dict]) -> None:
    """Write a run's Tc table into Tiled's ``derived`` container, linked to the raw run.

    The table's key is ``transitions-<raw run uid>``; its metadata names the raw run
    (``raw_run``) and the unit of every column (``units``: K for the onsets, midpoints,
    widths and their errors, A for the bias).
    """
    import pandas

    from tcstation.storage.layout import transitions_key

    if storage is None or not rows:
        return
    key = transitions_key(start["uid"])
    metadata = {"raw_run": start["uid"], "kind": "transitions",
                "plan_name": start.get("plan_name"), "measurement": start.get("measurement"),
                "sample": start.get("sample", {}), "protocol_uid": start.get("protocol_uid"),
                "units": row_units(rows)}
    try:
        storage.derived.write_table(pandas.DataFrame(rows), key=key, metadata=metadata)
    except Exception as err:
        logger.warning("the Tc table of run %s stayed out of Tiled (%s); `tcstation report` "
                       "recomputes it from the raw run", start["uid"][:8], err)


def storage_from_environment() -> bool:
    """Whether ``TCSTATION_STORAGE`` asks for Tiled storage (``tiled``, the default) or ``off``."""
    value = os.environ.get(STORAGE_VARIABLE, "tiled").strip().lower() or "tiled"
    if value not in STORAGE_CHOICES:
        raise ValueError(f"{STORAGE_VARIABLE} = {value!r} is not one of "
                         f"{', '.join(STORAGE_CHOICES)}")
    return value == "tiled"


def watchdog_from_environment() -> bool:
    """Whether ``TCSTATION_WATCHDOG`` asks for the watchdog (``on``, the default) or ``off``."""
    value = os.environ.get(WATCHDOG_VARIABLE, "on").strip().lower() or "on"
    if value not in WATCHDOG_CHOICES:
        raise ValueError(f"{WATCHDOG_VARIABLE} = {value!r} is not one of "
                         f"{', '.join(WATCHDOG_CHOICES)}")
    return value == "on"


def open_session(prefix: str | None = None, config_path: str | None = None, *,
                 storage: bool | None = None, watchdog: bool | None = None,
                 progress: bool | None = None, stream: bool | None = None,
                 plots: bool | None = None, show_tables: bool = True,
                 connect_timeout: float = 10.0) -> Session:
    """Connect the station and build a RunEngine with safety, storage and live analysis.

    Parameters
    ----------
    prefix : str, optional
        Station prefix (default ``TCSTATION_PREFIX`` or ``TCS:``).
    config_path : str, optional
        TOML file of the real IOCs' prefixes (default ``TCSTATION_STATION_CONFIG``).
    storage : bool, optional
        Write every run to Tiled through the durable spool (default ``TCSTATION_STORAGE``).
    watchdog : bool, optional
        Start the station's watchdog process (default ``TCSTATION_WATCHDOG``); it is
        stopped by :meth:`Session.close` and outlives a session that dies.
    progress : bool, optional
        Show ramp progress bars (default: only in a terminal, never in the queueserver).
    stream : bool, optional
        Publish every document to the live document stream (default ``TCSTATION_STREAM``);
        the stream's proxy is started if none runs, and outlives the session.
    plots : bool, optional
        Plot each ramp live (default: with an interactive matplotlib backend, never in
        the queueserver).
    show_tables : bool
        Print each run's Tc table as it is updated and at its end.
    connect_timeout : float
        Seconds to wait for the instruments' PVs.
    """
    config_path = config_path or os.environ.get("TCSTATION_STATION_CONFIG") or None
    prefix = prefix or os.environ.get("TCSTATION_PREFIX") or DEFAULT_PREFIX
    channel_renewal = start_channel_renewal()
    try:
        station = build_station(prefix, config_path).connect(timeout=connect_timeout)
    except BaseException:
        channel_renewal.stop()
        raise
    RE = RunEngine({})
    RE.install_suspender(InstrumentConnectionGuard([
        station.cryostat.stage_temperature, station.transport.x, station.susceptometer.x,
        station.bias_source.measured_current]))
    RE.install_suspender(SampleTemperatureGuard(station.cryostat))
    RE.preprocessors.append(refuse_unsafe_setpoints(station.cryostat))
    watchdog_handle = None
    if watchdog is None:
        watchdog = watchdog_from_environment()
    if watchdog:
        from tcstation.watchdog import start_watchdog

        watchdog_handle = start_watchdog(None if config_path else prefix,
                                         config_path=config_path)
    compliance = CompliancePause(station)
    compliance.install(RE)
    storage_session = None
    if storage is None:
        storage = storage_from_environment()
    if storage:
        from tcstation.storage import open_storage
        from tcstation.storage.run_metadata import persistent_run_metadata

        storage_session = open_storage()
        RE.md, RE.scan_id_source = persistent_run_metadata(storage_session.config.data_dir)
        storage_session.subscribe(RE)
    ledger = None
    if storage_session is not None:
        from tcstation.ledger import LedgerCallback, SampleLedger, environment_reader, ledger_path

        ledger = LedgerCallback(SampleLedger(ledger_path(storage_session.config.data_dir)),
                                environment_reader(station))
        RE.subscribe(ledger)
        RE.preprocessors.append(ledger.add_sample_id)
    document_stream = None
    if stream is None or stream:
        from tcstation.stream import StreamConfig, StreamError, open_stream

        try:
            stream_config = StreamConfig.from_environment()
        except StreamError as error:
            logger.warning("no live document stream: %s", error)
        else:
            if stream is not None:
                stream_config = replace(stream_config, enabled=True)
            document_stream = open_stream(RE, stream_config)
    in_queueserver = running_in_queueserver()
    quiet = in_queueserver if progress is None else not progress
    session = Session(station=station, RE=RE, storage=storage_session,
                      transitions=LiveTransitions(), compliance=compliance,
                      watchdog=watchdog_handle, channel_renewal=channel_renewal,
                      stream=document_stream, ledger_callback=ledger,
                      ledger=None if ledger is None else ledger.ledger)

    def updated(start: dict, rows: list[dict]) -> None:
        if show_tables and not quiet:
            print(format_table(start, rows), flush=True)

    def finished(start: dict, rows: list[dict]) -> None:
        session.tc_tables[start["uid"]] = (start, rows)
        if ledger is not None:
            ledger.record_tc_table(start["uid"], rows)
        if show_tables:
            print(format_table(start, rows), flush=True)
        store = threading.Thread(target=store_transitions, args=(storage_session, start, rows),
                                 daemon=True, name="store-transitions")
        store.start()
        session.pending_stores.append(store)

    session.transitions.on_update = updated
    session.transitions.on_stop = finished
    RE.subscribe(session.transitions)
    RE.subscribe(RampProgress(quiet=None if progress is None else not progress))
    if plots is None:
        plots = not in_queueserver and interactive_backend()
    if plots:
        RE.subscribe(LiveCurves())
    logger.info("session: %s", session.description)
    return session
