"""Talking to Tiled: connect, ask whether it answers, write a whole run, check a run is complete.

These are the pieces shared by the live writer (:mod:`tcstation.storage.writer`)
and by replay (:mod:`tcstation.storage.replay`). The writer is
``bluesky_tiled_plugins.TiledWriter``: bluesky 1.15 still ships an older copy
as ``bluesky.callbacks.tiled_writer``, but the plugin package is where it is
maintained (it has the retry on append, the stream-closing and the
``_ConditionalBackup`` of the current releases).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from bluesky_tiled_plugins import TiledWriter
from tiled.client import from_uri
from tiled.client.container import DEFAULT_STRUCTURE_CLIENT_DISPATCH, Container
from tiled.utils import OneShotCachedMap

logger = logging.getLogger(__name__)

# One append per this many events per stream when a whole run is written at once
# (replay, deferred runs). Above the longest run we expect: one request per stream.
BULK_BATCH_SIZE = 100_000


def healthz_url(uri: str) -> str:
    """The ``/healthz`` address of the Tiled server behind ``uri`` (API path stripped)."""
    parsed = urlparse(uri)
    path = parsed.path.rstrip("/")
    if path.endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    return f"{parsed.scheme}://{parsed.netloc}{path}/healthz"


def is_loopback(uri: str) -> bool:
    return urlparse(uri).hostname in ("127.0.0.1", "localhost", "::1")


def tiled_answers(uri: str, timeout: float = 2.0) -> bool:
    """Whether the Tiled server at ``uri`` answers its health check within ``timeout``.

    One request, no retries: this is how the writer decides, at the start of a
    run, whether to write it live or keep it in the spool only. (The Tiled
    client itself retries a refused connection for up to 45 s.)
    """
    try:
        response = httpx.get(healthz_url(uri), timeout=timeout,
                             trust_env=not is_loopback(uri))
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def connect(uri: str, api_key: str) -> Container:
    """A Tiled client for ``uri`` authenticated with ``api_key``.

    Proxy variables from the environment are ignored for a loopback server (a
    corporate ``HTTP_PROXY`` must not capture ``127.0.0.1``).
    """
    return from_uri(uri, api_key=api_key, trust_env=not is_loopback(uri))


class TiledRunState(enum.Enum):
    """How much of a run is in Tiled, compared with the documents of its spool."""

    ABSENT = "absent"
    PARTIAL = "partial"
    COMPLETE = "complete"


@dataclass(frozen=True)
class RunContents:
    """What a complete run must hold: its stop document and every event, once.

    Parameters
    ----------
    uid
        The run's start uid.
    seq_nums_by_stream
        For each stream with events, the sorted ``seq_num`` of its events.
    has_stop
        Whether the documents include the stop document.
    """

    uid: str
    seq_nums_by_stream: Mapping[str, tuple[int, ...]]
    has_stop: bool

    @classmethod
    def from_documents(cls, documents: Iterable[tuple[str, dict[str, Any]]]) -> RunContents:
        uid = ""
        stream_by_descriptor: dict[str, str] = {}
        seq_nums: dict[str, list[int]] = {}
        has_stop = False
        for name, doc in documents:
            if name == "start":
                uid = doc["uid"]
            elif name == "descriptor":
                stream_by_descriptor[doc["uid"]] = doc["name"]
            elif name == "event":
                seq_nums.setdefault(stream_by_descriptor[doc["descriptor"]], []).append(
                    doc["seq_num"])
            elif name == "event_page":
                seq_nums.setdefault(stream_by_descriptor[doc["descriptor"]], []).extend(
                    doc["seq_num"])
            elif name == "stop":
                has_stop = True
        return cls(uid, {stream: tuple(sorted(values)) for stream, values in seq_nums.items()},
                   has_stop)

    @property
    def event_count(self) -> int:
        return sum(len(values) for values in self.seq_nums_by_stream.values())


BLUESKY_SPECS = ("CatalogOfBlueskyRuns", "BlueskyRun", "BlueskyEventStream")


def plain_view(client: Container) -> Container:
    """``client``'s node with bluesky's client classes left out: runs and streams as plain
    containers, tables as tables.

    The run-completeness checks read the nodes as they are stored. Which class
    bluesky-tiled-plugins hands out for a run is process-wide state: reading one run through
    ``.v1`` (databroker's Header takes ``run.v2``) switches every later ``c[uid]`` of the
    process to ``BlueskyRunV2`` (its ``copy.copy`` of the client registry shares the mapping),
    whose streams hold no ``internal`` table.
    """
    default = DEFAULT_STRUCTURE_CLIENT_DISPATCH["numpy"]
    registry = OneShotCachedMap({key: (lambda key=key: default[key]) for key in default})
    for spec in BLUESKY_SPECS:
        registry.set(spec, lambda: Container)
    return Container(client.context, item=client.item, structure_clients=registry)


def stored_seq_nums(client: Container, uid: str, stream: str) -> tuple[int, ...] | None:
    """The sorted ``seq_num`` column of a stream's event table in Tiled; None if there is none."""
    run = plain_view(client)[uid]
    if stream not in run:
        return None
    stream_node = run[stream]
    stream_container = getattr(stream_node, "base", stream_node)
    if "internal" not in stream_container:
        return None
    table = stream_container["internal"].read(["seq_num"])
    return tuple(sorted(int(value) for value in table["seq_num"]))


def tiled_run_state(client: Container, contents: RunContents) -> TiledRunState:
    """Compare what Tiled holds of a run with what it must hold.

    COMPLETE means: the run's container exists, its metadata has the stop
    document (TiledWriter writes it last, after the last events), and for every
    stream the stored ``seq_num`` are exactly the spooled ones: none missing,
    none twice. Anything less is PARTIAL.
    """
    client = plain_view(client)
    if contents.uid not in client:
        return TiledRunState.ABSENT
    metadata = client[contents.uid].metadata
    if contents.has_stop and "stop" not in metadata:
        return TiledRunState.PARTIAL
    for stream, expected in contents.seq_nums_by_stream.items():
        if stored_seq_nums(client, contents.uid, stream) != expected:
            return TiledRunState.PARTIAL
    return TiledRunState.COMPLETE


def run_state_detail(client: Container, contents: RunContents) -> str:
    """What Tiled lacks of a run, for a log line: '' when it holds the run complete."""
    try:
        client = plain_view(client)
        if contents.uid not in client:
            return "no such run"
        lacking = []
        if contents.has_stop and "stop" not in client[contents.uid].metadata:
            lacking.append("no stop document")
        for stream, expected in contents.seq_nums_by_stream.items():
            stored = stored_seq_nums(client, contents.uid, stream)
            if stored != expected:
                count = 0 if stored is None else len(stored)
                lacking.append(f"{stream!r} holds {count} events "
                               f"({len(set(stored or ()))} distinct) of {len(expected)}")
        return "; ".join(lacking)
    except Exception as error:  # a diagnosis must not raise
        return f"could not look ({type(error).__name__}: {error})"


WRITE_VISIBILITY_PATIENCE = 5.0
"""Wall seconds a run just written is read again before it counts as partial (a margin for
a server that answers the last write before a read sees it; the partial runs seen in loaded
test runs turned out to be the v1 client-class switch of :func:`plain_view`)."""


def written_run_state(client: Container, contents: RunContents,
                      patience: float = WRITE_VISIBILITY_PATIENCE) -> TiledRunState:
    """:func:`tiled_run_state` of a run just written, read again until complete or ``patience``."""
    deadline = time.monotonic() + patience
    while True:
        state = tiled_run_state(client, contents)
        if state is TiledRunState.COMPLETE or time.monotonic() >= deadline:
            return state
        time.sleep(0.25)


def write_run(client: Container, documents: Iterable[tuple[str, dict[str, Any]]],
              batch_size: int = BULK_BATCH_SIZE) -> None:
    """Write one run's documents to Tiled with a fresh TiledWriter.

    The run must not exist in Tiled yet (TiledWriter creates its container and
    the server refuses an existing key with HTTP 409).
    """
    writer = TiledWriter(client, batch_size=batch_size)
    for name, doc in documents:
        writer(name, doc)


def delete_run(client: Container, uid: str) -> None:
    """Delete a run's container and everything in it, including its SQL tables."""
    plain_view(client)[uid].delete(recursive=True, external_only=False)
