"""The sample ledger: every mount, exposure and run of every sample, in order, on disk.

One append-only JSON-lines file, ``DATA_DIR/ledger/samples.jsonl``, one entry a line:

* ``mount``: a sample was mounted (``mount_sample``'s run, or a sample first seen at a run
  when it was mounted some other way): sample id, kind, preparation, when, contacts, insert,
  its limit and the warm time it tolerates;
* ``exposure``: a room-temperature exposure of the mounted sample, its warm seconds before
  and after;
* ``run``: any other run on it: uid, scan id, plan, warm seconds before and after, exit
  status, and ``flag`` when the sample had been warm longer than it tolerates before the run;
* ``tc_table``: the Tc table of a run, appended when its analysis finishes.

Every write takes an exclusive ``flock`` on the file and every read a shared one, so the
IPython session and the queueserver's worker can both append; a line is written whole and
fsynced. :class:`LedgerCallback` is the RunEngine subscription that appends the entries;
:class:`SampleLedger` reads them back as plain dicts (:meth:`SampleLedger.samples`,
:meth:`SampleLedger.history`) for ``tcstation samples`` and the web page.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bluesky.preprocessors import msg_mutator
from event_model import DocumentRouter

from tcstation.instruments.environment import WARM_TIME_TOLERANCE_SECONDS

logger = logging.getLogger(__name__)

LEDGER_FILENAME = Path("ledger") / "samples.jsonl"
"""The ledger's file under the data directory."""
MOUNT_PLAN = "mount_sample"
EXPOSURE_PLAN = "expose_to_room_temperature"
SAMPLE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
"""A sample id: a letter or digit, then up to 63 letters, digits or ``_ . : -``."""
PREPARATION_MAX_LENGTH = 500
WARM_TIME_SLACK = 1.0
"""s: a sample's warm time never decreases; a drop beyond this means a fresh mount."""


class LedgerError(ValueError):
    """A sample id or preparation the ledger cannot take, or a sample it does not know."""


def warm_tolerance(kind: str) -> float | None:
    """Seconds above 77 K the sample kind tolerates, or None when it does not degrade."""
    return WARM_TIME_TOLERANCE_SECONDS.get(kind)


def check_sample_id(sample_id) -> str:
    """``sample_id`` stripped, or :class:`LedgerError` saying what a sample id may hold."""
    if not isinstance(sample_id, str) or not SAMPLE_ID_PATTERN.fullmatch(sample_id.strip()):
        raise LedgerError(f"sample id {sample_id!r} is not valid: give 1 to 64 letters, digits "
                          "or _ . : - starting with a letter or digit, e.g. 'MgO-ball-07'")
    return sample_id.strip()


def check_preparation(preparation) -> str:
    """``preparation`` as free text of at most 500 characters."""
    if not isinstance(preparation, str) or len(preparation) > PREPARATION_MAX_LENGTH:
        shown = preparation if not isinstance(preparation, str) else f"{preparation[:40]}..."
        raise LedgerError(f"preparation {shown!r} must be text of at most "
                          f"{PREPARATION_MAX_LENGTH} characters")
    return preparation.strip()


def make_sample_id(kind: str, mounted: float) -> str:
    """The id of a sample the operator did not name: its kind and UTC mount time."""
    return f"{kind}-{datetime.fromtimestamp(mounted, UTC):%Y%m%dT%H%M%SZ}"


