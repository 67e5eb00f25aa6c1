"""analysis.transitions on curves from the simulator's sample model with realistic noise.

The curves are what a heating ramp from 4.5 K to 70 K would record: a reading every few
seconds at 1 to 1.5 K/min, the noise-free model at the sample temperature plus the physics
note's noise (susceptometer sigma(4 pi chi) 1 to 3e-3 and a slow drift, transport lock-in
15 nV/sqrt(Hz) over 0.42 Hz, thermometer 2 mK), handed over in a shuffled order.
"""

import math

import numpy as np
import pytest

from tcstation.analysis.transitions import (
    TC_TABLE_COLUMNS,
    TC_TABLE_UNITS,
    Transition,
    TransitionCriteria,
    find_dudi_transition,
    find_step_transition,
    find_susceptibility_transition,
    point_noise,
    tc_against_bias,
)
from tcstation.ioc_sim import physics
from tcstation.ioc_sim.sample import REFERENCES, SampleModel

ONSET_TOLERANCE = 0.2  # K, the accuracy target against SampleModel.true_onsets
CHI_NOISE = 2e-3  # sigma(4 pi chi) per reading
CHI_DRIFT = 1e-3  # rms of the susceptometer background drift
CHI_DRIFT_TIME = 600.0  # s, its correlation time
# SR830 input noise at 13 Hz over the noise bandwidth of 300 ms / 12 dB, as dU/dI with a
# 24 mA excitation amplitude: about 0.57 uOhm.
DUDI_NOISE = math.sqrt(2) * 15e-9 * math.sqrt(1 / (8 * 0.3)) / 0.024
THERMOMETER_NOISE = 2e-3  # K
PAPER_BIASES = (0.0, 0.2, 0.3, 0.4)  # A
ROOM_TEMPERATURE = 295.0
MINUTE = 60.0


def ramp_times(rng, seconds_per_reading, rate_k_per_min, start=4.5, stop=70.0):
    """Reading times (s) and sample temperatures (K) of a heating ramp, slightly jittered."""
    times = np.arange(0.0, (stop - start) / rate_k_per_min * MINUTE, seconds_per_reading)
    times = times + rng.uniform(-0.2, 0.2, times.size) * seconds_per_reading
    return times, start + rate_k_per_min * times / MINUTE


def slow_drift(rng, times, rms, correlation_time):
    """Ornstein-Uhlenbeck drift sampled at ``times``."""
    drift = np.empty(times.size)
    value, previous = rms * rng.standard_normal(), times[0]
    for index, time in enumerate(times):
        keep = math.exp(-(time - previous) / correlation_time)
        value = value * keep + rms * math.sqrt(1 - keep**2) * rng.standard_normal()
        drift[index], previous = value, time
    return drift


def susceptibility_ramp(sample, seed, *, seconds_per_reading=6.0, rate_k_per_min=1.5,
                        noise=CHI_NOISE):
    """(T, 4 pi chi', 4 pi chi'') of one ramp, shuffled."""
    rng = np.random.default_rng(seed)
    times, temperature = ramp_times(rng, seconds_per_reading, rate_k_per_min)
    chi = sample.susceptibility(temperature)
    chi_real = (chi.real + noise * rng.standard_normal(times.size)
                + slow_drift(rng, times, CHI_DRIFT, CHI_DRIFT_TIME))
    chi_imag = chi.imag + noise * rng.standard_normal(times.size)
    measured = temperature + THERMOMETER_NOISE * rng.standard_normal(times.size)
    order = rng.permutation(times.size)
    return measured[order], chi_real[order], chi_imag[order]


def transport_ramp(sample, seed, *, biases=PAPER_BIASES, seconds_per_reading=3.0,
                   rate_k_per_min=1.5, contacts="surface"):
    """Event table of one ramp whose readings cycle through ``biases``."""
    rng = np.random.default_rng(seed)
    _, temperature = ramp_times(rng, seconds_per_reading, rate_k_per_min)
    bias = np.resize(np.asarray(biases, dtype=float), temperature.size)
    dudi = np.empty(temperature.size)
    for value in biases:
        rows = bias == value
        dudi[rows] = sample.dynamic_resistance(temperature[rows], bias_current=value,
                                               contacts=contacts)
    return {
        "temperature": temperature + THERMOMETER_NOISE * rng.standard_normal(bias.size),
        "dudi": dudi + DUDI_NOISE * rng.standard_normal(bias.size),
        "bias": bias + 1e-6 * rng.standard_normal(bias.size),
    }


