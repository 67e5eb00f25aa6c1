"""The operator page's ASGI application: one HTML page, a JSON API and a Server-Sent Events feed.

:func:`create_app` takes the sources (anything with the methods of
:mod:`tcstation.web.sources`' classes, or None for a part the station does not have),
so the logic is tested with fakes and the command line wires the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tcstation.ledger import LedgerError
from tcstation.web.sources import QUEUE_ACTIONS, QueueActionError

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_KEY_HEADER = "X-API-Key"
DEFAULT_RATE = 2.0
"""Updates a second pushed to every page."""
RATE_RANGE = (0.1, 20.0)
RECENT_RUNS = 10
EXPORT_FORMATS = {"csv": ".csv", "hdf5": ".h5"}
NO_LEDGER = "no sample ledger on this page (started with --no-ledger)"


class WebConfigError(ValueError):
    """A setting of ``tcstation web`` that cannot be served: the message says what is allowed."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, allow_remote: bool, api_key: str | None) -> None:
    """Refuse to serve beyond loopback without ``--allow-remote`` and an API key.

    Raises
    ------
    WebConfigError
        Naming the host and what it needs.
    """
    if is_loopback(host):
        return
    if not allow_remote:
        raise WebConfigError(f"--host {host} is beyond loopback: the page shows the station to "
                             "anyone who reaches it; add --allow-remote and an API key "
                             "(--api-key-file or TCSTATION_WEB_API_KEY), or serve on 127.0.0.1")
    if not api_key:
        raise WebConfigError(f"--host {host} with --allow-remote needs an API key "
                             "(--api-key-file FILE or TCSTATION_WEB_API_KEY): off loopback "
                             "every request must carry it")


@dataclass
class Sources:
    """What the page reads; None where the station does not have it."""

    station: Any = None
    live: Any = None
    queue: Any = None
    runs: Any = None
    ledger: Any = None
    channel_renewal: Any = None


class Broadcaster:
    """One snapshot every ``1/rate`` s, serialized once and handed to every page client."""

    def __init__(self, sources: Sources, rate: float):
        self.sources = sources
        self.period = 1.0 / rate
        self.sequence = 0
        self.message = ""
        self._points_sent = 0
        self._run_uid = None
        self._changed = asyncio.Condition()
        self.clients = 0

    def build(self, advance: bool = True) -> dict:
        """The update: station, queue, and the live run's points new since the last update
        (``advance=False``: the whole run, and the next update still sends what is new)."""
        update: dict[str, Any] = {"time": time.time(), "sequence": self.sequence + 1}
        for name in ("station", "queue"):
            source = getattr(self.sources, name)
            try:
                update[name] = source.snapshot() if source is not None else None
            except Exception as error:  # a source failing must not stop the page
                logger.exception("the %s source failed", name)
                update[name] = {"error": str(error)}
        live = self.sources.live
        if live is not None and not advance:
            update["run"] = live.snapshot(since=0)
        elif live is not None:
            probe = live.snapshot(since=1 << 60)
            if probe.get("uid") != self._run_uid:
                self._run_uid, self._points_sent = probe.get("uid"), 0
            run = live.snapshot(since=self._points_sent)
            self._points_sent = run.get("count", 0)
            update["run"] = run
        else:
            update["run"] = None
        return update

    async def publish_once(self) -> None:
        update = await asyncio.to_thread(self.build)
        message = json.dumps(update, allow_nan=False, default=str)
        async with self._changed:
            self.sequence += 1
            self.message = message
            self._changed.notify_all()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.publish_once()
            except Exception:
                logger.exception("building the page's update failed")
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - started)))

    async def next_message(self, after: int) -> tuple[int, str]:
        async with self._changed:
            await self._changed.wait_for(lambda: self.sequence > after)
            return self.sequence, self.message


def _request_key(request: Request) -> str:
    header = request.headers.get(API_KEY_HEADER, "")
    if header:
        return header
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("apikey "):
        return authorization[7:].strip()
    return request.query_params.get("api_key", "")