def iso_time(seconds: float | None) -> str | None:
    """POSIX seconds as an ISO 8601 UTC time to the second."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def warm_flag(kind: str, warm_seconds_before: float | None) -> str | None:
    """Why a run on a sample of ``kind`` warm that long is suspect, or None when it is not."""
    tolerance = warm_tolerance(kind)
    if tolerance is None or warm_seconds_before is None or warm_seconds_before <= tolerance:
        return None
    return (f"the {kind} sample had been warm {warm_seconds_before / 60:.1f} min before this "
            f"run, longer than the {tolerance / 60:g} min it tolerates: it has degraded")


def ledger_path(data_dir: Path) -> Path:
    """The ledger file of a data directory."""
    return Path(data_dir) / LEDGER_FILENAME


class SampleLedger:
    """The sample ledger file: append entries, read samples and their histories.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON-lines file (:func:`ledger_path` of the data directory); created, with its
        directory, at the first append.
    """

    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def from_environment(cls) -> SampleLedger:
        """The ledger of ``TCSTATION_DATA_DIR`` (:class:`tcstation.storage.config.StorageConfig`).

        Raises
        ------
        tcstation.storage.config.StorageConfigError
            If the storage variables are wrong (the message names the variable).
        """
        from tcstation.storage.config import StorageConfig

        return cls(ledger_path(StorageConfig.from_environment().data_dir))

    @contextmanager
    def _locked(self, mode: str) -> Iterator:
        exclusive = mode != "r"
        if exclusive:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif not self.path.exists():
            yield None
            return
        with open(self.path, mode, encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, entry: dict) -> dict:
        """Append one entry (``entry`` names its type); it gets a ``time`` if it has none."""
        entry = _json_clean({"time": time.time(), **entry})
        line = json.dumps(entry, allow_nan=False) + "\n"
        with self._locked("a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return entry

    def entries(self) -> list[dict]:
        """Every entry in the order written; a torn last line (a crash mid-write) is skipped."""
        with self._locked("r") as handle:
            if handle is None:
                return []
            lines = handle.readlines()
        entries = []
        for number, line in enumerate(lines, 1):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s line %d is not a ledger entry; skipped", self.path, number)
        return entries

    def current_mount(self) -> dict | None:
        """The latest mount entry: the sample the station has mounted, as far as it knows."""
        mounts = [entry for entry in self.entries() if entry.get("entry") == "mount"]
        return mounts[-1] if mounts else None

    def samples(self) -> list[dict]:
        """Every sample, in mount order, as plain dicts.

        Returns
        -------
        list of dict
            ``sample_id``, ``kind``, ``preparation``, ``mounted`` (POSIX s) and
            ``mounted_iso``, ``contacts``, ``insert``, ``max_safe_temperature`` (K),
            ``warm_tolerance`` (s, None if it does not degrade), ``warm_seconds`` (the
            latest known), ``mounts`` (a sample may be mounted again under its id; the
            mount fields are the latest's), ``exposures``, ``runs``, ``flagged`` (runs
            flagged), ``current`` (the latest mounted).
        """
        summaries: dict[str, dict] = {}
        latest = None
        for entry in self.entries():
            kind = entry.get("entry")
            if kind == "mount":
                latest = entry["sample_id"]
                counts = summaries.get(entry["sample_id"], {"mounts": 0, "exposures": 0,
                                                            "runs": 0, "flagged": 0})
                summaries[entry["sample_id"]] = {
                    **_mount_fields(entry), "warm_seconds": entry.get("warm_seconds", 0.0),
                    **{key: counts[key] for key in ("mounts", "exposures", "runs", "flagged")},
                    "current": False}
                summaries[entry["sample_id"]]["mounts"] += 1
                continue
            summary = summaries.get(entry.get("sample_id"))
            if summary is None or kind not in ("exposure", "run"):
                continue
            summary["exposures" if kind == "exposure" else "runs"] += 1
            summary["flagged"] += bool(entry.get("flag"))
            for key in ("warm_seconds_before", "warm_seconds_after"):
                if entry.get(key) is not None:
                    summary["warm_seconds"] = entry[key]
        if latest is not None:
            summaries[latest]["current"] = True
        return list(summaries.values())

    def history(self, sample_id: str) -> list[dict]:
        """A sample's mount, exposures and runs in order, as plain dicts.

        Every item has ``entry`` ("mount", "exposure" or "run"), ``time`` and ``time_iso``
        (when it was appended: a run's stop); exposures and runs have ``started`` and
        ``started_iso``, ``run_uid``, ``scan_id``, ``plan_name``, ``warm_seconds_before`` and
        ``warm_seconds_after``, ``exit_status``, ``flag`` (None, or why the run is suspect)
        and ``tc_table`` (the run's Tc table rows, empty until its analysis finished).

        Raises
        ------
        LedgerError
            If the ledger has no sample ``sample_id``.
        """
        entries = self.entries()
        tables = {entry["run_uid"]: entry.get("rows", []) for entry in entries
                  if entry.get("entry") == "tc_table"}
        items = []
        for entry in entries:
            if entry.get("sample_id") != sample_id or entry.get("entry") == "tc_table":
                continue
            item = {**entry, "time_iso": iso_time(entry.get("time"))}
            if "started" in entry:
                item["started_iso"] = iso_time(entry["started"])
            if entry.get("entry") == "mount":
                item.update(_mount_fields(entry))
            else:
                item.setdefault("flag", None)
                item["tc_table"] = tables.get(entry.get("run_uid"), [])
            items.append(item)
        if not items:
            known = [entry["sample_id"] for entry in entries if entry.get("entry") == "mount"]
            raise LedgerError(f"no sample {sample_id!r} in the ledger {self.path}"
                              + (f"; known: {', '.join(known)}" if known
                                 else "; it has no samples yet"))
        return items


def _mount_fields(entry: dict) -> dict:
    return {key: entry.get(key) for key in (
        "sample_id", "kind", "preparation", "mounted", "contacts", "insert",
        "max_safe_temperature", "warm_tolerance", "source")} | {
        "mounted_iso": iso_time(entry.get("mounted"))}


def _json_clean(value):
    """``value`` as strict JSON: NaN and infinities as None, numpy scalars and arrays as
    Python numbers and lists (documents and Tc tables may hold both)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(key): _json_clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_clean(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _latest_warm(entries: list[dict], sample_id: str) -> float | None:
    """The latest warm time the ledger knows of a sample."""
    latest = None
    for entry in entries:
        if entry.get("sample_id") != sample_id:
            continue
        for key in ("warm_seconds", "warm_seconds_before", "warm_seconds_after"):
            if entry.get(key) is not None:
                latest = entry[key]
    return latest


class LedgerCallback(DocumentRouter):
    """A RunEngine subscription that appends every run to the sample ledger.

    A ``mount_sample`` run appends a mount; an ``expose_to_room_temperature`` run an
    exposure; any other run a run entry on the sample mounted (at its stop): the one its
    ``sample_id`` names, else the latest mount. A run on a sample the ledger has not seen
    mounted (another kind than the latest mount, or a warm time lower than the latest
    known, i.e. a fresh sample) first appends a mount the ledger makes up (``source:
    "seen"``, id from the kind and the time it was seen). :meth:`add_sample_id`, as a
    RunEngine preprocessor, writes the sample id into every start document.

    Parameters
    ----------
    ledger : SampleLedger
        Where the entries go.
    read_environment : callable, optional
        Returns the sample environment now: ``kind``, ``insert``, ``contacts``,
        ``warm_seconds``, ``max_safe_temperature``; for runs whose start document does not
        describe the sample and for the warm time at a run's stop.
    """

    def __init__(self, ledger: SampleLedger,
                 read_environment: Callable[[], dict] | None = None):
        super().__init__()
        self.ledger = ledger
        self.read_environment = read_environment
        self._open: dict[str, dict] = {}

    def _environment(self) -> dict:
        if self.read_environment is None:
            return {}
        try:
            return self.read_environment()
        except Exception as error:
            logger.warning("the sample ledger could not read the sample environment: %s", error)
            return {}

    def start(self, doc):
        try:
            self._open[doc["uid"]] = self._on_start(doc)
        except Exception:
            logger.exception("the sample ledger missed the start of run %s", doc["uid"][:8])

    def stop(self, doc):
        pending = self._open.pop(doc["run_start"], None)
        if pending is None:
            return
        try:
            self._on_stop(pending, doc)
        except Exception:
            logger.exception("the sample ledger missed the stop of run %s",
                             doc["run_start"][:8])

    def _on_start(self, doc: dict) -> dict:
        sample = doc.get("sample") if isinstance(doc.get("sample"), dict) else {}
        if doc.get("plan_name") == MOUNT_PLAN and sample.get("sample_id"):
            self.ledger.append({
                "entry": "mount", "sample_id": sample["sample_id"], "kind": sample.get("name"),
                "preparation": sample.get("preparation", ""), "source": MOUNT_PLAN,
                "mounted": sample.get("mounted", doc["time"]),
                "contacts": sample.get("contacts"), "insert": sample.get("insert"),
                "max_safe_temperature": sample.get("max_safe_temperature"),
                "warm_tolerance": warm_tolerance(sample.get("name")),
                "warm_seconds": sample.get("warm_seconds_before", 0.0),
                "run_uid": doc["uid"]})
            return {"mount": True}
        mount, kind, warm = self._resolve(doc, doc["time"], f"run {doc['uid'][:8]}")
        return {"mount": False, "start": doc, "sample_id": mount.get("sample_id"),
                "kind": mount.get("kind", kind), "warm_seconds_before": warm}

    def _resolve(self, md: dict, now: float, seen_at: str) -> tuple[dict, str | None,
                                                                    float | None]:
        """The mount a run (its start document or ``open_run`` metadata) is on, its
        sample's kind and warm seconds before it.

        The mount ``md["sample_id"]`` names (one made up under that id if the ledger has
        none); else the latest, unless the sample is not it (another kind, or a warm time
        lower than the latest known): then a mount made up for the sample seen.
        """
        sample = md.get("sample") if isinstance(md.get("sample"), dict) else {}
        environment = self._environment() if not sample else {}
        seen = sample or environment
        kind = sample.get("name", environment.get("kind"))
        warm = _finite(sample.get("warm_seconds_before", environment.get("warm_seconds")))
        named = md.get("sample_id")
        entries = self.ledger.entries()
        mounts = [entry for entry in entries if entry.get("entry") == "mount"]
        if isinstance(named, str) and named:
            known = [mount for mount in mounts if mount["sample_id"] == named]
            if known:
                return known[-1], kind, warm
            return self._seen_mount(named, kind, warm, seen, now, seen_at), kind, warm
        current = mounts[-1] if mounts else None
        if kind is None:
            return current or {}, kind, warm
        if current is not None and current.get("kind") == kind:
            known_warm = _latest_warm(entries, current["sample_id"])
            if warm is None or known_warm is None or warm >= known_warm - WARM_TIME_SLACK:
                return current, kind, warm
        taken = {mount["sample_id"] for mount in mounts}
        sample_id = make_sample_id(kind, now)
        sample_id = next(candidate for candidate in
                         (sample_id, *(f"{sample_id}-{index}" for index in range(2, 1000)))
                         if candidate not in taken)
        return self._seen_mount(sample_id, kind, warm, seen, now, seen_at), kind, warm

    def _seen_mount(self, sample_id: str, kind: str | None, warm: float | None, seen: dict,
                    now: float, seen_at: str) -> dict:
        return self.ledger.append({
            "entry": "mount", "sample_id": sample_id, "kind": kind,
            "preparation": "", "source": "seen", "mounted": now,
            "contacts": seen.get("contacts"), "insert": seen.get("insert"),
            "max_safe_temperature": seen.get("max_safe_temperature"),
            "warm_tolerance": warm_tolerance(kind), "warm_seconds": warm,
            "note": f"mounted without mount_sample; first seen at {seen_at}"})

    def add_sample_id(self, plan):
        """A RunEngine preprocessor: every run's start document names its ``sample_id``.

        Resolved when the run opens, as for the ledger entry, so that Tiled's copy of each
        run names the sample too; a run whose metadata names one keeps it.
        """
        def name_the_sample(msg):
            if (msg.command != "open_run" or msg.kwargs.get("sample_id")
                    or msg.kwargs.get("plan_name") == MOUNT_PLAN):
                return msg
            try:
                mount, _, _ = self._resolve(msg.kwargs, time.time(),
                                            f"a {msg.kwargs.get('plan_name', '')} run")
            except Exception:
                logger.exception("the sample ledger could not name the run's sample")
                return msg
            if not mount.get("sample_id"):
                return msg
            return msg._replace(kwargs={**msg.kwargs, "sample_id": mount["sample_id"]})

        return msg_mutator(plan, name_the_sample)

    def _on_stop(self, pending: dict, doc: dict) -> None:
        if pending["mount"] or pending["sample_id"] is None:
            return
        start = pending["start"]
        plan_name = start.get("plan_name")
        exposure = plan_name == EXPOSURE_PLAN
        entry = {"entry": "exposure" if exposure else "run",
                 "sample_id": pending["sample_id"], "run_uid": start["uid"],
                 "scan_id": start.get("scan_id"), "plan_name": plan_name,
                 "started": start["time"],
                 "warm_seconds_before": pending["warm_seconds_before"],
                 "warm_seconds_after": _finite(self._environment().get("warm_seconds")),
                 "exit_status": doc.get("exit_status")}
        if exposure:
            entry["minutes"] = start.get("plan_args", {}).get("minutes")
        else:
            entry["flag"] = warm_flag(pending["kind"], pending["warm_seconds_before"])
        for key in ("protocol_uid", "protocol_step_name", "measurement"):
            if key in start:
                entry[key] = start[key]
        self.ledger.append(entry)

    def record_tc_table(self, run_uid: str, rows: list[dict]) -> None:
        """Append a run's Tc table (the session calls it when the run's analysis finishes)."""
        try:
            self.ledger.append({"entry": "tc_table", "run_uid": run_uid, "rows": rows})
        except Exception:
            logger.exception("the Tc table of run %s stayed out of the sample ledger",
                             run_uid[:8])


def environment_reader(station) -> Callable[[], dict]:
    """A ``read_environment`` for :class:`LedgerCallback` from the station's devices."""
    environment = station.environment

    def read() -> dict:
        return {"kind": environment.sample.get(), "insert": environment.insert.get(),
                "contacts": environment.contacts.get(),
                "warm_seconds": float(environment.warm_time.get()),
                "max_safe_temperature": float(environment.max_safe_temperature.get())}

    return read


def _minutes(seconds) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min"


def format_samples(samples: list[dict]) -> str:
    """The table ``tcstation samples`` prints."""
    if not samples:
        return "no samples in the ledger yet"
    lines = [f"{'sample id':<32} {'kind':<8} {'mounted (UTC)':<26} {'warm':>10} "
             f"{'tolerates':>10} {'runs':>5} {'flagged':>7}"]
    for sample in samples:
        tolerance = sample["warm_tolerance"]
        lines.append(
            f"{sample['sample_id'] + (' *' if sample['current'] else ''):<32} "
            f"{sample['kind'] or '?':<8} {sample['mounted_iso'] or '?':<26} "
            f"{_minutes(sample['warm_seconds']):>10} "
            f"{'any' if tolerance is None else _minutes(tolerance):>10} "
            f"{sample['runs']:>5} {sample['flagged']:>7}")
    lines.append("* mounted now (as far as the ledger knows)")
    return "\n".join(lines)


def format_history(items: list[dict]) -> str:
    """The history ``tcstation samples ID`` prints, one line an entry (and a flag line)."""
    mount = items[0]
    lines = [f"{mount['sample_id']}: {mount['kind']}"
             + (f", {mount['preparation']}" if mount.get("preparation") else "")]
    for item in items:
        when = item.get("started_iso") or item.get("time_iso")
        if item["entry"] == "mount":
            lines.append(f"{when}  mount     {item.get('insert')} insert, "
                         f"{item.get('contacts')} contacts"
                         + (f" ({item['note']})" if item.get("note") else ""))
            continue
        warm = (f"warm {_minutes(item.get('warm_seconds_before'))} -> "
                f"{_minutes(item.get('warm_seconds_after'))}")
        label = "exposure" if item["entry"] == "exposure" else "run     "
        lines.append(f"{when}  {label}  {item.get('plan_name')} {str(item.get('run_uid'))[:8]} "
                     f"scan {item.get('scan_id')}, {warm}, {item.get('exit_status')}"
                     + (f", Tc table of {len(item['tc_table'])} row(s)"
                        if item.get("tc_table") else ""))
        if item.get("flag"):
            lines.append(f"    FLAG: {item['flag']}")
    return "\n".join(lines)


def samples_main(argv: list[str]) -> int:
    """``tcstation samples [ID] [--json]``: the ledger's samples, or one sample's history.

    Returns
    -------
    int
        0; 2 for an unknown sample id or a configuration error (one line, no traceback).
    """
    from tcstation.storage.config import StorageConfigError

    parser = argparse.ArgumentParser(
        prog="tcstation samples",
        description="The sample ledger of TCSTATION_DATA_DIR: every sample with its kind, "
                    "mount time, warm time and runs, or one sample's mounts, exposures and "
                    "runs in order, runs taken after too long warm flagged.")
    parser.add_argument("sample_id", nargs="?", help="show this sample's history")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        ledger = SampleLedger.from_environment()
    except StorageConfigError as error:
        print(f"tcstation samples: {error}", file=sys.stderr)
        return 2
    if args.sample_id is None:
        samples = ledger.samples()
        print(json.dumps(samples, indent=1) if args.json else format_samples(samples))
        return 0
    try:
        items = ledger.history(args.sample_id)
    except LedgerError as error:
        print(f"tcstation samples: {error}", file=sys.stderr)
        return 2
    print(json.dumps(items, indent=1) if args.json else format_history(items))
    return 0
