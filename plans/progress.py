"""Progress of ramps and of the protocol in the terminal, with an ETA.

:class:`RampProgress` is a document callback: a run whose start document has
``ramp`` metadata (start, stop, rate) gets a bar over its temperature span,
advanced by the hinted temperature of each event; its ETA comes from the
progress made so far. A protocol step shows "step i/n: name" in front. The line
also shows the spacing each curve is getting (the last temperature step of one
bias's curve, averaged over the curves) next to what the plan expected.
Quiet (prints nothing) when not attached to a terminal or inside the
queueserver's worker.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm


def running_in_queueserver() -> bool:
    try:
        from bluesky_queueserver import is_re_worker_active
    except ImportError:
        return False
    return bool(is_re_worker_active())


class RampProgress:
    """A bluesky document callback that shows a progress bar for each ramp.

    Parameters
    ----------
    stream : file-like, optional
        Where the bar goes (standard error by default).
    quiet : bool, optional
        Show nothing; by default quiet when ``stream`` is not a terminal or in
        the queueserver.
    """

    def __init__(self, stream: TextIO | None = None, quiet: bool | None = None):
        self.stream = stream or sys.stderr
        if quiet is None:
            quiet = running_in_queueserver() or not getattr(self.stream, "isatty", bool)()
        self.quiet = quiet
        self.bar: tqdm | None = None
        self.span: tuple[float, float] | None = None
        self.temperature_field: str | None = None
        self.descriptors: set[str] = set()
        self.reached = 0.0
        self.bias_field: str | None = None
        self.expected_spacing: float | None = None
        self.last_by_curve: dict[float, float] = {}
        self.steps: dict[float, float] = {}

    def __call__(self, name: str, document: dict) -> None:
        handler = getattr(self, name, None)
        if handler is not None:
            handler(document)

    def start(self, document: dict) -> None:
        self.close()
        ramp = document.get("ramp")
        if not ramp or "start" not in ramp or "stop" not in ramp:
            return
        dimensions = document.get("hints", {}).get("dimensions", [])
        self.temperature_field = dimensions[0][0][0] if dimensions else None
        self.span = (float(ramp["start"]), float(ramp["stop"]))
        self.bias_field = document.get("fields", {}).get("bias")
        expected = document.get("expected_spacing") or {}
        self.expected_spacing = expected.get("spacing")
        self.last_by_curve, self.steps = {}, {}
        label = document.get("plan_name", "ramp")
        if "protocol_step" in document:
            label = (f"step {document['protocol_step']}/{document['protocol_steps']}: "
                     f"{document.get('protocol_step_name', label)}")
        self.reached = 0.0
        if not self.quiet:
            total = round(self.span[1] - self.span[0], 2)
            self.bar = tqdm(total=total, desc=label, unit="K", file=self.stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} K "
                            "[{elapsed}<{remaining}]{postfix}")

    def descriptor(self, document: dict) -> None:
        if document.get("name") == "primary":
            self.descriptors.add(document["uid"])

    def event(self, document: dict) -> None:
        if self.span is None or document.get("descriptor") not in self.descriptors:
            return
        temperature = document["data"].get(self.temperature_field)
        if temperature is None:
            return
        start, stop = self.span
        self._record_spacing(document["data"], float(temperature))
        reached = min(max(float(temperature) - start, 0.0), stop - start)
        if reached > self.reached:
            if self.bar is not None:
                self.bar.update(reached - self.reached)
                self.bar.set_postfix_str(self.postfix(float(temperature)), refresh=False)
            self.reached = reached

    @property
    def achieved_spacing(self) -> float | None:
        """K between the last two points of a curve, averaged over the curves."""
        if not self.steps:
            return None
        return sum(self.steps.values()) / len(self.steps)

    def postfix(self, temperature: float) -> str:
        text = f"T = {temperature:.2f} K"
        achieved = self.achieved_spacing
        if achieved is not None:
            text += f", {achieved:.2f} K/point"
            if self.expected_spacing is not None:
                text += f" (expected {float(self.expected_spacing):.2f})"
        return text

    def _record_spacing(self, data: dict, temperature: float) -> None:
        bias = data.get(self.bias_field) if self.bias_field else 0.0
        try:
            curve = round(float(bias), 3)
        except (TypeError, ValueError):
            return
        previous = self.last_by_curve.get(curve)
        if previous is not None:
            self.steps[curve] = abs(temperature - previous)
        self.last_by_curve[curve] = temperature

    def stop(self, document: dict) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None
        self.span = None
