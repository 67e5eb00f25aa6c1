"""Figures in the style of the source paper, drawn from plain curve data.

:func:`susceptibility_figure` redraws Fig. 1 (4 pi chi' and 4 pi chi'' against T, pure Mg
and Mg/MgO, two panels), :func:`dudi_figure` redraws Fig. 2 (dU/dI against T for core
contacts, surface contacts at each dc bias and the degraded sample). Curves are mappings
from a legend label to arrays; transitions, where given, are marked on their curves. The
``write_*`` functions save a PNG and return its path. Figures are built on
:class:`matplotlib.figure.Figure` with the Agg canvas: no pyplot state, no display.

Every data line carries ``gid="curve:<label>"`` and every onset or loss-peak marker
``gid="onset:<label>"`` or ``gid="loss-peak:<label>"``, so callers and tests can find them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from tcstation.analysis.transitions import Transition

SusceptibilityCurve = tuple[ArrayLike, ArrayLike, ArrayLike]
"""(sample temperature in K, 4 pi chi', 4 pi chi'')."""
DudiCurve = tuple[ArrayLike, ArrayLike]
"""(sample temperature in K, dU/dI in ohm)."""

TEMPERATURE_LABEL = "Sample temperature $T$ (K)"
_OHM_PREFIXES = ((1.0, r"$\Omega$"), (1e-3, r"m$\Omega$"), (1e-6, r"$\mu\Omega$"),
                 (1e-9, r"n$\Omega$"))
_ONSET_STYLE = {"marker": "v", "markersize": 8, "markeredgecolor": "black",
                "linestyle": "none", "zorder": 5}
_LOSS_PEAK_STYLE = {"marker": "^", "markersize": 9, "markeredgecolor": "black",
                    "linestyle": "none", "zorder": 5}


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


def _mark_onset(axes: Axes, label: str, color: str, temperature: np.ndarray,
                signal: np.ndarray, transition: Transition, scale: float = 1.0) -> None:
    axes.plot([transition.onset], [_value_at(temperature, signal, transition.onset) / scale],
              color=color, gid=f"onset:{label}", label="_nolegend_", **_ONSET_STYLE)


def _onset_legend_entry(axes: Axes, text: str) -> None:
    """A legend entry for the onset markers, drawn with no data."""
    axes.plot([], [], color="white", label=text, **_ONSET_STYLE)


def _finish(figure: Figure, title: str | None) -> Figure:
    if title:
        figure.suptitle(title)
    return figure


def susceptibility_figure(curves: Mapping[str, SusceptibilityCurve],
                          transitions: Mapping[str, Transition] | None = None, *,
                          title: str | None = None) -> Figure:
    """Fig. 1: (a) 4 pi chi' and (b) 4 pi chi'' against temperature.

    Parameters
    ----------
    curves : mapping of str to (T, chi_real, chi_imag)
        Legend label to one ramp: sample temperature (K), 4 pi chi', 4 pi chi''; any order.
    transitions : mapping of str to Transition, optional
        chi' transitions by label; found ones get an onset marker on chi' and, where the
        loss peak was found, a marker on chi''.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, (a) on top; one line per curve on each.
    """
    transitions = transitions or {}
    figure = Figure(figsize=(6.4, 7.2), layout="constrained")
    FigureCanvasAgg(figure)
    real_axes, imag_axes = figure.subplots(2, 1, sharex=True)
    colors = _colors(len(curves))
    marked = peak_marked = False
    for (label, (temperature, chi_real, chi_imag)), color in zip(curves.items(), colors,
                                                                  strict=True):
        temperature, chi_real, chi_imag = _sorted_curve(temperature, chi_real, chi_imag)
        real_axes.plot(temperature, chi_real, color=color, linewidth=1.2, label=label,
                       gid=f"curve:{label}")
        imag_axes.plot(temperature, chi_imag, color=color, linewidth=1.2, label=label,
                       gid=f"curve:{label}")
        transition = transitions.get(label)
        if transition is None or not transition.found:
            continue
        _mark_onset(real_axes, label, color, temperature, chi_real, transition)
        real_axes.annotate(f"onset {transition.onset:.1f} K", (transition.onset,
                           _value_at(temperature, chi_real, transition.onset)),
                           xytext=(10, -14), textcoords="offset points", color=color)
        marked = True
        if math.isfinite(transition.loss_peak_temperature):
            peak = transition.loss_peak_temperature
            imag_axes.plot([peak], [_value_at(temperature, chi_imag, peak)], color=color,
                           gid=f"loss-peak:{label}", label="_nolegend_", **_LOSS_PEAK_STYLE)
            imag_axes.annotate(f"{peak:.1f} K", (peak, _value_at(temperature, chi_imag, peak)),
                               xytext=(8, 4), textcoords="offset points", color=color)
            peak_marked = True
    if marked:
        fraction = next(t.onset_fraction for t in transitions.values() if t.found)
        _onset_legend_entry(real_axes, f"onset ({fraction:.0%} of the drop)")
    if peak_marked:
        imag_axes.plot([], [], color="white", label=r"$\chi''$ peak in the transition",
                       **_LOSS_PEAK_STYLE)
    real_axes.set_ylabel(r"$4\pi\chi'$ (dimensionless)")
    imag_axes.set_ylabel(r"$4\pi\chi''$ (dimensionless)")
    imag_axes.set_xlabel(TEMPERATURE_LABEL)
    for axes, letter in ((real_axes, "(a)"), (imag_axes, "(b)")):
        axes.text(0.02, 0.95, letter, transform=axes.transAxes, va="top", fontweight="bold")
        axes.grid(alpha=0.3)
    real_axes.legend(loc="lower right")
    imag_axes.legend(loc="lower right", fontsize="small")
    return _finish(figure, title)


def dudi_figure(curves: Mapping[str, DudiCurve],
                transitions: Mapping[str, Transition] | None = None, *,
                lower_panel: Collection[str] = (), title: str | None = None) -> Figure:
    """Fig. 2: dU/dI against temperature, one line per curve.

    Parameters
    ----------
    curves : mapping of str to (T, dudi)
        Legend label to one curve: sample temperature (K) and dU/dI (ohm); any order.
        Earlier curves are drawn on top of later ones.
    transitions : mapping of str to Transition, optional
        dU/dI transitions by label; found ones get an onset marker.
    lower_panel : collection of str
        Labels drawn in a lower panel with their own resistance scale (the core contacts,
        a thousand times smaller than the surface curves).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The main axes first, then the lower panel if any curve is drawn in it.
    """
    transitions = transitions or {}
    unknown = set(lower_panel) - set(curves)
    if unknown:
        raise KeyError(f"lower_panel names curves that are not given: {sorted(unknown)}")
    figure = Figure(figsize=(7.2, 6.4 if lower_panel else 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    if lower_panel:
        main, lower = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    else:
        main, lower = figure.subplots(), None
    colors = dict(zip(curves, _colors(len(curves)), strict=True))
    for axes, labels in ((main, [k for k in curves if k not in lower_panel]),
                         (lower, [k for k in curves if k in lower_panel])):
        if axes is None or not labels:
            continue
        sorted_curves = {label: _sorted_curve(*curves[label]) for label in labels}
        scale, unit = ohm_scale(np.concatenate([dudi for _, dudi in sorted_curves.values()]))
        for rank, (label, (temperature, dudi)) in enumerate(sorted_curves.items()):
            axes.plot(temperature, dudi / scale, color=colors[label], linewidth=1.2,
                      label=label, gid=f"curve:{label}", zorder=3 - rank / len(labels))
            transition = transitions.get(label)
            if transition is not None and transition.found:
                _mark_onset(axes, label, colors[label], temperature, dudi, transition, scale)
        axes.set_ylabel(f"$dU/dI$ ({unit})")
        axes.grid(alpha=0.3)
    found = [t for t in transitions.values() if t.found]
    if found:
        shared = any(t.reference_step != t.step for t in found)
        _onset_legend_entry(main, f"onset ({found[0].onset_fraction:.0%} of the "
                            f"{'zero-bias ' if shared else ''}step)")
    main.legend(loc="lower right", fontsize="small")
    if lower is not None:
        lower.legend(loc="upper left", fontsize="small")
    (lower or main).set_xlabel(TEMPERATURE_LABEL)
    return _finish(figure, title)


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
                                title: str | None = None, dpi: int = 150) -> Path:
    """:func:`susceptibility_figure` saved as PNG; returns ``path``."""
    return write_figure(susceptibility_figure(curves, transitions, title=title), path, dpi=dpi)


def write_dudi_figure(path: str | Path, curves: Mapping[str, DudiCurve],
                      transitions: Mapping[str, Transition] | None = None, *,
                      lower_panel: Collection[str] = (), title: str | None = None,
                      dpi: int = 150) -> Path:
    """:func:`dudi_figure` saved as PNG; returns ``path``."""
    return write_figure(dudi_figure(curves, transitions, lower_panel=lower_panel, title=title),
                        path, dpi=dpi)
