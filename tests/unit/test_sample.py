"""Unit tests of ioc_sim.sample.SampleModel: kinds, degradation history, onsets, speed."""

import math
import time

import numpy as np
import pytest

from tcstation.ioc_sim import physics
from tcstation.ioc_sim.sample import CONTACT_KINDS, SAMPLE_KINDS, SampleModel

MINUTE = 60.0
ROOM = 295.0


@pytest.fixture(scope="module")
def fresh_onsets():
    """true_onsets of a fresh Mg/MgO sample at the paper's four bias currents."""
    sample = SampleModel("mg_mgo")
    return {bias: sample.true_onsets(bias_current=bias) for bias in (0.0, 0.2, 0.3, 0.4)}


def test_unknown_kind_is_refused_with_the_allowed_kinds():
    with pytest.raises(ValueError, match=r"'pb2'.*|.*'pb2'") as error:
        SampleModel("pb2")
    assert all(kind in str(error.value) for kind in SAMPLE_KINDS)
    sample = SampleModel()
    with pytest.raises(ValueError, match="pb2"):
        sample.mount("pb2")
    assert sample.kind == "mg_mgo"


def test_unknown_contacts_are_refused():
    sample = SampleModel()
    with pytest.raises(ValueError, match="edge") as error:
        sample.dynamic_resistance(10.0, contacts="edge")
    assert all(contacts in str(error.value) for contacts in CONTACT_KINDS)


def test_mount_gives_a_fresh_sample():
    sample = SampleModel("mg_mgo")
    sample.advance(20 * MINUTE, ROOM)
    assert sample.theta > 0 and sample.warm_seconds == 20 * MINUTE
    sample.mount("mg_mgo")
    assert sample.theta == 0.0 and sample.warm_seconds == 0.0
    assert sample.superconducting_fraction == 1.0


def test_max_safe_temperature_and_fraction_by_kind():
    expected_fraction = {"pure_mg": 0.0, "mg_mgo": 1.0, "pb": 1.0, "nb": 1.0, "mgb2": 1.0}
    for kind in SAMPLE_KINDS:
        sample = SampleModel(kind)
        assert sample.max_safe_temperature == (77.0 if kind == "mg_mgo" else 400.0)
        assert sample.superconducting_fraction == expected_fraction[kind]


def test_degradation_keeps_theta_as_memory():
    sample = SampleModel("mg_mgo")
    sample.advance(15 * MINUTE, ROOM)
    assert sample.superconducting_fraction == pytest.approx(0.81, abs=0.01)
    sample.advance(2 * 3600.0, 4.5)
    sample.advance(15 * MINUTE, ROOM)
    # exp(-theta^4) with theta summed: 0.03, not the product of two exposures, 0.81^2.
    assert sample.superconducting_fraction == pytest.approx(0.03, abs=0.005)
    assert sample.warm_seconds == 30 * MINUTE


def test_nothing_happens_at_or_below_77_k():
    sample = SampleModel("mg_mgo")
    sample.advance(30 * 24 * 3600.0, 77.0)
    assert sample.superconducting_fraction == 1.0
    assert sample.warm_seconds == 0.0
    sample.advance(10.0, 77.5)
    assert sample.warm_seconds == 10.0


def test_advance_refuses_bad_arguments():
    sample = SampleModel()
    with pytest.raises(ValueError, match="-1"):
        sample.advance(-1.0, 300.0)
    with pytest.raises(ValueError, match="nan"):
        sample.advance(1.0, math.nan)


@pytest.mark.parametrize("kind", ["pure_mg", "pb", "nb", "mgb2"])
def test_other_samples_do_not_degrade(kind):
    sample = SampleModel(kind)
    before = sample.susceptibility(20.0)
    sample.advance(10 * 3600.0, ROOM)
    assert sample.warm_seconds == 10 * 3600.0
    assert sample.susceptibility(20.0) == before


def test_degraded_mg_mgo_approaches_pure_mg():
    sample = SampleModel("mg_mgo")
    pure = SampleModel("pure_mg")
    sample.advance(45 * MINUTE, ROOM)
    temperatures = np.linspace(4.5, 70.0, 200)
    assert np.allclose(sample.susceptibility(temperatures), pure.susceptibility(temperatures),
                       rtol=0, atol=1e-6)
    # No junction superconducts: the normal state, a metal's rising curve (curve 6).
    normal = physics.surface_background_resistance(temperatures) + 2.0e-3
    assert np.allclose(sample.dynamic_resistance(temperatures), normal, rtol=1e-9)


def test_contacts():
    mg_mgo, pure = SampleModel("mg_mgo"), SampleModel("pure_mg")
    core = physics.core_resistance(30.0)
    assert mg_mgo.dynamic_resistance(30.0, contacts="core") == pytest.approx(core)
    assert pure.dynamic_resistance(30.0, contacts="core") == pytest.approx(core)
    assert pure.dynamic_resistance(30.0, contacts="surface") == pytest.approx(core)
    assert mg_mgo.dynamic_resistance(60.0) == pytest.approx(5.0e-3)
    assert mg_mgo.dynamic_resistance(4.5) == pytest.approx(
        physics.surface_background_resistance(4.5))
    assert mg_mgo.dynamic_resistance(4.5) == pytest.approx(3.0e-3, rel=0.015)


def test_scalar_and_array_results():
    sample = SampleModel()
    assert isinstance(sample.susceptibility(30.0), complex)
    assert isinstance(sample.dynamic_resistance(30.0), float)
    assert sample.susceptibility(np.array([10.0, 30.0])).shape == (2,)
    assert sample.dynamic_resistance(np.array([10.0, 30.0, 60.0])).shape == (3,)


