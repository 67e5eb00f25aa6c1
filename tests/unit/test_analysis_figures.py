"""analysis.figures: PNG files are written and the figures hold the curves and markers."""

import numpy as np
import pytest

from tcstation.analysis.figures import (
    Conditions,
    dudi_figure,
    ohm_scale,
    susceptibility_figure,
    write_dudi_figure,
    write_susceptibility_figure,
)
from tcstation.analysis.transitions import Transition

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEMPERATURE = np.linspace(4.5, 70.0, 300)
DUDI_ONSETS = ((0, 53.9), (200, 52.0), (300, 51.2), (400, 50.3))
DATA_GIDS = ("curve:", "onset:", "loss-peak:", "tc-bias:")


def step(temperature, tc, low, high, width=0.5):
    return low + (high - low) / (1 + np.exp(-(temperature - tc) / width))


def found(onset, fraction=0.05, step_height=1.0, reference_step=None, loss_peak=np.nan,
          onset_error=np.nan):
    return Transition(found=True, reason="test", onset=onset, midpoint=onset - 0.5, width=1.0,
                      step=step_height, onset_fraction=fraction,
                      reference_step=step_height if reference_step is None else reference_step,
                      loss_peak_temperature=loss_peak, onset_error=onset_error)


@pytest.fixture
def susceptibility_curves():
    shuffled = np.random.default_rng(0).permutation(TEMPERATURE.size)
    metal = (TEMPERATURE, -0.6 + 0.5 * TEMPERATURE / 70, 0.3 - 0.001 * TEMPERATURE)
    interface = (TEMPERATURE[shuffled], step(TEMPERATURE, 50, -0.9, -0.1)[shuffled],
                 (0.1 + 0.2 * np.exp(-((TEMPERATURE - 49.4) / 0.7) ** 2))[shuffled])
    return {"1: pure Mg": metal, "2: Mg/MgO": interface}


@pytest.fixture
def dudi_curves():
    curves = {"1: core contacts": (TEMPERATURE, 1e-7 + 2e-8 * TEMPERATURE)}
    for number, (bias, tc) in enumerate(DUDI_ONSETS, 2):
        curves[f"{number}: {bias} mA"] = (TEMPERATURE, step(TEMPERATURE, tc, 3e-3, 5e-3))
    curves["6: degraded"] = (TEMPERATURE, np.full(TEMPERATURE.size, 5e-3))
    return curves


@pytest.fixture
def dudi_transitions():
    """Found transitions of curves 2 to 5 with their onset errors; curve 6 has none."""
    transitions = {f"{number}: {bias} mA": found(tc, fraction=0.1, step_height=2e-3 * share,
                                                  reference_step=2e-3, onset_error=error)
                   for number, (bias, tc), share, error in zip(
                       range(2, 6), DUDI_ONSETS, (1.0, 0.85, 0.72, 0.63),
                       (0.021, 0.15, 0.3, 0.045), strict=True)}
    transitions["6: degraded"] = Transition(found=False, reason="none")
    return transitions


DUDI_BIASES = {"2: 0 mA": 0.0, "3: 200 mA": 0.2, "4: 300 mA": 0.3, "5: 400 mA": 0.4,
               "6: degraded": 0.0}
FIG1_CONDITIONS = Conditions(frequency=1550.0, field=0.2, rate=1.5)
FIG2_CONDITIONS = Conditions(frequency=13.0, excitation=0.024, bias=(0.4, 0.0, 0.2, 0.3),
                             rate=[1.5, 1.5])


def lines_with(axes, prefix):
    return [line for line in axes.get_lines() if str(line.get_gid()).startswith(prefix)]


def legend_texts(figure):
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def data_points_on_display(figure):
    """Display coordinates of every drawn data point inside its axes (lines and error bars)."""
    figure.draw_without_rendering()
    points = []
    for axes in figure.axes:
        box = axes.bbox
        arrays = [line.get_transform().transform(line.get_xydata())
                  for line in axes.get_lines() if str(line.get_gid()).startswith(DATA_GIDS)]
        arrays += [collection.get_transform().transform(np.concatenate(collection.get_segments()))
                   for collection in axes.collections
                   if str(collection.get_gid()).startswith(DATA_GIDS)
                   and collection.get_segments()]
        for xy in arrays:
            xy = xy[np.isfinite(xy).all(axis=1)]
            inside = ((xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1)
                      & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1))
            points.append(xy[inside])
    return np.concatenate(points)


