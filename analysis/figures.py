"""Figures in the style of the source paper, drawn from plain curve data.

:func:`susceptibility_figure` redraws Fig. 1 (4 pi chi' and 4 pi chi'' against T, pure Mg
and Mg/MgO, two panels), :func:`dudi_figure` redraws Fig. 2 (dU/dI against T for core
contacts, surface contacts at each dc bias and the degraded sample, with the onsets against
the dc bias in a panel of their own). Curves are mappings from a legend label to arrays
(callers put the paper's curve numbers into the labels); transitions, where given, are
marked on their curves and their onsets, with standard errors, written into the legend.
The title states the measurement conditions (:class:`Conditions`). The legend sits in a
margin below the axes, so it never covers data, and panel letters are axes titles. The
``write_*`` functions save a PNG and return its path. Figures are built on
:class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot state, no display.

Every data line carries ``gid="curve:<label>"`` and every onset or loss-peak marker
``gid="onset:<label>"`` or ``gid="loss-peak:<label>"``; in the Tc panel each onset's error
bar is ``gid="tc-bias:<label>"``, so callers and tests can find them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from tcstation.analysis.transitions import Transition, kelvin_text

SusceptibilityCurve = tuple[ArrayLike, ArrayLike, ArrayLike]
"""(sample temperature in K, 4 pi chi', 4 pi chi'')."""
DudiCurve = tuple[ArrayLike, ArrayLike]
"""(sample temperature in K, dU/dI in ohm)."""

TEMPERATURE_LABEL = "Sample temperature $T$ (K)"
PLUS_MINUS = "\u00b1"
_OHM_PREFIXES = ((1.0, r"$\Omega$"), (1e-3, r"m$\Omega$"), (1e-6, r"$\mu\Omega$"),
                 (1e-9, r"n$\Omega$"))
_ONSET_STYLE = {"marker": "v", "markersize": 8, "markeredgecolor": "black",
                "linestyle": "none", "zorder": 5}
_LOSS_PEAK_STYLE = {"marker": "^", "markersize": 9, "markeredgecolor": "black",
                    "linestyle": "none", "zorder": 5}
_TC_POINT_STYLE = {"marker": "o", "markersize": 7, "markeredgecolor": "black", "capsize": 4,
                   "elinewidth": 1.5, "linestyle": "none"}
_TALK_STYLE = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11,
               "legend.fontsize": 10, "xtick.labelsize": 10, "ytick.labelsize": 10,
               "figure.titlesize": 12}
"""Sizes that stay readable on a projected slide at the figures' 150 dpi."""


def _distinct(values: float | Iterable[float] | None) -> tuple[float, ...]:
    if values is None:
        return ()
    if isinstance(values, int | float):
        values = (values,)
    finite = {float(value) for value in values if value is not None and math.isfinite(value)}
    return tuple(sorted(finite))


def _listed(values: tuple[float, ...], scale: float = 1.0) -> str:
    return ", ".join(f"{value * scale:g}" for value in values)


@dataclass(frozen=True)
class Conditions:
    """The measurement conditions a figure states in its title.

    Each attribute takes one value, several (the distinct values of the runs drawn, shown
    as a list) or None; what is left empty is not stated. Values are kept sorted and
    distinct.

    Attributes
    ----------
    frequency : tuple of float
        Hz, the ac drive (susceptometer) or lock-in reference (dU/dI) frequency.
    field : tuple of float
        Oe, the ac field amplitude ``H_ac``.
    excitation : tuple of float
        A, the ac current amplitude ``I_ac``.
    bias : tuple of float
        A, the dc bias currents ``I_dc``.
    rate : tuple of float
        K/min, the heating rate of the ramps.
    """

    frequency: tuple[float, ...] = ()
    field: tuple[float, ...] = ()
    excitation: tuple[float, ...] = ()
    bias: tuple[float, ...] = ()
    rate: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for attribute in fields(self):
            object.__setattr__(self, attribute.name, _distinct(getattr(self, attribute.name)))

    def text(self) -> str:
        """One line for a caption, e.g. ``f = 1550 Hz, H_ac = 0.2 Oe, heating 1.5 K/min``."""
        parts = []
        if self.excitation:
            parts.append(f"$I_{{ac}}$ = {_listed(self.excitation, 1e3)} mA")
        if self.field:
            parts.append(f"$H_{{ac}}$ = {_listed(self.field)} Oe")
        if self.frequency:
            parts.append(f"$f$ = {_listed(self.frequency)} Hz")
        if self.bias:
            parts.append(f"$I_{{dc}}$ = {_listed(self.bias, 1e3)} mA")
        if self.rate:
            parts.append(f"heating at {_listed(self.rate)} K/min")
        return ", ".join(parts)


