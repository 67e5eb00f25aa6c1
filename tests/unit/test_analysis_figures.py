"""analysis.figures: PNG files are written and the figures hold the curves and markers."""

import numpy as np
import pytest

from tcstation.analysis.figures import (
    dudi_figure,
    ohm_scale,
    susceptibility_figure,
    write_dudi_figure,
    write_susceptibility_figure,
)
from tcstation.analysis.transitions import Transition

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEMPERATURE = np.linspace(4.5, 70.0, 300)


def step(temperature, tc, low, high, width=0.5):
    return low + (high - low) / (1 + np.exp(-(temperature - tc) / width))


def found(onset, fraction=0.05, step_height=1.0, reference_step=None, loss_peak=np.nan):
    return Transition(found=True, reason="test", onset=onset, midpoint=onset - 0.5, width=1.0,
                      step=step_height, onset_fraction=fraction,
                      reference_step=step_height if reference_step is None else reference_step,
                      loss_peak_temperature=loss_peak)


@pytest.fixture
def susceptibility_curves():
    shuffled = np.random.default_rng(0).permutation(TEMPERATURE.size)
    metal = (TEMPERATURE, -0.6 + 0.5 * TEMPERATURE / 70, 0.3 - 0.001 * TEMPERATURE)
    interface = (TEMPERATURE[shuffled], step(TEMPERATURE, 50, -0.9, -0.1)[shuffled],
                 (0.1 + 0.2 * np.exp(-((TEMPERATURE - 49.4) / 0.7) ** 2))[shuffled])
    return {"1: Mg": metal, "2: Mg/MgO": interface}


@pytest.fixture
def dudi_curves():
    curves = {"1: core contacts": (TEMPERATURE, 1e-7 + 2e-8 * TEMPERATURE)}
    for number, (bias, tc) in enumerate(((0, 53.9), (200, 52.0), (300, 51.2), (400, 50.3)), 2):
        curves[f"{number}: {bias} mA"] = (TEMPERATURE, step(TEMPERATURE, tc, 3e-3, 5e-3))
    curves["6: degraded"] = (TEMPERATURE, np.full(TEMPERATURE.size, 5e-3))
    return curves


def lines_with(axes, prefix):
    return [line for line in axes.get_lines() if str(line.get_gid()).startswith(prefix)]


def legend_texts(axes):
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_susceptibility_figure_has_two_panels_with_both_curves(susceptibility_curves):
    transitions = {"1: Mg": Transition(found=False, reason="none"),
                   "2: Mg/MgO": found(50.1, loss_peak=49.4)}
    figure = susceptibility_figure(susceptibility_curves, transitions)
    real_axes, imag_axes = figure.axes
    assert "chi'" in real_axes.get_ylabel() and "dimensionless" in real_axes.get_ylabel()
    assert "chi''" in imag_axes.get_ylabel()
    assert "(K)" in imag_axes.get_xlabel()
    for axes in (real_axes, imag_axes):
        curves = lines_with(axes, "curve:")
        assert [line.get_gid() for line in curves] == ["curve:1: Mg", "curve:2: Mg/MgO"]
        # unsorted input is drawn in temperature order
        assert all(np.all(np.diff(line.get_xdata()) >= 0) for line in curves)
    onsets = lines_with(real_axes, "onset:")
    assert [line.get_gid() for line in onsets] == ["onset:2: Mg/MgO"]
    assert onsets[0].get_xdata()[0] == 50.1
    assert onsets[0].get_ydata()[0] == pytest.approx(step(50.1, 50, -0.9, -0.1), abs=0.01)
    assert [line.get_xdata()[0] for line in lines_with(imag_axes, "loss-peak:")] == [49.4]
    assert legend_texts(real_axes) == ["1: Mg", "2: Mg/MgO", "onset (5% of the drop)"]


def test_susceptibility_figure_without_transitions_has_no_markers(susceptibility_curves):
    figure = susceptibility_figure(susceptibility_curves)
    assert not lines_with(figure.axes[0], "onset:")
    assert legend_texts(figure.axes[0]) == ["1: Mg", "2: Mg/MgO"]


def test_write_susceptibility_figure_writes_a_png(tmp_path, susceptibility_curves):
    path = write_susceptibility_figure(tmp_path / "figs" / "fig1.png", susceptibility_curves,
                                       title="Fig. 1")
    assert path == tmp_path / "figs" / "fig1.png"
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 20_000


def test_dudi_figure_draws_the_core_curve_in_its_own_panel(dudi_curves):
    transitions = {label: found(tc, fraction=0.1, step_height=2e-3 * share,
                                reference_step=2e-3)
                   for label, tc, share in (("2: 0 mA", 53.9, 1.0), ("3: 200 mA", 52.0, 0.85),
                                            ("4: 300 mA", 51.2, 0.72), ("5: 400 mA", 50.3, 0.63))}
    figure = dudi_figure(dudi_curves, transitions, lower_panel=["1: core contacts"])
    main, lower = figure.axes
    assert len(lines_with(main, "curve:")) == 5
    assert [line.get_gid() for line in lines_with(lower, "curve:")] == ["curve:1: core contacts"]
    assert len(lines_with(main, "onset:")) == 4
    assert "m$\\Omega$" in main.get_ylabel() and "\\mu\\Omega" in lower.get_ylabel()
    # values are drawn in the axis unit: 5 mOhm reads 5 on the main axis
    assert lines_with(main, "curve:6")[0].get_ydata().max() == pytest.approx(5.0)
    assert lines_with(lower, "curve:")[0].get_ydata().max() == pytest.approx(1.5, abs=0.01)
    assert legend_texts(main)[-1] == "onset (10% of the zero-bias step)"
    assert len(legend_texts(main)) == 6


def test_dudi_figure_refuses_an_unknown_lower_panel_label(dudi_curves):
    with pytest.raises(KeyError, match="surface"):
        dudi_figure(dudi_curves, lower_panel=["surface"])


def test_write_dudi_figure_writes_a_png(tmp_path, dudi_curves):
    path = write_dudi_figure(tmp_path / "fig2.png", dudi_curves)
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 20_000


def test_mismatched_curve_arrays_are_refused():
    with pytest.raises(ValueError, match="one length"):
        dudi_figure({"bad": (np.arange(3.0), np.arange(4.0))})


def test_ohm_scale_picks_the_prefix():
    assert ohm_scale([5e-3, 3e-3])[0] == 1e-3
    assert ohm_scale([1.7e-6, -0.5e-6])[0] == 1e-6
    assert ohm_scale([2.0])[0] == 1.0
    assert ohm_scale([np.nan])[0] == 1.0