def points_inside(points, extent):
    return int(np.sum((points[:, 0] >= extent.x0) & (points[:, 0] <= extent.x1)
                      & (points[:, 1] >= extent.y0) & (points[:, 1] <= extent.y1)))


def assert_legend_clear_of_data_and_nothing_clipped(figure):
    points = data_points_on_display(figure)
    assert len(points) > 100
    (legend,) = figure.legends
    extent = legend.get_window_extent()
    assert points_inside(points, extent) == 0
    for axes in figure.axes:
        assert not extent.overlaps(axes.bbox), "the legend sits in a margin of its own"
    renderer = figure.canvas.get_renderer()
    texts = [figure._suptitle, *legend.get_texts()]
    for axes in figure.axes:
        texts += [axes.title, axes._left_title, axes.xaxis.label, axes.yaxis.label]
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            texts += [tick.label1 for tick in axis.get_major_ticks()
                      if low <= tick.get_loc() <= high]
    for text in texts:
        if text is None or not text.get_visible() or not text.get_text():
            continue
        box = text.get_window_extent(renderer)
        assert (box.x0 >= figure.bbox.x0 - 1 and box.x1 <= figure.bbox.x1 + 1
                and box.y0 >= figure.bbox.y0 - 1 and box.y1 <= figure.bbox.y1 + 1), (
            f"{text.get_text()!r} is clipped: {box} outside {figure.bbox}")


def test_the_overlap_check_sees_a_legend_on_the_data(susceptibility_curves):
    figure = susceptibility_figure(susceptibility_curves)
    figure.legends[0].remove()
    axes_legend = figure.axes[0].legend(["1: pure Mg", "2: Mg/MgO"], loc="center",
                                        fontsize=30)
    points = data_points_on_display(figure)
    assert points_inside(points, axes_legend.get_window_extent()) > 0


def test_susceptibility_figure_has_two_panels_with_both_curves(susceptibility_curves):
    transitions = {"1: pure Mg": Transition(found=False, reason="none"),
                   "2: Mg/MgO": found(50.1, loss_peak=49.4, onset_error=0.034)}
    figure = susceptibility_figure(susceptibility_curves, transitions)
    real_axes, imag_axes = figure.axes
    assert "chi'" in real_axes.get_ylabel() and "dimensionless" in real_axes.get_ylabel()
    assert "chi''" in imag_axes.get_ylabel()
    assert "(K)" in imag_axes.get_xlabel()
    assert [real_axes.get_title(loc="left"), imag_axes.get_title(loc="left")] == ["(a)", "(b)"]
    for axes in (real_axes, imag_axes):
        curves = lines_with(axes, "curve:")
        assert [line.get_gid() for line in curves] == ["curve:1: pure Mg", "curve:2: Mg/MgO"]
        # unsorted input is drawn in temperature order
        assert all(np.all(np.diff(line.get_xdata()) >= 0) for line in curves)
    onsets = lines_with(real_axes, "onset:")
    assert [line.get_gid() for line in onsets] == ["onset:2: Mg/MgO"]
    assert onsets[0].get_xdata()[0] == 50.1
    assert onsets[0].get_ydata()[0] == pytest.approx(step(50.1, 50, -0.9, -0.1), abs=0.01)
    (peak,) = lines_with(imag_axes, "loss-peak:")
    assert peak.get_gid() == "loss-peak:2: Mg/MgO" and peak.get_xdata()[0] == 49.4
    assert legend_texts(figure) == [
        "1: pure Mg; no transition",
        "2: Mg/MgO; onset 50.100 \u00b1 0.034 K, $4\\pi\\chi''$ maximum 49.4 K",
        "onset: 5% of the drop", "$4\\pi\\chi''$ maximum in the transition"]


def test_susceptibility_figure_states_its_conditions_and_keeps_the_legend_off_the_data(
        susceptibility_curves):
    transitions = {"2: Mg/MgO": found(50.1, loss_peak=49.4, onset_error=0.034)}
    figure = susceptibility_figure(susceptibility_curves, transitions,
                                   conditions=FIG1_CONDITIONS, title="Fig. 1",
                                   notes=["simulated"])
    caption = figure.get_suptitle()
    assert caption.splitlines()[0] == "Fig. 1"
    for condition in ("$f$ = 1550 Hz", "$H_{ac}$ = 0.2 Oe", "heating at 1.5 K/min"):
        assert condition in caption
    assert caption.splitlines()[-1] == "simulated"
    assert_legend_clear_of_data_and_nothing_clipped(figure)