def _sorted_curve(temperature: ArrayLike, *signals: ArrayLike) -> list[np.ndarray]:
    temperature = np.asarray(temperature, dtype=float).ravel()
    arrays = [np.asarray(signal, dtype=float).ravel() for signal in signals]
    for array in arrays:
        if array.shape != temperature.shape:
            raise ValueError(f"a curve's arrays must have one length, got {temperature.size} "
                             f"temperatures and {array.size} values")
    order = np.argsort(temperature, kind="stable")
    return [temperature[order], *(array[order] for array in arrays)]


def _value_at(temperature: np.ndarray, signal: np.ndarray, at: float) -> float:
    finite = np.isfinite(signal)
    return float(np.interp(at, temperature[finite], signal[finite]))


def ohm_scale(values: ArrayLike) -> tuple[float, str]:
    """SI prefix for resistances: (factor to divide by, unit label), e.g. (1e-3, 'mOhm').

    The prefix makes the largest magnitude read between 1 and 1000.
    """
    magnitudes = np.abs(np.asarray(values, dtype=float))
    largest = float(np.nanmax(magnitudes)) if np.isfinite(magnitudes).any() else 1.0
    for factor, unit in _OHM_PREFIXES:
        if largest >= factor:
            return factor, unit
    return _OHM_PREFIXES[-1]


def onset_text(transition: Transition) -> str:
    """``onset 54.103 ± 0.021 K``, or ``no transition``."""
    if not transition.found:
        return "no transition"
    return f"onset {kelvin_text(transition.onset, transition.onset_error, plus_minus=PLUS_MINUS)}"


def _legend_label(label: str, transition: Transition | None) -> str:
    return label if transition is None else f"{label}; {onset_text(transition)}"


def _mark_onset(axes: Axes, label: str, color: str, temperature: np.ndarray,
                signal: np.ndarray, transition: Transition, scale: float = 1.0) -> None:
    axes.plot([transition.onset], [_value_at(temperature, signal, transition.onset) / scale],
              color=color, gid=f"onset:{label}", label="_nolegend_", **_ONSET_STYLE)


def _marker_key(style: dict, text: str) -> tuple[Line2D, str]:
    """A legend entry explaining a marker, drawn with no data."""
    return Line2D([], [], color="white", **style), text


def _caption(title: str | None, conditions: Conditions | None, notes: Sequence[str]) -> str:
    lines = [title] if title else []
    if conditions is not None and conditions.text():
        lines.append(conditions.text())
    lines.extend(notes)
    return "\n".join(lines)


def _finish(figure: Figure, handles: list, labels: list[str], title: str | None,
            conditions: Conditions | None, notes: Sequence[str]) -> Figure:
    caption = _caption(title, conditions, notes)
    if caption:
        figure.suptitle(caption)
    # "outside" places the legend in a margin the constrained layout keeps free of axes;
    # two columns where they fit the figure's width, else one.
    for columns in (2, 1) if len(labels) > 3 else (1,):
        legend = figure.legend(handles, labels, loc="outside lower center", ncols=columns,
                               frameon=False)
        figure.draw_without_rendering()
        extent = legend.get_window_extent()
        if columns == 1 or (extent.x0 >= figure.bbox.x0 and extent.x1 <= figure.bbox.x1):
            break
        legend.remove()
    return figure