def degraded_sample():
    sample = SampleModel("mg_mgo")
    sample.advance(30 * MINUTE, ROOM_TEMPERATURE)
    return sample


def assert_none(transition: Transition):
    assert not transition.found
    assert transition.reason
    assert all(math.isnan(value) for value in (transition.onset, transition.midpoint,
                                               transition.width, transition.step))


@pytest.mark.parametrize(("noise", "seconds_per_reading", "rate_k_per_min"),
                         [(1e-3, 6.0, 1.0), (2e-3, 6.0, 1.5), (3e-3, 12.0, 1.5),
                          (2e-3, 2.0, 1.0)])
def test_mg_mgo_chi_onset_agrees_with_the_model(noise, seconds_per_reading, rate_k_per_min):
    sample = SampleModel("mg_mgo")
    truth = sample.true_onsets()["chi_onset"]
    for seed in range(3):
        temperature, chi_real, chi_imag = susceptibility_ramp(
            sample, seed, noise=noise, seconds_per_reading=seconds_per_reading,
            rate_k_per_min=rate_k_per_min)
        transition = find_susceptibility_transition(temperature, chi_real, chi_imag)
        assert transition.found, transition.reason
        assert transition.onset == pytest.approx(truth, abs=ONSET_TOLERANCE)
        assert transition.midpoint < transition.onset
        assert transition.width > 0
        # total drop: normal state near 52 K (-0.16) to the shielded state at 4.5 K (-0.91)
        assert transition.step == pytest.approx(0.75, abs=0.03)
        assert transition.onset_fraction == 0.05


def test_chi_loss_peak_is_inside_the_transition():
    sample, normal_metal = SampleModel("mg_mgo"), SampleModel("pure_mg")
    fine = np.arange(45.0, 52.0, 0.001)
    excess_loss = sample.susceptibility(fine).imag - normal_metal.susceptibility(fine).imag
    true_peak = fine[np.argmax(excess_loss)]
    temperature, chi_real, chi_imag = susceptibility_ramp(sample, seed=7)
    transition = find_susceptibility_transition(temperature, chi_real, chi_imag)
    assert transition.loss_peak_temperature == pytest.approx(true_peak, abs=0.15)
    assert 0 < transition.onset - transition.loss_peak_temperature < 1.5
    assert transition.loss_peak_height == pytest.approx(excess_loss.max(), rel=0.3)


def test_chi_loss_peak_across_a_gap_in_the_sampling_stays_on_the_highest_point():
    # A loaded demo sampled 48.93, 49.58, 50.21 K around the peak: smoothing by index
    # had put the maximum on the flank at 50.21 K.
    sample = SampleModel("mg_mgo")
    temperature, chi_real, chi_imag = susceptibility_ramp(sample, seed=7)
    in_gap = (temperature > 48.95) & (temperature < 50.2)
    kept = np.flatnonzero(in_gap)[np.argmax(chi_imag[in_gap])]
    keep = ~in_gap
    keep[kept] = True
    transition = find_susceptibility_transition(temperature[keep], chi_real[keep],
                                                chi_imag[keep])
    assert transition.found
    assert transition.loss_peak_temperature == pytest.approx(temperature[kept], abs=0.01)


@pytest.mark.parametrize(("kind", "nominal_tc"), [("pb", 7.2), ("nb", 9.25), ("mgb2", 39.0)])
@pytest.mark.parametrize("seconds_per_reading", [4.0, 6.0])
def test_reference_chi_onsets(kind, nominal_tc, seconds_per_reading):
    sample = SampleModel(kind)
    truth = sample.true_onsets()["chi_onset"]
    assert truth == pytest.approx(nominal_tc, abs=0.05)
    for seed in range(8):
        temperature, chi_real, _ = susceptibility_ramp(
            sample, seed, seconds_per_reading=seconds_per_reading)
        transition = find_susceptibility_transition(temperature, chi_real)
        assert transition.found, transition.reason
        assert transition.onset == pytest.approx(truth, abs=ONSET_TOLERANCE)
        # From the normal metal's eddy-current chi' at Tc down to -1 (Pb's normal state
        # rises by 0.02 in the half kelvin above Tc: the level is the one at the onset).
        normal = physics.bulk_normal_susceptibility(nominal_tc, 1550.0,
                                                    REFERENCES[kind]).real
        assert transition.step == pytest.approx(1.0 + normal, abs=0.02)


