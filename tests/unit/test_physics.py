"""Unit tests of ioc_sim.physics against the numbers in shared/physics.md.

Every checkpoint of "What a test can hold the simulator to (noise off)" is its own test,
named ``test_checkpoint_*``; the other "Expected" numbers of the sections follow. Onsets are
computed here on a grid, independently of ``SampleModel.true_onsets``.
"""

import dataclasses
import math

import numpy as np
import pytest
from scipy import integrate

from tcstation.ioc_sim import physics

KELVIN_GRID_STEP = 0.01
LOWEST_TEMPERATURE = 4.5
PAPER_BIASES = (0.0, 0.2, 0.3, 0.4)
EXCITATION = 0.024

# Noise levels of physics.md section 6, for the checks that say "within noise".
SUSCEPTOMETER_NOISE = 1e-3
LOCKIN_INPUT_NOISE = 15e-9  # V/sqrt(Hz) at 13 Hz
SHORTEST_TIME_CONSTANT = 0.1  # s, at 12 dB/oct: the noisiest setting we would measure at


def crossing_temperature(temperatures, values, target):
    """Highest temperature where ``values`` fall to ``target``, interpolated linearly."""
    order = np.argsort(temperatures)[::-1]
    t, v = np.asarray(temperatures)[order], np.asarray(values)[order]
    below = np.flatnonzero(v <= target)
    if below.size == 0 or below[0] == 0:
        return math.nan
    i = below[0]
    return t[i - 1] + (target - v[i - 1]) * (t[i] - t[i - 1]) / (v[i] - v[i - 1])


def chi_onset(temperatures, chi, above_transition_index):
    """T where chi' has dropped 5 % of its drop from the normal state to the lowest T."""
    normal = chi.real[above_transition_index]
    drop = normal - chi.real[np.argmin(temperatures)]
    return crossing_temperature(temperatures, chi.real, normal - 0.05 * drop)


def shell_chi_onset(**kwargs):
    shell = kwargs.get("shell", physics.PAPER_SHELL)
    top = shell.tc + 4.0 * shell.tc_sigma
    temperatures = np.arange(top, LOWEST_TEMPERATURE - 1e-9, -KELVIN_GRID_STEP)
    chi = physics.interface_shell_susceptibility(temperatures, **kwargs)
    return chi_onset(temperatures, chi, 0), temperatures, chi


def local_maxima(values):
    inner = (values[1:-1] > values[:-2]) & (values[1:-1] >= values[2:])
    return np.flatnonzero(inner) + 1


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pure_mg_curve():
    temperatures = np.arange(LOWEST_TEMPERATURE, 70.0 + 1e-9, KELVIN_GRID_STEP)
    return temperatures, physics.magnesium_sphere_susceptibility(temperatures)


@pytest.fixture(scope="module")
def shell_curve():
    return shell_chi_onset()


@pytest.fixture(scope="module")
def dudi_curves():
    """dU/dI(T) from 60 K down to 4.5 K at each bias, and the zero-bias step."""
    temperatures = np.arange(60.0, LOWEST_TEMPERATURE - 1e-9, -0.02)
    biases = (0.0, 0.1, 0.2, 0.3, 0.4)
    curves = {bias: physics.junction_network_dudi(temperatures, bias, EXCITATION)
              for bias in biases}
    zero_bias_step = curves[0.0][0] - curves[0.0][-1]
    return temperatures, curves, zero_bias_step


def dudi_onset(temperatures, curve, zero_bias_step):
    return crossing_temperature(temperatures, curve, curve[0] - 0.1 * zero_bias_step)


# --------------------------------------------------------------------------------------------
# Checkpoints (noise off)
# --------------------------------------------------------------------------------------------


def test_checkpoint_pure_mg_chi_prime_falls_monotonically_on_cooling(pure_mg_curve):
    temperatures, chi = pure_mg_curve
    assert np.all(np.diff(chi.real) > 0), "chi' must rise with T, i.e. fall on cooling"