def _new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def susceptibility_figure(curves: Mapping[str, SusceptibilityCurve],
                          transitions: Mapping[str, Transition] | None = None, *,
                          dashed: Collection[str] = (), conditions: Conditions | None = None,
                          title: str | None = None, notes: Sequence[str] = ()) -> Figure:
    """Fig. 1: (a) 4 pi chi' and (b) 4 pi chi'' against temperature.

    Parameters
    ----------
    curves : mapping of str to (T, chi_real, chi_imag)
        Legend label to one ramp: sample temperature (K), 4 pi chi', 4 pi chi''; any order.
        The paper's curves are "1: pure Mg" and "2: Mg/MgO".
    transitions : mapping of str to Transition, optional
        chi' transitions by label: each legend label states the onset with its error (or
        that there is none); found ones get an onset marker on chi' and, where the loss
        peak was found, a marker on chi'' and its temperature in the legend.
    dashed : collection of str
        Labels drawn dashed on top of the others (a curve expected to lie on another,
        such as the degraded sample on pure Mg).
    conditions : Conditions, optional
        Stated under the title.
    title : str, optional
        Figure title.
    notes : sequence of str
        Further caption lines.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, (a) on top; one line per curve on each; the legend below them.
    """
    transitions = transitions or {}
    with matplotlib.rc_context(_TALK_STYLE):
        figure = _new_figure((7.4, 9.0))
        real_axes, imag_axes = figure.subplots(2, 1, sharex=True)
        handles, labels = [], []
        any_onset = any_peak = False
        for (label, (temperature, chi_real, chi_imag)), color in zip(
                curves.items(), _colors(len(curves)), strict=True):
            temperature, chi_real, chi_imag = _sorted_curve(temperature, chi_real, chi_imag)
            style = ({"linestyle": "--", "linewidth": 1.6, "zorder": 4} if label in dashed
                     else {"linewidth": 1.3})
            line, = real_axes.plot(temperature, chi_real, color=color, gid=f"curve:{label}",
                                   **style)
            imag_axes.plot(temperature, chi_imag, color=color, gid=f"curve:{label}", **style)
            transition = transitions.get(label)
            legend_label = _legend_label(label, transition)
            if transition is not None and transition.found:
                _mark_onset(real_axes, label, color, temperature, chi_real, transition)
                any_onset = True
                peak = transition.loss_peak_temperature
                if math.isfinite(peak):
                    imag_axes.plot([peak], [_value_at(temperature, chi_imag, peak)],
                                   color=color, gid=f"loss-peak:{label}", label="_nolegend_",
                                   **_LOSS_PEAK_STYLE)
                    legend_label += f", $4\\pi\\chi''$ maximum {peak:.1f} K"
                    any_peak = True
            handles.append(line)
            labels.append(legend_label)
        if any_onset:
            fraction = next(t.onset_fraction for t in transitions.values() if t.found)
            handle, text = _marker_key(_ONSET_STYLE, f"onset: {fraction:.0%} of the drop")
            handles.append(handle)
            labels.append(text)
        if any_peak:
            handle, text = _marker_key(_LOSS_PEAK_STYLE, r"$4\pi\chi''$ maximum in the transition")
            handles.append(handle)
            labels.append(text)
        real_axes.set_ylabel(r"$4\pi\chi'$ (dimensionless)")
        imag_axes.set_ylabel(r"$4\pi\chi''$ (dimensionless)")
        imag_axes.set_xlabel(TEMPERATURE_LABEL)
        for axes, letter in ((real_axes, "(a)"), (imag_axes, "(b)")):
            axes.set_title(letter, loc="left", fontweight="bold")
            axes.grid(alpha=0.3)
        return _finish(figure, handles, labels, title, conditions, notes)


