"""``tcstation web``: the operator's page, the station, the queue and the running ramp in a browser.

One small ASGI application (:func:`tcstation.web.app.create_app`, Starlette served by
uvicorn) that only reads what the field's own services publish and pushes it to every
open page once or twice a second with Server-Sent Events:

* the station now, over Channel Access (:class:`tcstation.web.sources.StationMonitor`,
  pyepics monitors, as the watchdog reads the station without a plan);
* the running plan, from the live document stream (bluesky's 0MQ ``RemoteDispatcher`` on
  the stream proxy, :class:`tcstation.web.sources.LiveRun`, with the live Tc table of
  :class:`tcstation.analysis.live.LiveTransitions`);
* the queue, through the RE manager's own API (bluesky-queueserver-api,
  :class:`tcstation.web.sources.QueueMonitor`);
* recent runs and their Tc tables from Tiled (:class:`tcstation.web.sources.RecentRuns`);
* the sample ledger of the data directory the sessions append to
  (:class:`tcstation.web.sources.LedgerView` over :class:`tcstation.ledger.SampleLedger`):
  every sample, a sample's history with flagged runs, and the mounted sample's warm-time
  tolerance the station's warm time is held against.

Reading needs no key on loopback; any queue action needs the page's API key, and serving
beyond loopback needs ``--allow-remote`` and a key (then reading needs the key too).
"""
