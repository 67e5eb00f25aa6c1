"""tcstation.report's figures: the source's curve numbers, conditions and onsets of a protocol."""

import numpy as np
import pytest

from tcstation.analysis.figures import dudi_figure, susceptibility_figure
from tcstation.analysis.live import run_transitions
from tcstation.ioc_sim.sample import SampleModel
from tcstation.report import RunData, conditions_of, dudi_label, figure_arguments, figures

BIASES = (0.0, 0.2, 0.3, 0.4)
RATE = 1.5  # K/min
DUDI_NOISE = 0.57e-6
CHI_NOISE = 2e-3


def start_document(measurement, sample, contacts, state=None, **plan_args):
    start = {"uid": f"{sample}-{contacts}-{state}-{measurement}", "measurement": measurement,
             "plan_name": f"{measurement}_ramp",
             "sample": {"name": sample, "contacts": contacts,
                        "warm_seconds_before": 1800.0 if state == "degraded" else 0.0},
             "plan_args": {"start": 4.5, "stop": 70.0, "rate": RATE, **plan_args}}
    if state is not None:
        start["state"] = state
    return start


def susceptibility_run(sample, seed, state=None):
    rng = np.random.default_rng(seed)
    temperature = np.arange(4.5, 70.0, RATE / 10)  # a reading every 6 s
    chi = sample.susceptibility(temperature)
    start = start_document("susceptibility", sample.kind, "none", state, field=0.2,
                           frequency=1550.0)
    return RunData(start, {"temperature": temperature,
                           "signal": chi.real + CHI_NOISE * rng.standard_normal(temperature.size),
                           "chi_imag": chi.imag + CHI_NOISE * rng.standard_normal(
                               temperature.size)}, {})


def transport_run(sample, seed, contacts, biases=BIASES, state=None):
    rng = np.random.default_rng(seed)
    temperature = np.arange(4.5, 70.0, RATE / 20)  # a reading every 3 s
    bias = np.resize(np.asarray(biases, dtype=float), temperature.size)
    dudi = np.empty(temperature.size)
    for value in biases:
        rows = bias == value
        dudi[rows] = sample.dynamic_resistance(temperature[rows], bias_current=value,
                                               contacts=contacts)
    start = start_document("transport", "mg_mgo", contacts, state, biases=list(biases),
                           excitation=0.024, frequency=13.0)
    return RunData(start, {"temperature": temperature, "bias": bias,
                           "signal": dudi + DUDI_NOISE * rng.standard_normal(bias.size)}, {})


@pytest.fixture(scope="module")
def protocol():
    """The source protocol's ramps (fresh, then after 30 min at 295 K), with transitions."""
    fresh, degraded = SampleModel("mg_mgo"), SampleModel("mg_mgo")
    degraded.advance(30 * 60.0, 295.0)
    runs = [susceptibility_run(SampleModel("pure_mg"), 1),
            susceptibility_run(fresh, 2, "fresh"),
            transport_run(fresh, 3, "core", (0.0,), "fresh"),
            transport_run(fresh, 4, "surface", BIASES, "fresh"),
            transport_run(degraded, 5, "surface", BIASES, "degraded"),
            susceptibility_run(degraded, 6, "degraded")]
    return runs, [run_transitions(run.measurement, run.columns) for run in runs]