@pytest.mark.parametrize("kind", ["pb", "nb", "mgb2"])
def test_reference_dudi_onsets(kind):
    sample = SampleModel(kind)
    for seed in range(4):
        table = transport_ramp(sample, seed, biases=(0.0,), seconds_per_reading=6.0)
        transition = find_dudi_transition(table["temperature"], table["dudi"])
        assert transition.found, transition.reason
        assert transition.onset == pytest.approx(sample.true_onsets()["dudi_onset"],
                                                 abs=ONSET_TOLERANCE)


@pytest.fixture(scope="module")
def fresh_dudi_truth():
    sample = SampleModel("mg_mgo")
    return {bias: sample.true_onsets(bias_current=bias) for bias in PAPER_BIASES}


@pytest.mark.parametrize(("seed", "rate_k_per_min"), [(0, 1.5), (1, 1.5), (2, 1.0)])
def test_tc_against_bias_agrees_with_the_model(fresh_dudi_truth, seed, rate_k_per_min):
    table = transport_ramp(SampleModel("mg_mgo"), seed, rate_k_per_min=rate_k_per_min)
    result = tc_against_bias(table)
    assert tuple(result) == TC_TABLE_COLUMNS
    np.testing.assert_allclose(result["bias"], PAPER_BIASES, atol=1e-5)
    assert result["found"].all(), result["reason"]
    truth = [fresh_dudi_truth[bias] for bias in PAPER_BIASES]
    np.testing.assert_allclose(result["onset"], [t["dudi_onset"] for t in truth],
                               atol=ONSET_TOLERANCE)
    np.testing.assert_allclose(result["step"], [t["dudi_step"] for t in truth], rtol=0.02)
    assert np.all(np.diff(result["onset"]) < 0), "the onset must fall as the bias rises"
    assert np.all(np.diff(result["step"]) < 0), "the step must shrink as the bias rises"
    assert np.all(result["midpoint"] < result["onset"])
    # every found onset states its 68 % interval, and the truth is rarely far outside it
    assert np.all(result["onset_error"] > 0), result["onset_error"]
    assert np.all(result["onset_error"] < ONSET_TOLERANCE)
    assert np.all(np.isfinite(result["midpoint_error"]))
    assert result["width_error"].dtype == float


def test_tc_table_units_cover_its_columns_and_errors_share_their_values_unit():
    assert tuple(TC_TABLE_UNITS) == TC_TABLE_COLUMNS
    for column in TC_TABLE_COLUMNS:
        if column.endswith("_error"):
            assert TC_TABLE_UNITS[column] == TC_TABLE_UNITS[column.removesuffix("_error")] == "K"


def test_biased_onset_takes_the_zero_bias_step_as_reference(fresh_dudi_truth):
    table = transport_ramp(SampleModel("mg_mgo"), seed=4)
    rows = np.abs(table["bias"] - 0.4) < 1e-3
    zero_bias_step = fresh_dudi_truth[0.0]["dudi_step_zero_bias"]
    own = find_dudi_transition(table["temperature"][rows], table["dudi"][rows])
    shared = find_dudi_transition(table["temperature"][rows], table["dudi"][rows],
                                  reference_step=zero_bias_step)
    assert shared.reference_step == zero_bias_step
    assert own.reference_step == pytest.approx(own.step)
    # 10 % of the larger zero-bias step lies deeper in the drop
    assert shared.onset < own.onset
    assert shared.onset == pytest.approx(fresh_dudi_truth[0.4]["dudi_onset"], abs=0.1)
    assert shared.midpoint == own.midpoint and shared.width == own.width


def test_tc_table_without_the_reference_bias_uses_each_own_step():
    table = transport_ramp(SampleModel("mg_mgo"), seed=5, biases=(0.2, 0.4))
    result = tc_against_bias(table)
    own = tc_against_bias(table, reference_bias=None)
    np.testing.assert_array_equal(result["onset"], own["onset"])
    assert result["found"].all()


def test_tc_table_reads_a_dataframe_like_a_dict():
    pandas = pytest.importorskip("pandas")
    table = transport_ramp(SampleModel("mg_mgo"), seed=6)
    from_dict = tc_against_bias(table)
    from_frame = tc_against_bias(pandas.DataFrame(table))
    for column in TC_TABLE_COLUMNS:
        np.testing.assert_array_equal(from_dict[column], from_frame[column])


