"""``tcstation follow``: print the live document stream, one line per event.

It subscribes to the stream's proxy (:mod:`tcstation.stream`) with bluesky's
``RemoteDispatcher``, so it follows every session and the queueserver's worker on this
machine, from any terminal, and starts before or after them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
from collections.abc import Callable
from datetime import datetime

from event_model import DocumentRouter

from tcstation.stream import OUT_PORT_VARIABLE, StreamConfig, StreamError


def _format_value(value, unit: str | None) -> str:
    if isinstance(value, float):
        text = "nan" if math.isnan(value) else f"{value:.6g}"
    elif isinstance(value, list | tuple):
        text = f"[{len(value)} values]"
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


def _sample_text(sample) -> str:
    if isinstance(sample, dict):
        return str(sample.get("name") or sample.get("id") or
                   ", ".join(f"{key}={value}" for key, value in sample.items()) or "-")
    return str(sample) if sample else "-"


class RunPrinter(DocumentRouter):
    """Write each run as a start line, one compact line per event and a stop line.

    An event line shows the sequence number, then the fields the run's hints name: the
    plan's dimensions first (the sample temperature in a ramp), then each descriptor's
    hinted fields; a stream without hints shows all its fields.
    """

    def __init__(self, write: Callable[[str], None] = print):
        super().__init__()
        self.write = write
        self._starts: dict[str, dict] = {}
        self._descriptors: dict[str, tuple[dict, list[str]]] = {}
        self._events: dict[str, int] = {}

    def start(self, doc):
        self._starts[doc["uid"]] = doc
        self._events[doc["uid"]] = 0
        when = datetime.fromtimestamp(doc.get("time", 0)).strftime("%H:%M:%S")
        self.write(f"run {doc['uid'][:8]} started {when}: {doc.get('plan_name', '?')}, "
                   f"scan {doc.get('scan_id', '?')}, sample {_sample_text(doc.get('sample'))}")

    def descriptor(self, doc):
        start = self._starts.get(doc["run_start"], {})
        data_keys = doc.get("data_keys", {})
        fields: list[str] = []
        for dimension_fields, stream in start.get("hints", {}).get("dimensions", []):
            if stream == doc.get("name"):
                fields += [field for field in dimension_fields if field in data_keys]
        for hint in (doc.get("hints") or {}).values():
            fields += [field for field in hint.get("fields", []) if field not in fields]
        self._descriptors[doc["uid"]] = (doc, fields or sorted(data_keys))

    def event(self, doc):
        descriptor, fields = self._descriptors.get(doc["descriptor"], ({}, sorted(doc["data"])))
        data_keys = descriptor.get("data_keys", {})
        run_start = descriptor.get("run_start")
        if run_start in self._events:
            self._events[run_start] += 1
        stream = descriptor.get("name", "primary")
        readings = "  ".join(
            f"{field} {_format_value(doc['data'][field], data_keys.get(field, {}).get('units'))}"
            for field in fields if field in doc["data"])
        label = "" if stream == "primary" else f"[{stream}] "
        self.write(f"  {label}{doc['seq_num']:>5}  {readings}")

    def stop(self, doc):
        uid = doc["run_start"]
        start = self._starts.pop(uid, {})
        events = self._events.pop(uid, 0)
        self._descriptors = {key: value for key, value in self._descriptors.items()
                             if value[0].get("run_start") != uid}
        reason = f": {doc['reason']}" if doc.get("reason") else ""
        self.write(f"run {uid[:8]} ({start.get('plan_name', '?')}) ended: "
                   f"{doc.get('exit_status', '?')}{reason}, {events} events")


def json_line(name: str, doc: dict) -> str:
    """A document as one JSON line, ``{"name": ..., "doc": ...}`` (numpy values as lists)."""
    def default(value):
        tolist = getattr(value, "tolist", None)
        return tolist() if callable(tolist) else str(value)

    return json.dumps({"name": name, "doc": doc}, default=default)


def follow_parser() -> argparse.ArgumentParser:
    config = StreamConfig.from_environment()
    parser = argparse.ArgumentParser(
        prog="tcstation follow",
        description="Print the live document stream of every session and the queueserver "
                    "on this machine: each run's start, one line per event, its stop. "
                    "Ctrl-C ends it.")
    parser.add_argument("--host", default=config.host,
                        help="the stream proxy's host (default TCSTATION_STREAM_HOST or "
                             "%(default)s)")
    parser.add_argument("--port", type=int, default=config.out_port,
                        help=f"the proxy's out port (default {OUT_PORT_VARIABLE} or "
                             "%(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print every document as a JSON line instead, for programs")
    return parser


def follow_main(argv: list[str]) -> int:
    try:
        args = follow_parser().parse_args(argv)
    except StreamError as error:
        print(f"tcstation follow: {error}", file=sys.stderr)
        return 2
    from bluesky.callbacks.zmq import RemoteDispatcher

    address = f"tcp://{args.host}:{args.port}"
    dispatcher = RemoteDispatcher(address)

    def write(line: str) -> None:
        print(line, flush=True)

    if args.json:
        dispatcher.subscribe(lambda name, doc: write(json_line(name, doc)))
    else:
        dispatcher.subscribe(RunPrinter(write))
    # Ctrl-C and SIGTERM cancel the receiving task, so it ends inside the loop (no
    # "Task was destroyed but it is pending" at exit).
    def cancel() -> None:
        for task in asyncio.all_tasks(dispatcher.loop):
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        dispatcher.loop.add_signal_handler(signum, cancel)
    print(f"following the document stream at {address} (Ctrl-C ends)", file=sys.stderr,
          flush=True)
    try:
        dispatcher.start()
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        if not dispatcher.closed:
            dispatcher.stop()
    print("stopped following", file=sys.stderr, flush=True)
    return 0