def dudi_figure(curves: Mapping[str, DudiCurve],
                transitions: Mapping[str, Transition] | None = None, *,
                lower_panel: Collection[str] = (), biases: Mapping[str, float] | None = None,
                conditions: Conditions | None = None, title: str | None = None,
                notes: Sequence[str] = ()) -> Figure:
    """Fig. 2: dU/dI against temperature, and the onsets against the dc bias.

    Parameters
    ----------
    curves : mapping of str to (T, dudi)
        Legend label to one curve: sample temperature (K) and dU/dI (ohm); any order.
        Earlier curves are drawn on top of later ones. The paper's curves are 1 (core
        contacts), 2 to 5 (surface contacts at 0, 200, 300, 400 mA) and 6 (after the
        exposure, 0 mA).
    transitions : mapping of str to Transition, optional
        dU/dI transitions by label: each legend label states the onset with its error (or
        that there is none); found ones get an onset marker.
    lower_panel : collection of str
        Labels drawn in a lower panel with their own resistance scale (the core contacts,
        a thousand times smaller than the surface curves).
    biases : mapping of str to float, optional
        dc bias (A) of the curves whose onsets go into a panel of onset against bias, with
        their standard errors as error bars (68 % intervals); curves without a found
        transition are left out of it. No panel without any.
    conditions : Conditions, optional
        Stated under the title.
    title : str, optional
        Figure title.
    notes : sequence of str
        Further caption lines.

    Returns
    -------
    matplotlib.figure.Figure
        Axes in this order: the main dU/dI panel, the lower panel if any curve is drawn
        in it, the onset-against-bias panel if any onset goes into it. The legend sits
        below them.
    """
    transitions = transitions or {}
    biases = biases or {}
    for argument, labels in (("lower_panel", lower_panel), ("biases", biases)):
        unknown = set(labels) - set(curves)
        if unknown:
            raise KeyError(f"{argument} names curves that are not given: {sorted(unknown)}")
    tc_labels = [label for label in curves if label in biases
                 and label in transitions and transitions[label].found]
    lower_labels = [label for label in curves if label in lower_panel]
    main_labels = [label for label in curves if label not in lower_panel]
    with matplotlib.rc_context(_TALK_STYLE):
        figure = _new_figure((11.0, 7.6 if lower_labels else 6.6))
        grid = figure.add_gridspec(2 if lower_labels else 1, 2 if tc_labels else 1,
                                   height_ratios=(3, 1) if lower_labels else None,
                                   width_ratios=(2.4, 1) if tc_labels else None)
        panels = {"main": figure.add_subplot(grid[0, 0])}
        if lower_labels:
            panels["lower"] = figure.add_subplot(grid[1, 0], sharex=panels["main"])
            panels["main"].tick_params(labelbottom=False)
        if tc_labels:
            panels["tc"] = figure.add_subplot(grid[:, 1])
        colors = dict(zip(curves, _colors(len(curves)), strict=True))
        entries: dict[str, tuple[Line2D, str]] = {}
        for axes, labels in ((panels["main"], main_labels), (panels.get("lower"), lower_labels)):
            if axes is None or not labels:
                continue
            sorted_curves = {label: _sorted_curve(*curves[label]) for label in labels}
            scale, unit = ohm_scale(np.concatenate([dudi for _, dudi in sorted_curves.values()]))
            for rank, (label, (temperature, dudi)) in enumerate(sorted_curves.items()):
                line, = axes.plot(temperature, dudi / scale, color=colors[label],
                                  linewidth=1.3, gid=f"curve:{label}",
                                  zorder=3 - rank / len(labels))
                transition = transitions.get(label)
                if transition is not None and transition.found:
                    _mark_onset(axes, label, colors[label], temperature, dudi, transition,
                                scale)
                entries[label] = (line, _legend_label(label, transition))
            axes.set_ylabel(f"$dU/dI$ ({unit})")
            axes.grid(alpha=0.3)
        panels["main"].set_title("(a) surface contacts" if lower_labels else "(a)",
                                 loc="left", fontweight="bold")
        if lower_labels:
            panels["lower"].set_title("(b) core contacts", loc="left", fontweight="bold")
        (panels.get("lower") or panels["main"]).set_xlabel(TEMPERATURE_LABEL)
        handles = [entries[label][0] for label in curves]
        legend_labels = [entries[label][1] for label in curves]
        found = [t for t in transitions.values() if t.found]
        if found:
            shared = any(t.reference_step != t.step for t in found)
            handle, text = _marker_key(_ONSET_STYLE, f"onset: {found[0].onset_fraction:.0%} "
                                       f"of the {'zero-bias ' if shared else ''}step")
            handles.append(handle)
            legend_labels.append(text)
        if tc_labels:
            tc_transitions = {label: transitions[label] for label in tc_labels}
            _onsets_against_bias(panels["tc"], tc_transitions, biases, colors,
                                 "(c)" if lower_labels else "(b)")
            key = panels["tc"].errorbar([], [], yerr=[], color="0.5", **_TC_POINT_STYLE)
            key.remove()  # the legend draws its own copy; the panel keeps only data
            handles.append(key)
            legend_labels.append(f"{'(c)' if lower_labels else '(b)'}: onset with its 68 % "
                                 f"interval{_error_range(tc_transitions.values())}")
        return _finish(figure, handles, legend_labels, title, conditions, notes)