def test_checkpoint_pure_mg_chi_double_prime_maximum_near_37_k(pure_mg_curve):
    temperatures, chi = pure_mg_curve
    assert temperatures[np.argmax(chi.imag)] == pytest.approx(37.0, abs=3.0)


def test_checkpoint_mg_mgo_chi_prime_onset_50_k(shell_curve):
    onset, _, _ = shell_curve
    assert onset == pytest.approx(50.0, abs=1.0)


def test_checkpoint_mg_mgo_chi_at_4_5_k():
    chi = physics.interface_shell_susceptibility(LOWEST_TEMPERATURE)
    assert -1.0 < chi.real < -0.7
    assert chi.imag > 0


def test_checkpoint_dudi_onset_at_zero_bias_53_5_k(dudi_curves):
    temperatures, curves, step = dudi_curves
    assert dudi_onset(temperatures, curves[0.0], step) == pytest.approx(53.5, abs=1.0)


def test_checkpoint_dudi_onset_and_step_fall_strictly_as_bias_rises(dudi_curves):
    temperatures, curves, step = dudi_curves
    biases = sorted(curves)
    onsets = [dudi_onset(temperatures, curves[bias], step) for bias in biases]
    steps = [curves[bias][0] - curves[bias][-1] for bias in biases]
    assert np.all(np.diff(onsets) < 0), onsets
    assert np.all(np.diff(steps) < 0), steps


def test_checkpoint_dudi_at_4_5_k_above_0_4_of_60_k_at_every_bias(dudi_curves):
    temperatures, curves, _ = dudi_curves
    for bias, curve in curves.items():
        assert temperatures[-1] == pytest.approx(LOWEST_TEMPERATURE)
        assert curve[-1] > 0.4 * curve[0], bias


def degraded_for(minutes, temperature=295.0):
    theta = minutes * 60.0 * physics.degradation_rate(temperature)
    return physics.superconducting_fraction(theta)


def test_checkpoint_after_30_min_at_295_k_no_step_and_chi_of_pure_mg():
    fraction = physics.percolating_fraction(degraded_for(30.0))
    ends = np.array([60.0, LOWEST_TEMPERATURE])
    # The metallic background falls on cooling as it did before the exposure: no step is
    # what the junctions add to it.
    dudi = (physics.junction_network_dudi(ends, 0.0, EXCITATION, fraction)
            - physics.surface_background_resistance(ends))
    bandwidth = physics.lockin_noise_bandwidth(SHORTEST_TIME_CONSTANT, 12)
    dudi_noise = math.sqrt(2.0) * LOCKIN_INPUT_NOISE * math.sqrt(bandwidth) / EXCITATION
    temperatures = np.arange(LOWEST_TEMPERATURE, 70.0, 0.05)
    chi = physics.interface_shell_susceptibility(temperatures, superconducting_fraction=fraction)
    pure = physics.magnesium_sphere_susceptibility(temperatures)
    assert dudi[0] - dudi[1] < 3.0 * dudi_noise
    assert np.max(np.abs(chi - pure)) < 3.0 * SUSCEPTOMETER_NOISE


@pytest.mark.parametrize(("reference", "tolerance"), [
    (physics.LEAD, 0.1), (physics.NIOBIUM, 0.15), (physics.MAGNESIUM_DIBORIDE, 1.0)],
    ids=["Pb", "Nb", "MgB2"])