def create_app(sources: Sources, *, api_key: str | None = None, rate: float = DEFAULT_RATE,
               broadcast: bool = True) -> Starlette:
    """The page's application.

    Parameters
    ----------
    sources : Sources
        Station, live run, queue, recent runs and ledger sources.
    api_key : str, optional
        The key queue actions need (header ``X-API-Key``, ``Authorization: Apikey KEY`` or
        ``?api_key=``); off loopback every request needs it. None: actions are refused.
    rate : float
        Updates a second pushed to each page (0.1 to 20).
    broadcast : bool
        Run the update loop (tests of the JSON API may switch it off).
    """
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise WebConfigError(f"update rate {rate:g}/s is outside {RATE_RANGE[0]:g} to "
                             f"{RATE_RANGE[1]:g} updates a second")
    broadcaster = Broadcaster(sources, rate)

    def key_matches(request: Request) -> bool:
        return bool(api_key) and hmac.compare_digest(_request_key(request), api_key)

    def from_loopback(request: Request) -> bool:
        return request.client is None or is_loopback(request.client.host)

    def refused_read(request: Request) -> Response | None:
        if from_loopback(request) or key_matches(request):
            return None
        return JSONResponse({"error": "reading from beyond loopback needs the page's API key "
                                      f"(header {API_KEY_HEADER} or ?api_key=)"}, status_code=401)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def state(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        update = await asyncio.to_thread(broadcaster.build, False)
        update["actions_enabled"] = bool(api_key)
        update["ledger_available"] = sources.ledger is not None
        return JSONResponse(json.loads(json.dumps(update, default=str)))

    async def run_points(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        if sources.live is None:
            return JSONResponse({"uid": None})
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return JSONResponse({"error": "since must be a whole number of points"},
                                status_code=400)
        return JSONResponse(sources.live.snapshot(since=since))

    async def events(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        try:
            limit = int(request.query_params.get("limit", "0"))
        except ValueError:
            return JSONResponse({"error": "limit must be a whole number of updates"},
                                status_code=400)

        async def stream():
            broadcaster.clients += 1
            try:
                sent, seen = 0, broadcaster.sequence - 1 if broadcaster.message else 0
                yield "retry: 2000\n\n"
                while not limit or sent < limit:
                    seen, message = await broadcaster.next_message(seen)
                    yield f"data: {message}\n\n"
                    sent += 1
            finally:
                broadcaster.clients -= 1

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def runs(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        if sources.runs is None:
            return JSONResponse({"runs": [], "error": "no Tiled catalog configured"})
        try:
            listed = await asyncio.to_thread(sources.runs.recent, RECENT_RUNS)
        except Exception as error:
            return JSONResponse({"runs": [], "error": f"Tiled did not answer: {error}"})
        return JSONResponse({"runs": listed, "error": ""})

    async def export(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        from tcstation.report import export_run
        from tcstation.storage.lookup import RunLookupError

        uid = request.path_params["uid"]
        file_format = request.query_params.get("format", "csv")
        if file_format not in EXPORT_FORMATS:
            return JSONResponse({"error": f"format {file_format!r} is not one of "
                                          f"{', '.join(EXPORT_FORMATS)}"}, status_code=400)
        if sources.runs is None:
            return JSONResponse({"error": "no Tiled catalog configured"}, status_code=404)
        try:
            run = await asyncio.to_thread(sources.runs.run, uid)
        except RunLookupError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        directory = tempfile.TemporaryDirectory(prefix="tcstation-web-export-")
        output = Path(directory.name) / (run.metadata["start"]["uid"][:8]
                                         + EXPORT_FORMATS[file_format])
        try:
            paths = await asyncio.to_thread(export_run, run, output, file_format)
        except ValueError as error:
            directory.cleanup()
            return JSONResponse({"error": str(error)}, status_code=422)
        return FileResponse(paths[0], filename=paths[0].name,
                            background=BackgroundTask(directory.cleanup))

    async def figure(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        from tcstation.analysis.live import run_transitions
        from tcstation.report import figures, read_run
        from tcstation.storage.lookup import RunLookupError

        if sources.runs is None:
            return JSONResponse({"error": "no Tiled catalog configured"}, status_code=404)
        try:
            run = await asyncio.to_thread(sources.runs.run, request.path_params["uid"])
        except RunLookupError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        directory = tempfile.TemporaryDirectory(prefix="tcstation-web-figure-")

        def draw() -> list[Path]:
            data = read_run(run)
            if not data.columns:
                return []
            return figures([data], [run_transitions(data.measurement, data.columns)],
                           Path(directory.name))

        paths = await asyncio.to_thread(draw)
        if not paths:
            directory.cleanup()
            return JSONResponse({"error": f"run {request.path_params['uid']} has no curve to "
                                          "draw (no analysis fields)"}, status_code=404)
        return FileResponse(paths[0], media_type="image/png",
                            background=BackgroundTask(directory.cleanup))

    async def samples(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        ledger = sources.ledger
        if ledger is None:
            return JSONResponse({"available": False, "path": None, "samples": [],
                                 "error": NO_LEDGER})
        try:
            listed = await asyncio.to_thread(ledger.samples)
        except OSError as error:
            return JSONResponse({"available": True, "path": str(ledger.path), "samples": [],
                                 "error": f"the sample ledger did not read: {error}"})
        return JSONResponse(json.loads(json.dumps(
            {"available": True, "path": str(ledger.path), "samples": listed, "error": ""},
            default=str)))

    async def sample_history(request: Request) -> Response:
        if (refused := refused_read(request)) is not None:
            return refused
        ledger = sources.ledger
        sample_id = request.path_params["sample_id"]
        if ledger is None:
            return JSONResponse({"error": NO_LEDGER}, status_code=404)
        try:
            history = await asyncio.to_thread(ledger.history, sample_id)
        except LedgerError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except OSError as error:
            return JSONResponse({"error": f"the sample ledger did not read: {error}"},
                                status_code=503)
        return JSONResponse(json.loads(json.dumps(
            {"sample_id": sample_id, "history": history}, default=str)))

    async def queue_action(request: Request) -> Response:
        action = request.path_params["action"]
        if not api_key:
            return JSONResponse({"error": "queue actions are off: this page was started "
                                          "without an API key (TCSTATION_WEB_API_KEY or "
                                          "--api-key-file)"}, status_code=403)
        if not key_matches(request):
            return JSONResponse({"error": f"queue action {action!r} refused: it needs the "
                                          f"page's API key (header {API_KEY_HEADER})"},
                                status_code=403)
        if action not in QUEUE_ACTIONS:
            return JSONResponse({"error": f"unknown queue action {action!r}; the actions "
                                          f"are {', '.join(QUEUE_ACTIONS)}"}, status_code=404)
        if sources.queue is None:
            return JSONResponse({"error": "no RE manager configured"}, status_code=503)
        try:
            payload = await request.json() if await request.body() else {}
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        try:
            result = await asyncio.to_thread(sources.queue.act, action, payload)
        except QueueActionError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        logger.info("queue action %s %s by %s", action, payload, request.client)
        return JSONResponse({"ok": True, "result": result})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(broadcaster.run()) if broadcast else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(routes=[
        Route("/", index),
        Route("/api/state", state),
        Route("/api/events", events),
        Route("/api/run", run_points),
        Route("/api/runs", runs),
        Route("/api/runs/{uid}/export", export),
        Route("/api/runs/{uid}/figure", figure),
        Route("/api/samples", samples),
        Route("/api/samples/{sample_id}", sample_history),
        Route("/api/queue/{action}", queue_action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ], lifespan=lifespan)
    app.state.broadcaster = broadcaster
    app.state.sources = sources
    return app
