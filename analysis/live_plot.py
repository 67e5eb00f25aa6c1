"""Live curves of a ramp: the signal against the sample temperature, one line per bias.

:class:`LiveCurves` is a bluesky document callback for the IPython session. A
run whose start document names its ``fields`` (temperature, signal and, for
transport, bias: every ramp of :mod:`tcstation.plans.ramps` does) gets a figure; each
event adds its point to the line of its bias (rounded to the mA), so one
interleaved ramp draws four curves at once. Other runs are ignored. With a Qt
backend the drawing is moved to the main thread (bluesky's ``QtAwareCallback``).
"""

from __future__ import annotations

import time

from bluesky.callbacks.mpl_plotting import QtAwareCallback

SIGNAL_LABELS = {"transport": "dU/dI (Ohm)", "susceptibility": "4 pi chi'"}
BIAS_DECIMALS = 3
"""Biases are grouped to the mA, the source's setting resolution in the plans."""


class LiveCurves(QtAwareCallback):
    """Plot each ramp's signal against temperature as it is measured.

    Parameters
    ----------
    redraw_interval : float
        Seconds between redraws at most (the figure is always drawn at the run's end).
    figure_factory : callable, optional
        Returns a new matplotlib figure (default ``matplotlib.pyplot.figure``).
    """

    def __init__(self, redraw_interval: float = 0.5, figure_factory=None, **kwargs):
        super().__init__(**kwargs)
        self.redraw_interval = redraw_interval
        self.figure_factory = figure_factory
        self.figure = None
        self.axes = None
        self.lines: dict[float | None, object] = {}
        self.fields: dict[str, str] = {}
        self.primary: set[str] = set()
        self.last_draw = 0.0

    def start(self, doc: dict) -> None:
        self.figure, self.axes, self.lines, self.primary = None, None, {}, set()
        fields = doc.get("fields") or {}
        if "temperature" not in fields or "signal" not in fields:
            self.fields = {}
            return
        self.fields = dict(fields)
        factory = self.figure_factory
        if factory is None:
            import matplotlib.pyplot as plt

            factory = plt.figure
        self.figure = factory()
        self.axes = self.figure.add_subplot()
        sample = doc.get("sample", {})
        title = f"{doc.get('plan_name', 'run')} {doc['uid'][:8]}"
        if sample.get("name"):
            title += f": {sample['name']}, {sample.get('contacts', '')} contacts"
        self.axes.set_title(title)
        self.axes.set_xlabel("sample temperature (K)")
        self.axes.set_ylabel(SIGNAL_LABELS.get(doc.get("measurement"), self.fields["signal"]))

    def descriptor(self, doc: dict) -> None:
        if doc.get("name") == "primary":
            self.primary.add(doc["uid"])

    def event(self, doc: dict) -> None:
        if self.axes is None or doc.get("descriptor") not in self.primary:
            return
        data = doc["data"]
        temperature = data.get(self.fields["temperature"])
        signal = data.get(self.fields["signal"])
        if temperature is None or signal is None:
            return
        bias_field = self.fields.get("bias")
        bias = round(float(data[bias_field]), BIAS_DECIMALS) if bias_field in data else None
        line = self.lines.get(bias)
        if line is None:
            label = f"{bias * 1e3:.0f} mA" if bias is not None else None
            (line,) = self.axes.plot([], [], marker=".", markersize=3, label=label)
            self.lines[bias] = line
            if label is not None:
                self.axes.legend(loc="best")
        xs, ys = line.get_data()
        line.set_data([*xs, float(temperature)], [*ys, float(signal)])
        now = time.monotonic()
        if now - self.last_draw >= self.redraw_interval:
            self.redraw()
            self.last_draw = now

    def stop(self, doc: dict) -> None:
        if self.axes is not None:
            self.redraw()

    def redraw(self) -> None:
        self.axes.relim()
        self.axes.autoscale_view()
        self.figure.canvas.draw_idle()
        flush = getattr(self.figure.canvas, "flush_events", None)
        if flush is not None:
            flush()


NON_INTERACTIVE_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template",
                            "module://matplotlib_inline.backend_inline"}


def interactive_backend() -> bool:
    """Whether matplotlib draws on a screen as the run goes (not Agg, PDF, inline...)."""
    import matplotlib

    return matplotlib.get_backend().lower() not in NON_INTERACTIVE_BACKENDS