def test_checkpoint_reference_chi_onsets(reference, tolerance):
    nominal = {physics.LEAD: 7.2, physics.NIOBIUM: 9.25, physics.MAGNESIUM_DIBORIDE: 39.0}
    temperatures = np.arange(reference.tc + 3.0, LOWEST_TEMPERATURE - 1e-9, -KELVIN_GRID_STEP)
    chi = physics.bulk_superconductor_susceptibility(temperatures, 1550.0, reference)
    assert chi.real[-1] == pytest.approx(-1.0, abs=0.01)
    rho = physics.bloch_grueneisen_resistivity(temperatures[0], reference.rho_295,
                                               reference.residual_resistance_ratio,
                                               reference.debye_temperature)
    normal_metal = physics.sphere_susceptibility(reference.radius,
                                                 physics.skin_depth(rho, 1550.0))
    assert abs(chi[0] - normal_metal) < 0.01, "above Tc the sphere is its normal metal"
    # The onset below the normal metal at each temperature: Pb's eddy-current chi' changes
    # by more than its 5 % onset level within 1 K above Tc, so a constant level will not do.
    rho = physics.bloch_grueneisen_resistivity(temperatures, reference.rho_295,
                                               reference.residual_resistance_ratio,
                                               reference.debye_temperature)
    normal_curve = physics.sphere_susceptibility(reference.radius,
                                                 physics.skin_depth(rho, 1550.0))
    onset = crossing_temperature(temperatures, chi.real - normal_curve.real,
                                 -0.05 * (normal_curve.real[-1] - chi.real[-1]))
    assert onset == pytest.approx(nominal[reference], abs=tolerance)


# --------------------------------------------------------------------------------------------
# 1. Resistivity and skin depth
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [1e-3, 0.2, 1.0, 0.678, 5.0, 44.4, 59.0, 200.0])
def test_bloch_grueneisen_integral_matches_adaptive_quadrature(z):
    def integrand(x):
        return x**5 * np.exp(-x) / np.expm1(-x) ** 2

    expected = integrate.quad(integrand, 0.0, z, limit=200, epsabs=0.0)[0]
    assert physics.bloch_grueneisen_integral(z) == pytest.approx(expected, rel=1e-10)


def test_bloch_grueneisen_integral_limits():
    assert physics.bloch_grueneisen_integral(1e-2) == pytest.approx(1e-8 / 4.0, rel=1e-3)
    assert physics.bloch_grueneisen_integral(1e3) == pytest.approx(
        120.0 * 1.0369277551433699, rel=1e-12)  # 5! zeta(5)


def test_resistivity_at_room_temperature_and_residual():
    assert physics.mg_resistivity(295.0) == pytest.approx(4.4e-8, rel=1e-12)
    assert physics.mg_resistivity(0.0) == pytest.approx(4.4e-8 / 52.0, rel=1e-12)
    assert physics.mg_resistivity(2.0) == pytest.approx(4.4e-8 / 52.0, rel=1e-3)
    temperatures = np.linspace(1.0, 300.0, 300)
    assert np.all(np.diff(physics.mg_resistivity(temperatures)) > 0)


def test_skin_depth_at_room_temperature_is_2_68_mm():
    depth = physics.skin_depth(physics.mg_resistivity(295.0), 1550.0)
    assert depth == pytest.approx(2.68e-3, abs=0.005e-3)


def test_paper_preset_chi_double_prime_peak_values(pure_mg_curve):
    temperatures, chi = pure_mg_curve
    peak = np.argmax(chi.imag)
    assert temperatures[peak] == pytest.approx(37.0, abs=0.5)
    assert chi.imag[peak] == pytest.approx(0.355, abs=0.001)
    assert chi.imag[0] == pytest.approx(0.28, abs=0.005)


def test_physical_debye_temperature_gives_an_almost_flat_maximum(pure_mg_curve):
    _, paper = pure_mg_curve
    physical = dataclasses.replace(physics.PAPER_CORE, debye_temperature=400.0,
                                   residual_resistance_ratio=20.0)
    temperatures = np.arange(LOWEST_TEMPERATURE, 70.0, 0.05)
    chi = physics.magnesium_sphere_susceptibility(temperatures, core=physical)
    assert physics.mg_resistivity(295.0, 4.4e-8, 20.0, 400.0) == pytest.approx(4.4e-8)
    assert np.max(chi.imag) - chi.imag[0] < 0.01
    assert np.max(paper.imag) - paper.imag[0] > 0.05