def test_fig1_numbers_pure_mg_1_and_mg_mgo_2_and_dashes_the_degraded_sample(protocol):
    arguments = figure_arguments(*protocol)["fig1_susceptibility.png"]
    assert list(arguments["curves"]) == [
        "1: pure Mg", "2: Mg/MgO", "Mg/MgO after 30 min at room temperature (cf. curve 1)"]
    assert arguments["dashed"] == ["Mg/MgO after 30 min at room temperature (cf. curve 1)"]
    conditions = arguments["conditions"]
    assert (conditions.frequency, conditions.field, conditions.rate) == ((1550.0,), (0.2,),
                                                                         (1.5,))
    assert conditions.excitation == () and conditions.bias == ()
    figure = susceptibility_figure(**arguments)
    (legend,) = figure.legends
    texts = [text.get_text() for text in legend.get_texts()]
    assert texts[0] == "1: pure Mg; no transition"
    assert texts[1].startswith("2: Mg/MgO; onset 50.") and "\u00b1" in texts[1]
    assert "maximum 49." in texts[1], "the Mg/MgO chi'' maximum is named"
    (peak,) = [line for line in figure.axes[1].get_lines()
               if line.get_gid() == "loss-peak:2: Mg/MgO"]
    assert 48.5 < peak.get_xdata()[0] < 50.5
    assert "1550 Hz" in figure.get_suptitle()


def test_fig2_numbers_the_curves_1_to_6_and_leaves_out_the_degraded_biases(protocol):
    arguments = figure_arguments(*protocol)["fig2_dudi.png"]
    assert list(arguments["curves"]) == [
        "1: core contacts, 0 mA", "2: surface contacts, 0 mA", "3: surface contacts, 200 mA",
        "4: surface contacts, 300 mA", "5: surface contacts, 400 mA",
        "6: surface after 30 min at room temperature, 0 mA"]
    assert arguments["lower_panel"] == ["1: core contacts, 0 mA"]
    assert arguments["biases"] == {f"{number}: surface contacts, {bias:.0f} mA": bias / 1e3
                                   for number, bias in zip(range(2, 6), (0, 200, 300, 400),
                                                           strict=True)}
    assert arguments["notes"] == ["not drawn: after the exposure at 200, 300, 400 mA "
                                  "(no transition in any; see the table)"]
    conditions = arguments["conditions"]
    assert conditions.bias == BIASES and conditions.excitation == (0.024,)
    assert conditions.frequency == (13.0,) and conditions.rate == (1.5,)
    figure = dudi_figure(**arguments)
    caption = figure.get_suptitle()
    assert "$I_{ac}$ = 24 mA" in caption and "$I_{dc}$ = 0, 200, 300, 400 mA" in caption
    assert caption.splitlines()[-1].startswith("not drawn")
    main, core, tc_axes = figure.axes
    onsets = sorted((line.get_xdata()[0], line.get_ydata()[0]) for line in tc_axes.get_lines()
                    if str(line.get_gid()).startswith("tc-bias:") and "line" not in line.get_gid())
    assert [bias for bias, _ in onsets] == [0.0, 200.0, 300.0, 400.0]
    assert [tc for _, tc in onsets] == sorted((tc for _, tc in onsets), reverse=True)
    assert len(tc_axes.collections) == 4, "an error bar for each onset"


def test_surface_curves_at_other_biases_are_drawn_unnumbered():
    run = RunData(start_document("transport", "mg_mgo", "surface"), {}, {})
    assert dudi_label(run, 0.2) == "3: surface contacts, 200 mA"
    assert dudi_label(run, 0.1) == "surface contacts, 100 mA"
    assert dudi_label(RunData(start_document("transport", "mg_mgo", "core"), {}, {}),
                      0.4) == "1: core contacts, 400 mA"


def test_conditions_list_every_rate_of_the_runs_drawn():
    runs = [RunData({**start_document("susceptibility", "pure_mg", "none", field=0.2),
                     "plan_args": {"rate": rate, "field": 0.2}}, {}, {}) for rate in (1.0, 1.5)]
    assert conditions_of(runs).text() == "$H_{ac}$ = 0.2 Oe, heating at 1, 1.5 K/min"


def test_figures_writes_both_pngs(protocol, tmp_path):
    paths = figures(*protocol, tmp_path)
    assert [path.name for path in paths] == ["fig1_susceptibility.png", "fig2_dudi.png"]
    assert all(path.stat().st_size > 20_000 for path in paths)
