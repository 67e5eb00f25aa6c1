"""Live curves: one line per bias, points in order, other runs ignored (Agg, no screen)."""

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from tcstation.analysis.live_plot import LiveCurves, interactive_backend  # noqa: E402

FIELDS = {"temperature": "transport_sample_temperature", "signal": "transport_dudi",
          "bias": "bias_source_measured_current"}


def documents(fields, points):
    yield "start", {"uid": "a" * 32, "plan_name": "transport_ramp", "measurement": "transport",
                    "fields": fields, "sample": {"name": "mg_mgo", "contacts": "surface"}}
    yield "descriptor", {"uid": "d1", "name": "primary"}
    yield "descriptor", {"uid": "d2", "name": "baseline"}
    for temperature, bias, signal in points:
        yield "event", {"descriptor": "d1", "data": {FIELDS["temperature"]: temperature,
                                                     FIELDS["bias"]: bias,
                                                     FIELDS["signal"]: signal}}
    yield "event", {"descriptor": "d2", "data": {FIELDS["temperature"]: 99.0,
                                                 FIELDS["bias"]: 0.0, FIELDS["signal"]: 9.0}}
    yield "stop", {"uid": "s", "run_start": "a" * 32}


def test_each_bias_gets_its_own_line_in_order():
    figures = []
    callback = LiveCurves(redraw_interval=0.0, use_teleporter=False,
                          figure_factory=lambda: figures.append(Figure()) or figures[-1])
    points = [(50.0, 0.0, 1.0), (50.1, 0.2001, 2.0), (50.2, 0.0, 1.5), (50.3, 0.19995, 2.5)]
    for name, doc in documents(FIELDS, points):
        callback(name, doc)
    assert len(figures) == 1
    lines = {line.get_label(): line.get_data() for line in figures[0].axes[0].lines}
    assert sorted(lines) == ["0 mA", "200 mA"]
    assert list(lines["0 mA"][0]) == [50.0, 50.2] and list(lines["0 mA"][1]) == [1.0, 1.5]
    assert list(lines["200 mA"][0]) == [50.1, 50.3]
    assert figures[0].axes[0].get_xlabel() == "sample temperature (K)"


def test_runs_without_fields_make_no_figure():
    figures = []
    callback = LiveCurves(use_teleporter=False,
                          figure_factory=lambda: figures.append(Figure()) or figures[-1])
    for name, doc in documents({}, [(50.0, 0.0, 1.0)]):
        callback(name, doc)
    assert figures == []


def test_agg_is_not_interactive():
    assert not interactive_backend()