# --------------------------------------------------------------------------------------------
# 2. Conducting sphere
# --------------------------------------------------------------------------------------------


def test_sphere_chi_double_prime_maximum_at_2_409():
    ratios = np.arange(1.0, 5.0, 1e-4)
    chi = physics.sphere_susceptibility(ratios, 1.0)
    peak = np.argmax(chi.imag)
    assert ratios[peak] == pytest.approx(2.409, abs=0.001)
    assert chi.imag[peak] == pytest.approx(0.3551, abs=1e-4)
    assert chi.real[peak] == pytest.approx(-0.366, abs=1e-3)


@pytest.mark.parametrize("ratio", [1e-4, 0.01, 0.03, 0.049, 0.051, 0.08])
def test_sphere_small_ratio_limit(ratio):
    chi = physics.sphere_susceptibility(ratio, 1.0)
    assert chi.real == pytest.approx(-(8.0 / 315.0) * ratio**4, rel=1e-3)
    assert chi.imag == pytest.approx((2.0 / 15.0) * ratio**2, rel=1e-3)


def test_sphere_series_joins_closed_form_at_0_05():
    below = physics.sphere_susceptibility(0.05 * (1 - 1e-9), 1.0)
    above = physics.sphere_susceptibility(0.05 * (1 + 1e-9), 1.0)
    assert below.real == pytest.approx(above.real, rel=1e-6)
    assert below.imag == pytest.approx(above.imag, rel=1e-6)


@pytest.mark.parametrize("ratio", [0.3, 1.0, 2.409, 5.0, 10.0])
def test_sphere_matches_naive_closed_form_where_that_is_accurate(ratio):
    x = (1 + 1j) * ratio
    naive = -(1.0 - 3.0 / x**2 + 3.0 / (np.tan(x) * x))
    assert physics.sphere_susceptibility(ratio, 1.0) == pytest.approx(naive, rel=1e-12)


@pytest.mark.parametrize("ratio", [1e2, 1e3, 1e6, 1e9, 1e15])
def test_sphere_large_ratio_limit_without_overflow(ratio):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        chi = physics.sphere_susceptibility(ratio, 1.0)
    assert chi.real == pytest.approx(-1.0 + 1.5 / ratio, rel=0, abs=1.5 / ratio**2 + 1e-15)
    assert chi.imag == pytest.approx(1.5 / ratio, rel=2.0 / ratio + 1e-9)


def test_perfect_conductor_is_a_perfect_diamagnet():
    assert physics.sphere_susceptibility(1e-3, 0.0) == -1.0


# --------------------------------------------------------------------------------------------
# 3. Interface shell
# --------------------------------------------------------------------------------------------


def test_bean_penetration_limits_and_shape():
    assert physics.bean_shell_penetration(0.0) == pytest.approx(1.0)
    assert physics.bean_shell_penetration(1.0) == 0
    assert physics.bean_shell_penetration(np.inf) == 0
    assert physics.bean_shell_penetration(0.5) == pytest.approx(0.5 + 1j / np.pi)
    b = np.linspace(0.0, 1.0, 1001)
    penetration = physics.bean_shell_penetration(b)
    assert np.all(np.diff(penetration.real) < 0)
    assert np.all(penetration.imag >= 0)
    with pytest.raises(ValueError, match="-0.1"):
        physics.bean_shell_penetration(-0.1)


def test_shell_without_superconductivity_is_pure_mg():
    temperatures = np.linspace(4.5, 70.0, 50)
    assert np.allclose(
        physics.interface_shell_susceptibility(temperatures, superconducting_fraction=0.0),
        physics.magnesium_sphere_susceptibility(temperatures), rtol=0, atol=1e-15)


def test_shell_chi_double_prime_local_maximum_within_1_5_k_below_onset(shell_curve):
    onset, temperatures, chi = shell_curve
    peaks = temperatures[local_maxima(chi.imag)]
    assert np.any((peaks < onset) & (peaks > onset - 1.5)), peaks