def test_a_dashed_curve_is_drawn_dashed_on_top(susceptibility_curves):
    curves = {**susceptibility_curves, "Mg/MgO after exposure": susceptibility_curves["1: pure Mg"]}
    figure = susceptibility_figure(curves, dashed=["Mg/MgO after exposure"])
    (line,) = lines_with(figure.axes[0], "curve:Mg/MgO after exposure")
    assert line.get_linestyle() == "--"
    assert line.get_zorder() > lines_with(figure.axes[0], "curve:1")[0].get_zorder()
    assert legend_texts(figure)[-1] == "Mg/MgO after exposure"


def test_susceptibility_figure_without_transitions_has_no_markers(susceptibility_curves):
    figure = susceptibility_figure(susceptibility_curves)
    assert not lines_with(figure.axes[0], "onset:")
    assert legend_texts(figure) == ["1: pure Mg", "2: Mg/MgO"]
    assert figure.get_suptitle() == ""


def test_write_susceptibility_figure_writes_a_png(tmp_path, susceptibility_curves):
    path = write_susceptibility_figure(tmp_path / "figs" / "fig1.png", susceptibility_curves,
                                       title="Fig. 1", conditions=FIG1_CONDITIONS)
    assert path == tmp_path / "figs" / "fig1.png"
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 20_000


def test_dudi_figure_draws_the_core_curve_in_its_own_panel(dudi_curves, dudi_transitions):
    figure = dudi_figure(dudi_curves, dudi_transitions, lower_panel=["1: core contacts"])
    main, lower = figure.axes
    assert len(lines_with(main, "curve:")) == 5
    assert [line.get_gid() for line in lines_with(lower, "curve:")] == ["curve:1: core contacts"]
    assert len(lines_with(main, "onset:")) == 4
    assert "m$\\Omega$" in main.get_ylabel() and "\\mu\\Omega" in lower.get_ylabel()
    # values are drawn in the axis unit: 5 mOhm reads 5 on the main axis
    assert lines_with(main, "curve:6")[0].get_ydata().max() == pytest.approx(5.0)
    assert lines_with(lower, "curve:")[0].get_ydata().max() == pytest.approx(1.5, abs=0.01)
    assert legend_texts(figure)[-1] == "onset: 10% of the zero-bias step"
    assert len(legend_texts(figure)) == 7


def test_dudi_legend_numbers_the_curves_and_states_each_onset_with_its_error(
        dudi_curves, dudi_transitions):
    figure = dudi_figure(dudi_curves, dudi_transitions, lower_panel=["1: core contacts"],
                         biases=DUDI_BIASES)
    texts = legend_texts(figure)
    # in the order of the curves, whatever the panel
    assert [text.split(":")[0] for text in texts[:6]] == ["1", "2", "3", "4", "5", "6"]
    assert texts[0] == "1: core contacts"
    assert texts[1] == "2: 0 mA; onset 53.900 \u00b1 0.021 K"
    assert texts[2] == "3: 200 mA; onset 52.00 \u00b1 0.15 K"
    assert texts[3] == "4: 300 mA; onset 51.20 \u00b1 0.30 K"
    assert texts[4] == "5: 400 mA; onset 50.300 \u00b1 0.045 K"
    assert texts[5] == "6: degraded; no transition"
    assert texts[-1] == "(c): onset with its 68 % interval (\u00b10.021 to 0.300 K)"


