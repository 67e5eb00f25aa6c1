"""Each instrument's contract, written once: the PVs it serves and what they accept.

One module per instrument kind (:mod:`tcstation.instruments.lakeshore336`,
:mod:`tcstation.instruments.sr830`, :mod:`tcstation.instruments.sourcemeter`,
:mod:`tcstation.instruments.environment`, :mod:`tcstation.instruments.simulation`), each with its
constants (ranges, enum strings) and ``SIGNALS``, a tuple of
:class:`tcstation.instruments.signal.Signal`. Plain data: it imports neither caproto nor
ophyd nor anything else of the project. The simulated IOC (``ioc_sim``) serves
it, the devices (``devices``) take their ranges and choices from it, and
``tcstation pv-table`` writes ``docs/pv-table.md`` from it.

Limits that are policy rather than the instrument's (the plans' ramp rates,
the sample's safe temperature) live in ``plans/``.
"""