def transition_midpoint(temperatures, chi):
    normal = chi.real[0]
    return crossing_temperature(temperatures, chi.real, normal - 0.5 * (normal - chi.real[-1]))


def transition_loss_peak(temperatures, chi, onset):
    window = (temperatures < onset) & (temperatures > onset - 6.0)
    return temperatures[window][np.argmax(chi.imag[window])]


@pytest.mark.parametrize(("fields", "expected_shift"), [
    ({"hac": 1.0 * physics.OERSTED}, -1.5),
    ({"hdc": 200.0 * physics.OERSTED}, -2.7)], ids=["Hac_1_Oe", "Hdc_200_Oe"])
def test_field_moves_transition_down(shell_curve, fields, expected_shift):
    onset, temperatures, chi = shell_curve
    field_onset, _, field_chi = shell_chi_onset(**fields)
    midpoint_shift = (transition_midpoint(temperatures, field_chi)
                      - transition_midpoint(temperatures, chi))
    peak_shift = (transition_loss_peak(temperatures, field_chi, field_onset)
                  - transition_loss_peak(temperatures, chi, onset))
    assert field_onset < onset
    assert midpoint_shift == pytest.approx(expected_shift, abs=0.5)
    assert peak_shift == pytest.approx(expected_shift, abs=0.5)


AC_ONSET_XFAIL = pytest.mark.xfail(strict=True, reason=(
    "Checkpoint 7 of physics note section 7, open for the ac field. A dc field lowers the "
    "shell's Tc (InterfaceShell.hc2_slope, 71 Oe/K): onset -2.38 K, midpoint -2.73 K, peak "
    "-2.75 K at 200 Oe. An ac amplitude of 1 Oe cannot lower Tc (Hc2 shift 0.02 K); it acts "
    "through the Bean ratio b = Kc / (1.5 Hac), which stretches the transition about Tc "
    "rather than moving it: onset -0.41 K, midpoint -1.57 K, peak -1.31 K. Measured from a "
    "constant normal level at the zero-field top, as here, the Mg background's fall of "
    "0.009 per K also holds the onset up. Scanned without success: Kc ~ (1 - T/Tc)^p with p "
    "1.5 to 6, Kc0 5e3 to 5e6 A/m, Tc spread 0.25 to 1 K (best onset -0.64 K with midpoint "
    "-2.07 K); a graded interface whose layers' sheet currents add, Tc spread 1.5 to 4 K "
    "(best onset -0.85 K, midpoint -1.31 K, peak -1.30 K; measured below the pure-Mg curve "
    "instead, that onset moves -1.14 K)."))


@pytest.mark.parametrize(("fields", "expected_shift"), [
    pytest.param({"hac": 1.0 * physics.OERSTED}, -1.5, id="Hac_1_Oe", marks=AC_ONSET_XFAIL),
    pytest.param({"hdc": 200.0 * physics.OERSTED}, -2.7, id="Hdc_200_Oe")])
def test_field_moves_chi_prime_onset_down(shell_curve, fields, expected_shift):
    onset, _, _ = shell_curve
    field_onset, _, _ = shell_chi_onset(**fields)
    assert field_onset - onset == pytest.approx(expected_shift, abs=0.5)


# --------------------------------------------------------------------------------------------
# 4. Junctions and transport
# --------------------------------------------------------------------------------------------


def closed_form_first_harmonic(critical_current, bias, amplitude):
    """Lock-in dU/dI / RN of a junction with n = 1, by hand.

    V = RN (I - clip(I, -Ic, Ic)), so dU/dI / RN = 1 - (first harmonic of the clipped
    current) / Iac, integrated piecewise over [0, pi].
    """
    th1 = np.arccos(np.clip((critical_current - bias) / amplitude, -1, 1))
    th2 = np.arccos(np.clip((-critical_current - bias) / amplitude, -1, 1))
    clipped = (critical_current * np.sin(th1)
               + bias * (np.sin(th2) - np.sin(th1))
               + amplitude * (0.5 * (th2 - th1) + 0.25 * (np.sin(2 * th2) - np.sin(2 * th1)))
               + critical_current * np.sin(th2))
    return 1.0 - 2.0 * clipped / (np.pi * amplitude)


