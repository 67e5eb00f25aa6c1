"""Checkpoints of shared/physics.md section 7: the simulator against the paper (issue 13).

Each test is one refinement of section 7, noise off, through ``SampleModel`` (what the IOC
evaluates). Where the note gives no number, the test says what it takes and why. The
seventh refinement (field suppression of the chi' onset) is
``test_field_moves_chi_prime_onset_down`` in ``tests/unit/test_physics.py``: the 200 Oe dc
case passes, the 1 Oe ac case is a strict xfail that says why.
"""

import math

import numpy as np
import pytest

from tcstation.ioc_sim import physics
from tcstation.ioc_sim.sample import SampleModel

MINUTE = 60.0
ROOM = 295.0
LOWEST_TEMPERATURE = 4.5
PAPER_BIASES = (0.0, 0.2, 0.3, 0.4)
STEP_RATIOS = {0.0: 1.00, 0.2: 0.85, 0.3: 0.72, 0.4: 0.63}
"""Step at each bias over the zero-bias step, the table of physics note section 4."""
RATIO_TOLERANCE = 0.05
BELOW_ONSET_RATIO_TOLERANCE = 0.07
"""Section 7 asks for "about 0.85, 0.72, 0.63" just below the onsets; two log-normal
populations with Ic ~ (1 - T/Tc) reach 0.79, 0.73, 0.68 (``JunctionNetwork``), where the
shared shelf of the note's populations gave 0.59, 0.57, 0.53."""
BELOW_ONSET = 3.0
"""K: section 7 measures the step over the 3 K below each bias's onset."""
# Point noise of dU/dI at the plans' lock-in settings (300 ms, 12 dB/oct, 13 Hz, 24 mA):
# 15 nV/sqrt(Hz) over 1/(8 tau), as dU/dI = sqrt(2) X_rms / Iac: 0.57 uOhm.
DUDI_POINT_NOISE = math.sqrt(2.0) * 15e-9 * math.sqrt(1.0 / (8 * 0.3)) / 0.024
CHI_NOISE_HIGH = 3e-3
"""The upper end of the susceptometer noise, sigma(4 pi chi) 1 to 3e-3 (section 6)."""


def exposed(minutes):
    sample = SampleModel("mg_mgo")
    sample.advance(minutes * MINUTE, ROOM)
    return sample


@pytest.fixture(scope="module")
def fresh():
    sample = SampleModel("mg_mgo")
    return sample, {bias: sample.true_onsets(bias_current=bias) for bias in PAPER_BIASES}


# 1 ------------------------------------------------------------------------------------------


def step_below_onset(sample, onsets, bias):
    """Normal level (60 K) minus dU/dI 3 K below this bias's own onset, ohm."""
    normal, below = sample.dynamic_resistance(
        np.array([60.0, onsets[bias]["dudi_onset"] - BELOW_ONSET]), bias_current=bias)
    return normal - below


def test_step_just_below_each_onset_falls_with_the_bias_as_in_the_table(fresh):
    """Not one shared shelf: the step right below each onset shrinks with the bias.

    The step of each bias is taken at 3 K below its own onset (the bottom of section 7's
    window) and divided by the zero-bias step taken the same way; both the ratios (within
    :data:`BELOW_ONSET_RATIO_TOLERANCE`) and the ratios at 4.5 K (within 0.05,
    test_physics.test_dudi_step_ratio_table) follow the section-4 table.
    """
    sample, onsets = fresh
    steps = {bias: step_below_onset(sample, onsets, bias) for bias in PAPER_BIASES}
    ratios = {bias: steps[bias] / steps[0.0] for bias in PAPER_BIASES}
    assert np.all(np.diff([steps[bias] for bias in PAPER_BIASES]) < 0), steps
    for bias, expected in STEP_RATIOS.items():
        assert ratios[bias] == pytest.approx(expected, abs=BELOW_ONSET_RATIO_TOLERANCE), ratios


# 2 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mg_mgo", "pure_mg"])
def test_core_contact_curve_is_visibly_metallic(kind):
    """From 4.5 K to 70 K the core curve rises monotonically by over ten point noises.

    We chose the spreading resistance of pins through a punctured oxide (R295 100 uOhm, see
    ``MagnesiumCore.resistance_295``) over a longer time constant on core runs.
    """
    temperatures = np.arange(LOWEST_TEMPERATURE, 70.0 + 1e-9, 0.1)
    curve = SampleModel(kind).dynamic_resistance(temperatures, contacts="core")
    assert np.all(np.diff(curve) > 0)
    assert curve[-1] - curve[0] > 10.0 * DUDI_POINT_NOISE


# 3 ------------------------------------------------------------------------------------------