def test_tc_table_names_missing_columns():
    with pytest.raises(KeyError, match="bias_current"):
        tc_against_bias({"temperature": [1.0], "dudi": [1.0]}, bias="bias_current")


def test_no_transition_in_pure_mg_despite_its_loss_maximum():
    sample = SampleModel("pure_mg")
    for seed in range(3):
        temperature, chi_real, chi_imag = susceptibility_ramp(sample, seed)
        transition = find_susceptibility_transition(temperature, chi_real, chi_imag)
        assert_none(transition)
        assert math.isnan(transition.loss_peak_temperature)
        assert transition.significance < 8


def test_no_transition_after_30_minutes_at_room_temperature():
    sample = degraded_sample()
    temperature, chi_real, chi_imag = susceptibility_ramp(sample, seed=11)
    assert_none(find_susceptibility_transition(temperature, chi_real, chi_imag))
    result = tc_against_bias(transport_ramp(sample, seed=11))
    assert not result["found"].any()
    assert np.isnan(result["onset"]).all() and np.isnan(result["step"]).all()
    assert np.isnan(result["onset_error"]).all()
    assert all("no departure" in reason for reason in result["reason"])


@pytest.mark.parametrize("kind", ["mg_mgo", "pure_mg"])
def test_no_transition_on_metal_contacts(kind):
    # About 0.2 to 1.7 uOhm of monotonic metal resistance under 0.57 uOhm of noise.
    result = tc_against_bias(transport_ramp(SampleModel(kind), seed=12, contacts="core"))
    assert len(result["bias"]) == len(PAPER_BIASES)
    assert not result["found"].any(), result["reason"]


def test_a_half_degraded_sample_still_shows_its_transition():
    sample = SampleModel("mg_mgo")
    sample.advance(15 * MINUTE, ROOM_TEMPERATURE)
    temperature, chi_real, _ = susceptibility_ramp(sample, seed=13)
    transition = find_susceptibility_transition(temperature, chi_real)
    assert transition.found
    assert transition.onset == pytest.approx(sample.true_onsets()["chi_onset"],
                                             abs=ONSET_TOLERANCE)


def test_noise_free_curves():
    temperature = np.arange(4.5, 70.0, 0.1)
    transition = find_susceptibility_transition(
        temperature, SampleModel("mg_mgo").susceptibility(temperature).real)
    assert transition.onset == pytest.approx(SampleModel("mg_mgo").true_onsets()["chi_onset"],
                                             abs=0.05)
    # Without noise every misfit of the quadratic background is "significant"; the
    # departure must also be a real share of the drop.
    assert_none(find_susceptibility_transition(
        temperature, SampleModel("pure_mg").susceptibility(temperature).real))
    # Bloch-Grueneisen T^5 near 20 K outruns a quadratic background, but its slope falls on
    # cooling where a transition's rises.
    metal = find_dudi_transition(
        temperature, SampleModel("mg_mgo").dynamic_resistance(temperature, contacts="core"))
    assert_none(metal)
    assert "slope" in metal.reason


def test_sloping_background_onset_sits_below_the_level_onset():
    temperature, chi_real, _ = susceptibility_ramp(SampleModel("mg_mgo"), seed=14)
    level = find_susceptibility_transition(temperature, chi_real)
    sloping = find_susceptibility_transition(temperature, chi_real, sloping_background=True)
    # the Mg background keeps falling by about 0.009 per kelvin below the normal range
    # (0.09 K lower with the interface's 0.25 K Tc spread, a steeper onset than 0.6 K gave)
    assert 0.05 < level.onset - sloping.onset < 0.3
    assert sloping.step == level.step


def test_the_order_of_the_points_does_not_matter():
    temperature, chi_real, chi_imag = susceptibility_ramp(SampleModel("mg_mgo"), seed=15)
    order = np.argsort(temperature)
    shuffled = find_susceptibility_transition(temperature, chi_real, chi_imag)
    ordered = find_susceptibility_transition(temperature[order], chi_real[order],
                                             chi_imag[order])
    assert shuffled == ordered