@pytest.mark.parametrize("bias", [0.0, 0.01, 0.2, 0.4, -0.3])
def test_junction_first_harmonic_matches_closed_form_for_n_1(bias):
    critical_currents = np.linspace(0.0, 0.5, 2001)
    computed = physics.junction_first_harmonic_resistance(critical_currents, 1.0, bias,
                                                          EXCITATION)
    expected = closed_form_first_harmonic(critical_currents, bias, EXCITATION)
    assert np.max(np.abs(computed - expected)) < 1e-9


def test_junction_first_harmonic_for_rsj_matches_adaptive_quadrature():
    bias = 0.2
    for critical_current in (0.0, 0.18, 0.2, 0.215, 0.223, 0.3):
        def integrand(th, ic=critical_current):
            return physics.junction_iv(bias + EXCITATION * np.cos(th), ic, 1.0, 2.0) * np.cos(th)

        expected = integrate.quad(integrand, 0, 2 * np.pi, limit=400)[0] / (np.pi * EXCITATION)
        computed = physics.junction_first_harmonic_resistance(critical_current, 1.0, bias,
                                                              EXCITATION, 2.0)
        assert computed == pytest.approx(expected, abs=1e-6)


def test_junction_first_harmonic_limits():
    normal = physics.junction_first_harmonic_resistance(0.0, 2.0, 0.3, EXCITATION)
    locked = physics.junction_first_harmonic_resistance(0.3 + EXCITATION, 2.0, 0.3, EXCITATION)
    assert normal == pytest.approx(2.0, rel=1e-9)
    assert locked == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="excitation_amplitude"):
        physics.junction_first_harmonic_resistance(0.1, 1.0, 0.0, 0.0)


def test_junction_draw_is_deterministic_and_follows_the_distributions():
    network = physics.PAPER_JUNCTIONS
    junctions = physics.draw_junctions(network)
    again = physics.draw_junctions(dataclasses.replace(network))
    assert np.array_equal(junctions.critical_current_0, again.critical_current_0)
    assert np.array_equal(junctions.critical_temperature, again.critical_temperature)
    strong = junctions.critical_current_0[:network.strong_count]
    weak = junctions.critical_current_0[network.strong_count:]
    assert np.median(strong) == pytest.approx(network.strong_median_ic, rel=0.02)
    assert np.median(weak) == pytest.approx(network.weak_median_ic, rel=0.02)
    assert np.std(np.log(strong)) == pytest.approx(network.strong_sigma_ln, rel=0.05)
    assert np.std(np.log(weak)) == pytest.approx(network.weak_sigma_ln, rel=0.05)
    assert np.mean(junctions.critical_temperature) == pytest.approx(network.tc, abs=0.01)
    assert np.std(junctions.critical_temperature) == pytest.approx(network.tc_sigma, rel=0.05)
    assert junctions.normal_resistance * 120 == pytest.approx(2.0e-3)


def test_dudi_normal_state_and_background(dudi_curves):
    temperatures, curves, step = dudi_curves
    for curve in curves.values():
        assert curve[0] == pytest.approx(5.0e-3, rel=1e-9)
    background = physics.surface_background_resistance(np.array([60.0, LOWEST_TEMPERATURE]))
    assert background[0] == pytest.approx(3.0e-3, rel=1e-12)
    assert background[1] == pytest.approx(3.0e-3, rel=0.015)
    assert curves[0.0][-1] == pytest.approx(background[1], rel=1e-9)
    assert step == pytest.approx(2.0e-3 + background[0] - background[1], rel=1e-9)