@pytest.mark.parametrize(("kind", "tc", "tolerance"), [
    ("pb", 7.2, 0.1), ("nb", 9.25, 0.15), ("mgb2", 39.0, 1.0)])
def test_references(kind, tc, tolerance):
    sample = SampleModel(kind)
    onsets = sample.true_onsets()
    assert onsets["chi_onset"] == pytest.approx(tc, abs=tolerance)
    assert onsets["tc_interface"] == tc
    assert sample.susceptibility(4.5).real == pytest.approx(-1.0, abs=0.01)
    assert sample.dynamic_resistance(4.5) == pytest.approx(0.0, abs=1e-12)
    assert sample.dynamic_resistance(tc + 1.0) > 0.9 * sample.dynamic_resistance(60.0)


def test_true_onsets_of_fresh_mg_mgo(fresh_onsets):
    zero_bias = fresh_onsets[0.0]
    assert zero_bias["chi_onset"] == pytest.approx(50.0, abs=1.0)
    assert zero_bias["tc_interface"] == physics.PAPER_SHELL.tc
    assert zero_bias["tc_junctions"] == physics.PAPER_JUNCTIONS.tc
    expected = {0.0: (53.75, 1.00), 0.2: (52.0, 0.85), 0.3: (51.0, 0.72), 0.4: (50.25, 0.63)}
    for bias, (onset, ratio) in expected.items():
        assert fresh_onsets[bias]["dudi_onset"] == pytest.approx(onset, abs=0.5)
        step_ratio = fresh_onsets[bias]["dudi_step"] / fresh_onsets[bias]["dudi_step_zero_bias"]
        assert step_ratio == pytest.approx(ratio, abs=0.05)


def test_true_onsets_interpolation_matches_a_dense_grid(fresh_onsets):
    sample = SampleModel("mg_mgo")
    temperatures = np.arange(52.5, 51.5, -0.0005)
    curve = sample.dynamic_resistance(temperatures, bias_current=0.2)
    target = sample.dynamic_resistance(60.0, 0.2) - 0.1 * fresh_onsets[0.2]["dudi_step_zero_bias"]
    dense = temperatures[np.argmax(curve <= target)]
    assert fresh_onsets[0.2]["dudi_onset"] == pytest.approx(dense, abs=0.002)


@pytest.mark.parametrize(("kind", "contacts", "warm_minutes"), [
    ("pure_mg", "surface", 0.0), ("mg_mgo", "core", 0.0), ("mg_mgo", "surface", 60.0)])
def test_true_onsets_are_nan_without_a_transition(kind, contacts, warm_minutes):
    sample = SampleModel(kind)
    sample.advance(warm_minutes * MINUTE, ROOM)
    onsets = sample.true_onsets(contacts=contacts)
    assert math.isnan(onsets["dudi_onset"])
    if contacts == "surface":
        assert math.isnan(onsets["chi_onset"])


def test_true_onsets_follow_the_degradation(fresh_onsets):
    sample = SampleModel("mg_mgo")
    sample.advance(15 * MINUTE, ROOM)
    onsets = sample.true_onsets()
    assert onsets["connected_fraction"] == pytest.approx((0.806 - 0.1) / 0.9, abs=0.01)
    assert onsets["dudi_onset"] < fresh_onsets[0.0]["dudi_onset"]
    assert onsets["chi_onset"] < fresh_onsets[0.0]["chi_onset"]


def test_true_onsets_are_cached_and_copied(fresh_onsets):
    sample = SampleModel("mg_mgo")
    first = sample.true_onsets(hac_oe=1.0)
    start = time.perf_counter()
    second = sample.true_onsets(hac_oe=1.0 + 1e-9)
    assert time.perf_counter() - start < 0.01
    assert second == first
    second["chi_onset"] = 0.0
    assert sample.true_onsets(hac_oe=1.0)["chi_onset"] == first["chi_onset"]
    assert first["chi_onset"] < fresh_onsets[0.0]["chi_onset"]


def test_thirty_minutes_warm_leaves_no_transition_at_all():
    sample = SampleModel("mg_mgo")
    sample.advance(30 * MINUTE, ROOM)
    assert sample.superconducting_fraction == pytest.approx(0.03, abs=0.005)
    assert sample.connected_fraction == 0.0
    onsets = sample.true_onsets()
    assert math.isnan(onsets["chi_onset"])
    assert math.isnan(onsets["dudi_onset"])


def test_fifteen_minutes_warm_keeps_most_of_the_transition():
    fresh = SampleModel("mg_mgo")
    warmed = SampleModel("mg_mgo")
    warmed.advance(15 * MINUTE, ROOM)
    fresh_step = fresh.dynamic_resistance(60.0) - fresh.dynamic_resistance(4.5)
    warmed_step = warmed.dynamic_resistance(60.0) - warmed.dynamic_resistance(4.5)
    # A share f of the links survives (and each is weakened): a clear, smaller step.
    assert 0.6 * fresh_step < warmed_step < 0.9 * fresh_step
    fresh_shielding = fresh.susceptibility(60.0).real - fresh.susceptibility(4.5).real
    warmed_shielding = warmed.susceptibility(60.0).real - warmed.susceptibility(4.5).real
    assert 0.6 * fresh_shielding < warmed_shielding < 0.95 * fresh_shielding