def test_non_finite_points_are_dropped():
    temperature, chi_real, _ = susceptibility_ramp(SampleModel("mg_mgo"), seed=16)
    clean = find_susceptibility_transition(temperature, chi_real)
    spoiled_temperature, spoiled_chi = temperature.copy(), chi_real.copy()
    spoiled_temperature[::50] = np.nan
    spoiled_chi[1::50] = np.inf
    spoiled = find_susceptibility_transition(spoiled_temperature, spoiled_chi)
    assert spoiled.found
    assert spoiled.onset == pytest.approx(clean.onset, abs=0.05)


def test_a_sharp_step_between_two_readings_is_flagged_unresolved():
    temperature = np.arange(4.55, 70.0, 0.3)
    rng = np.random.default_rng(17)
    signal = np.where(temperature < 20.0, -1.0, 0.0) + 1e-3 * rng.standard_normal(
        temperature.size)
    transition = find_step_transition(temperature, signal, onset_fraction=0.05)
    assert transition.found
    assert not transition.resolved
    assert transition.onset == pytest.approx(20.0, abs=0.15)
    assert transition.width == pytest.approx(0.3, abs=1e-9)
    assert "sampling interval" in transition.reason


def test_a_sharp_step_under_a_steep_normal_state_is_measured_from_its_fit():
    # A normal state falling 0.05 per K, six times the 5 % onset level within a kelvin (as a
    # high-purity metal's eddy currents above a low Tc): a constant normal level taken above
    # the transition would put the onset in the normal state itself.
    temperature = np.arange(4.5, 30.0, 0.15)
    rng = np.random.default_rng(21)
    normal = -0.83 + 0.05 * (temperature - 7.2)
    signal = np.where(temperature < 7.2, -1.0, normal) + 2e-3 * rng.standard_normal(
        temperature.size)
    transition = find_step_transition(temperature, signal, onset_fraction=0.05)
    assert transition.found, transition.reason
    assert "steep normal state" in transition.reason
    assert transition.onset == pytest.approx(7.2, abs=0.15)
    assert transition.step == pytest.approx(0.17, abs=0.01)
    # Curves whose normal state is flat on that scale keep the constant level.
    temperature, chi_real, _ = susceptibility_ramp(SampleModel("mg_mgo"), seed=22)
    assert "steep" not in find_susceptibility_transition(temperature, chi_real).reason


def test_a_step_of_a_few_sigma_is_not_a_transition():
    temperature = np.arange(4.5, 70.0, 0.15)
    rng = np.random.default_rng(18)
    sigma = 1e-3
    signal = 2 * sigma * (np.tanh((temperature - 40.0) / 0.5) - 1) / 2 + sigma * (
        rng.standard_normal(temperature.size))
    assert_none(find_step_transition(temperature, signal, onset_fraction=0.05))


def test_a_drift_kink_in_a_flat_curve_is_not_a_transition():
    temperature = np.arange(4.5, 70.0, 0.03)
    rng = np.random.default_rng(19)
    times = (temperature - 4.5) * MINUTE
    signal = 1e-3 * rng.standard_normal(temperature.size) + slow_drift(rng, times, 2e-3, 600.0)
    transition = find_step_transition(temperature, signal, onset_fraction=0.05)
    assert_none(transition)


def test_point_noise_ignores_the_transition():
    temperature, chi_real, chi_imag = susceptibility_ramp(SampleModel("mg_mgo"), seed=20,
                                                          noise=3e-3)
    assert point_noise(temperature, chi_imag) == pytest.approx(3e-3, rel=0.15)
    assert math.isnan(point_noise([1.0, 2.0], [0.0, 1.0]))


def test_too_short_a_curve_is_refused_with_a_reason():
    transition = find_dudi_transition(np.arange(10.0), np.arange(10.0))
    assert_none(transition)
    assert "10 finite points" in transition.reason
    no_normal_range = find_dudi_transition(np.linspace(4.5, 8.0, 50), np.ones(50))
    assert_none(no_normal_range)
    assert "normal-state range" in no_normal_range.reason


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="same length"):
        find_dudi_transition([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="onset_fraction"):
        find_step_transition(np.arange(30.0), np.arange(30.0), onset_fraction=0.7)
    with pytest.raises(ValueError, match="reference_step"):
        find_dudi_transition(np.arange(30.0), np.arange(30.0), reference_step=-1.0)
    with pytest.raises(ValueError, match="departure_window"):
        TransitionCriteria(departure_window=0.0)
    with pytest.raises(ValueError, match="bias_tolerance"):
        tc_against_bias({"temperature": [], "dudi": [], "bias": []}, bias_tolerance=-1.0)