@pytest.mark.parametrize(("bias", "expected_onset"), [
    (0.0, 53.75), (0.2, 52.0), (0.3, 51.0), (0.4, 50.25)])
def test_dudi_onset_table(dudi_curves, bias, expected_onset):
    temperatures, curves, step = dudi_curves
    assert dudi_onset(temperatures, curves[bias], step) == pytest.approx(expected_onset, abs=0.5)


@pytest.mark.parametrize(("bias", "expected_ratio"), [
    (0.0, 1.00), (0.2, 0.85), (0.3, 0.72), (0.4, 0.63)])
def test_dudi_step_ratio_table(dudi_curves, bias, expected_ratio):
    _, curves, step = dudi_curves
    ratio = (curves[bias][0] - curves[bias][-1]) / step
    assert ratio == pytest.approx(expected_ratio, abs=0.05)


def test_core_resistance_is_monotonic_without_step():
    temperatures = np.arange(4.5, 300.0, 0.5)
    resistance = physics.core_resistance(temperatures)
    assert physics.core_resistance(295.0) == pytest.approx(100e-6, rel=1e-12)
    assert np.all(np.diff(resistance) > 0)
    assert resistance[0] == pytest.approx(100e-6 / 52.0, rel=1e-3)


# --------------------------------------------------------------------------------------------
# 5. Degradation
# --------------------------------------------------------------------------------------------


def test_superconducting_fraction_after_15_min_at_295_k():
    assert degraded_for(15.0) == pytest.approx(0.81, abs=0.01)


def test_superconducting_fraction_after_30_min_at_295_k():
    assert degraded_for(30.0) == pytest.approx(0.03, abs=0.005)


def test_nothing_happens_at_77_k():
    a_year = 365.0 * 24.0 * 60.0
    assert degraded_for(a_year, 77.0) == 1.0
    assert physics.degradation_rate(4.5) == 0.0
    assert physics.degradation_rate(0.0) == 0.0


def test_degradation_rate_is_1_over_tau_at_295_k():
    assert physics.degradation_rate(295.0) == pytest.approx(1.0 / (22.0 * 60.0), rel=1e-12)
    assert physics.degradation_rate(305.0) > physics.degradation_rate(295.0)
    with pytest.raises(ValueError, match="theta"):
        physics.superconducting_fraction(-1.0)


# --------------------------------------------------------------------------------------------
# 6. Lock-in filters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("slope", "settle", "bandwidth", "poles"), [
    (6, 5.0, 1 / 4, 1), (12, 7.0, 1 / 8, 2), (18, 9.0, 3 / 32, 3), (24, 10.0, 5 / 64, 4)])
def test_lockin_filter_figures(slope, settle, bandwidth, poles):
    tau = 0.3
    assert physics.lockin_settle_time(tau, slope) == pytest.approx(settle * tau)
    assert physics.lockin_noise_bandwidth(tau, slope) == pytest.approx(bandwidth / tau)
    assert physics.lockin_filter_delay(tau, slope) == pytest.approx(poles * tau)


@pytest.mark.parametrize("helper", [physics.lockin_settle_time, physics.lockin_noise_bandwidth,
                                    physics.lockin_filter_delay])
def test_lockin_helpers_refuse_other_slopes(helper):
    with pytest.raises(ValueError, match=r"9.*\(6, 12, 18, 24\)|\(6, 12, 18, 24\).*9"):
        helper(1.0, 9)
    with pytest.raises(ValueError, match="time_constant"):
        helper(0.0, 12)


def test_percolating_fraction_is_zero_below_threshold_and_one_at_full():
    fractions = np.array([0.0, 0.05, 0.1, 0.55, 1.0])
    assert physics.percolating_fraction(fractions, 0.1) == pytest.approx([0, 0, 0, 0.5, 1.0])
    with pytest.raises(ValueError, match="1.0"):
        physics.percolating_fraction(0.5, 1.0)