def _onsets_against_bias(axes: Axes, transitions: Mapping[str, Transition],
                         biases: Mapping[str, float], colors: Mapping[str, str],
                         letter: str) -> None:
    """Onset against dc bias, one error bar per curve in its colour, joined by a line."""
    milliamps = np.array([1e3 * biases[label] for label in transitions])
    onsets = np.array([t.onset for t in transitions.values()])
    order = np.argsort(milliamps)
    axes.plot(milliamps[order], onsets[order], color="0.6", linewidth=1.0, zorder=1,
              gid="tc-bias:line")
    for label, transition in transitions.items():
        error = transition.onset_error if math.isfinite(transition.onset_error) else None
        bars = axes.errorbar([1e3 * biases[label]], [transition.onset], yerr=error,
                             color=colors[label], zorder=3, **_TC_POINT_STYLE)
        bars.lines[0].set_gid(f"tc-bias:{label}")
        for collection in bars.lines[2]:
            collection.set_gid(f"tc-bias:{label}")
    axes.set_xlabel(r"dc bias $I_{dc}$ (mA)")
    axes.set_ylabel("onset $T_c$ (K)")
    axes.set_title(f"{letter} onset against dc bias", loc="left", fontweight="bold")
    axes.margins(x=0.15, y=0.2)
    axes.grid(alpha=0.3)


def _error_range(transitions: Iterable[Transition]) -> str:
    """`` (0.014 to 0.042 K)``: the errors' range, which may hide behind the markers."""
    errors = [t.onset_error for t in transitions if math.isfinite(t.onset_error)]
    if not errors:
        return " (none stated)"
    low, high = min(errors), max(errors)
    if round(low, 3) == round(high, 3):
        return f" ({PLUS_MINUS}{high:.3f} K)"
    return f" ({PLUS_MINUS}{low:.3f} to {high:.3f} K)"


def _colors(count: int) -> list[str]:
    cycle = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"]
    return [cycle[index % len(cycle)] for index in range(count)]


def write_figure(figure: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Save ``figure`` as PNG at ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, format="png")
    return path


def write_susceptibility_figure(path: str | Path, curves: Mapping[str, SusceptibilityCurve],
                                transitions: Mapping[str, Transition] | None = None, *,
                                dpi: int = 150, **options: Any) -> Path:
    """:func:`susceptibility_figure` (``options`` are its keywords) saved as PNG."""
    return write_figure(susceptibility_figure(curves, transitions, **options), path, dpi=dpi)


def write_dudi_figure(path: str | Path, curves: Mapping[str, DudiCurve],
                      transitions: Mapping[str, Transition] | None = None, *,
                      dpi: int = 150, **options: Any) -> Path:
    """:func:`dudi_figure` (``options`` are its keywords) saved as PNG."""
    return write_figure(dudi_figure(curves, transitions, **options), path, dpi=dpi)