def test_degraded_curve_6_and_the_normal_state_have_the_metals_slope():
    """Curve 6 (30 min at 295 K) and the normal state above the junctions follow a metal.

    Monotonic, rising by over ten point noises from 4.5 K to 70 K, and in the shape of Mg's
    phonon resistivity (Matthiessen's rule: a constant residual plus the metal's phonon
    part, ``physics.surface_background_resistance``), not a constant.
    """
    temperatures = np.arange(LOWEST_TEMPERATURE, 70.0 + 1e-9, 0.1)
    curve_6 = exposed(30.0).dynamic_resistance(temperatures)
    assert np.all(np.diff(curve_6) > 0)
    assert curve_6[-1] - curve_6[0] > 10.0 * DUDI_POINT_NOISE
    rho = physics.mg_resistivity(temperatures)
    shape = (curve_6 - curve_6[0]) / (curve_6[-1] - curve_6[0])
    assert shape == pytest.approx((rho - rho[0]) / (rho[-1] - rho[0]), abs=1e-9)
    normal = np.arange(56.0, 70.0, 0.5)
    for bias in PAPER_BIASES:
        assert np.all(np.diff(SampleModel("mg_mgo").dynamic_resistance(normal, bias)) > 0)


# 4 ------------------------------------------------------------------------------------------


def junction_step(sample):
    """Zero-bias step of the junctions alone: the metal background's own fall taken out."""
    ends = np.array([60.0, LOWEST_TEMPERATURE])
    dudi = sample.dynamic_resistance(ends)
    background = physics.surface_background_resistance(ends)
    return float((dudi[0] - background[0]) - (dudi[1] - background[1]))


def shielding(sample):
    chi = sample.susceptibility(np.array([60.0, LOWEST_TEMPERATURE]))
    return float(chi[0].real - chi[1].real)


def test_transport_degrades_gradually_as_the_shielding_does():
    """Over 15 to 30 min at 295 K the dU/dI step fades continuously, as chi's shielding.

    The note gives no number for "as chi's shielding does": we take that the step's share
    of its fresh value stays within 0.15 of the shielding's share of its own (the part of
    the drop in chi' the interface makes, pure Mg's subtracted) at every minute, that 15
    min leaves at least half the step, and that 30 min leaves less than three point noises.
    """
    fresh_step = junction_step(SampleModel("mg_mgo"))
    pure = shielding(SampleModel("pure_mg"))
    fresh_shielding = shielding(SampleModel("mg_mgo")) - pure
    minutes = np.arange(15.0, 30.5, 1.0)
    steps = np.array([junction_step(exposed(m)) for m in minutes]) / fresh_step
    shares = np.array([shielding(exposed(m)) - pure for m in minutes]) / fresh_shielding
    assert steps[0] > 0.5
    alive = steps > 0
    assert np.all(np.diff(steps[alive]) < 0), dict(zip(minutes, steps, strict=True))
    assert steps[-1] * fresh_step < 3.0 * DUDI_POINT_NOISE
    assert np.max(np.abs(steps - shares)) < 0.15, dict(zip(minutes, steps - shares, strict=True))


# 5 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", [physics.NIOBIUM, physics.LEAD],
                         ids=["Nb", "Pb"])
def test_high_purity_references_conduct_above_tc(reference):
    """High-purity Pb and Nb at 1550 Hz: 4 pi chi' between -0.8 and -0.7 at Tc + 1 K."""
    chi = physics.bulk_superconductor_susceptibility(reference.tc + 1.0, 1550.0, reference)
    assert -0.8 <= chi.real <= -0.7
    assert chi.imag > 0, "a good conductor above Tc dissipates by eddy currents"


def test_mounted_nb_reads_its_normal_metal_above_tc():
    chi = SampleModel("nb").susceptibility(physics.NIOBIUM.tc + 1.0)
    assert -0.8 <= chi.real <= -0.7


def test_mounted_pb_reads_its_normal_metal_above_tc():
    """The mounted Pb is its own metal above Tc: -0.8 to -0.7 at Tc + 1 K, steep above that.

    Pb's phonon resistivity rises as about T^5 from Tc up (theta_R 86 K), so its normal
    state is not flat: 4 pi chi' climbs by over 0.3 between Tc + 1 K and Tc + 7 K.
    test_analysis_transitions.test_reference_chi_onsets finds its onset all the same.
    """
    pb = SampleModel("pb")
    chi = pb.susceptibility(physics.LEAD.tc + 1.0)
    assert -0.8 <= chi.real <= -0.7
    assert pb.susceptibility(physics.LEAD.tc + 7.0).real - chi.real > 0.3


# 6 ------------------------------------------------------------------------------------------


def test_chi_double_prime_loss_peak_is_sharp():
    """The chi'' maximum in the transition stands 20 chi noises (3e-3) above pure Mg's.

    It is also the maximum of the excess loss within 1.5 K below the chi' onset (section 3).
    """
    sample = SampleModel("mg_mgo")
    onset = sample.true_onsets()["chi_onset"]
    temperatures = np.arange(onset - 6.0, onset + 3.0, 0.01)
    excess = (sample.susceptibility(temperatures).imag
              - SampleModel("pure_mg").susceptibility(temperatures).imag)
    peak = np.argmax(excess)
    assert excess[peak] >= 20.0 * CHI_NOISE_HIGH
    assert 0 < onset - temperatures[peak] < 1.5