def test_dudi_figure_plots_onset_against_bias_with_error_bars(dudi_curves, dudi_transitions):
    figure = dudi_figure(dudi_curves, dudi_transitions, lower_panel=["1: core contacts"],
                         biases=DUDI_BIASES)
    main, lower, tc_axes = figure.axes
    assert tc_axes.get_title(loc="left") == "(c) onset against dc bias"
    assert "(mA)" in tc_axes.get_xlabel() and "(K)" in tc_axes.get_ylabel()
    points = {line.get_gid(): (line.get_xdata()[0], line.get_ydata()[0])
              for line in lines_with(tc_axes, "tc-bias:") if line.get_gid() != "tc-bias:line"}
    # curve 6 has no transition: no point for it
    assert points == {f"tc-bias:{number}: {bias} mA": (bias, tc)
                      for number, (bias, tc) in zip(range(2, 6), DUDI_ONSETS, strict=True)}
    bars = {collection.get_gid(): collection.get_segments()
            for collection in tc_axes.collections}
    assert len(bars) == 4
    for label, transition in dudi_transitions.items():
        if not transition.found:
            continue
        (segment,) = bars[f"tc-bias:{label}"]
        (x_low, y_low), (x_high, y_high) = segment
        assert x_low == x_high == 1e3 * DUDI_BIASES[label]
        assert y_high - y_low == pytest.approx(2 * transition.onset_error)
        assert (y_high + y_low) / 2 == pytest.approx(transition.onset)
    assert_legend_clear_of_data_and_nothing_clipped(figure)


def test_dudi_figure_states_its_conditions(dudi_curves, dudi_transitions):
    figure = dudi_figure(dudi_curves, dudi_transitions, biases=DUDI_BIASES,
                         conditions=FIG2_CONDITIONS, title="Fig. 2")
    caption = figure.get_suptitle()
    for condition in ("$I_{ac}$ = 24 mA", "$f$ = 13 Hz", "$I_{dc}$ = 0, 200, 300, 400 mA",
                      "heating at 1.5 K/min"):
        assert condition in caption
    main, tc_axes = figure.axes
    assert tc_axes.get_title(loc="left") == "(b) onset against dc bias"
    assert_legend_clear_of_data_and_nothing_clipped(figure)


def test_an_onset_without_an_error_gets_a_point_without_a_bar(dudi_curves):
    transitions = {"2: 0 mA": found(53.9, fraction=0.1, step_height=2e-3)}
    figure = dudi_figure(dudi_curves, transitions, biases={"2: 0 mA": 0.0})
    tc_axes = figure.axes[-1]
    assert [line.get_gid() for line in lines_with(tc_axes, "tc-bias:2")] == ["tc-bias:2: 0 mA"]
    assert not [c for c in tc_axes.collections if c.get_gid() == "tc-bias:2: 0 mA"]
    assert "2: 0 mA; onset 53.90 K" in legend_texts(figure)
    assert legend_texts(figure)[-1].endswith("(none stated)")


def test_no_bias_panel_without_a_found_onset(dudi_curves):
    transitions = {"2: 0 mA": Transition(found=False, reason="none")}
    figure = dudi_figure(dudi_curves, transitions, biases={"2: 0 mA": 0.0})
    assert len(figure.axes) == 1


def test_dudi_figure_refuses_unknown_labels(dudi_curves):
    with pytest.raises(KeyError, match="surface"):
        dudi_figure(dudi_curves, lower_panel=["surface"])
    with pytest.raises(KeyError, match="biases"):
        dudi_figure(dudi_curves, biases={"7: 500 mA": 0.5})


def test_write_dudi_figure_writes_a_png(tmp_path, dudi_curves):
    path = write_dudi_figure(tmp_path / "fig2.png", dudi_curves, conditions=FIG2_CONDITIONS)
    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE) and len(content) > 20_000


def test_mismatched_curve_arrays_are_refused():
    with pytest.raises(ValueError, match="one length"):
        dudi_figure({"bad": (np.arange(3.0), np.arange(4.0))})


def test_conditions_list_distinct_values_and_leave_out_what_is_unknown():
    assert FIG2_CONDITIONS.bias == (0.0, 0.2, 0.3, 0.4) and FIG2_CONDITIONS.rate == (1.5,)
    assert Conditions(rate=(1.0, 1.5, None), field=None).text() == "heating at 1, 1.5 K/min"
    assert Conditions().text() == ""
    assert Conditions(frequency=float("nan")).frequency == ()


def test_ohm_scale_picks_the_prefix():
    assert ohm_scale([5e-3, 3e-3])[0] == 1e-3
    assert ohm_scale([1.7e-6, -0.5e-6])[0] == 1e-6
    assert ohm_scale([2.0])[0] == 1.0
    assert ohm_scale([np.nan])[0] == 1.0
