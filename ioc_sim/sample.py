"""The sample in the cryostat: physics of :mod:`tcstation.ioc_sim.physics` plus its history.

:class:`SampleModel` is what the simulated instruments ask for noise-free readings: the
susceptibility the susceptometer sees, the dU/dI the transport lock-in sees, and the
degradation state that a warm Mg/MgO sample accumulates. Noise, filtering and thermal lag
belong to the instruments, not here.

Sample kinds
------------
``mg_mgo``
    The oxidised Mg ball: Mg core, superconducting interface shell, and the junction
    network seen by contacts on the surface; contacts on the core see the metal only.
    Degrades above about 200 K (:class:`tcstation.ioc_sim.physics.Degradation`).
``pure_mg``
    An unoxidised Mg ball: eddy currents only. Without an oxide both kinds of contacts touch
    the metal, so transport is the core resistance on either.
``pb``, ``nb``, ``mgb2``
    Calibration references, bulk superconducting spheres
    (:class:`tcstation.ioc_sim.physics.BulkSuperconductor`). They do not degrade; their
    response does not depend on the field amplitude, the bias or the contacts.
"""

import math

import numpy as np

from tcstation.instruments.environment import CONTACT_KINDS, SAMPLE_KINDS
from tcstation.ioc_sim.physics import (
    LEAD,
    MAGNESIUM_DIBORIDE,
    NIOBIUM,
    OERSTED,
    PAPER_CORE,
    PAPER_DEGRADATION,
    PAPER_JUNCTIONS,
    PAPER_SHELL,
    bulk_normal_susceptibility,
    bulk_superconductor_resistance,
    bulk_superconductor_susceptibility,
    core_resistance,
    degradation_rate,
    interface_shell_susceptibility,
    junction_network_dudi,
    magnesium_sphere_susceptibility,
    percolating_fraction,
    surface_background_resistance,
)
from tcstation.ioc_sim.physics import superconducting_fraction as surviving_fraction

REFERENCES = {"pb": LEAD, "nb": NIOBIUM, "mgb2": MAGNESIUM_DIBORIDE}

LIQUID_NITROGEN_TEMPERATURE = 77.0
"""K. Warm time is counted above it; the Mg/MgO interface is safe below it."""
REFERENCE_MAX_SAFE_TEMPERATURE = 400.0
"""K. Samples that do not degrade may go to room temperature and beyond."""

LOWEST_TEMPERATURE = 4.5
"""K. The low end of a sweep: the fully transformed state in both onset criteria."""
DUDI_NORMAL_TEMPERATURE = 60.0
"""K. The normal-state reference of the dU/dI onset criterion."""
CHI_ONSET_FRACTION = 0.05
"""The chi' onset is where chi' has dropped by this fraction of its total drop."""
CHI_NORMAL_MARGIN = 0.5
"""K above the interface's Tc + 4 sigma where the chi' onset criterion takes the normal state."""
DUDI_ONSET_FRACTION = 0.10
"""The dU/dI onset is where dU/dI has fallen by this fraction of the zero-bias step."""
CHI_DETECTION_FLOOR = 1e-3
"""Superconducting share of 4 pi chi'(4.5 K) below which there is no transition."""
DUDI_DETECTION_FLOOR = 1e-3
"""Zero-bias step of the junctions (the metallic background's own fall taken out), relative
to their normal resistance, below which there is none."""

_COARSE_STEP = 0.1
_FINE_STEP = 0.002
_ONSET_CACHE_SIZE = 256


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _first_crossing(curve, high, low, target):
    """Highest temperature in [low, high] where curve(T) falls to target, or nan.

    The curve is evaluated on a coarse grid from ``high`` down to ``low``; the first
    bracketing interval is resampled on a fine grid and the crossing interpolated linearly.
    """
    coarse = np.append(np.arange(high, low, -_COARSE_STEP), low)
    values = curve(coarse)
    below = np.flatnonzero(values <= target)
    if below.size == 0:
        return math.nan
    first = below[0]
    if first == 0:
        return float(coarse[0])
    fine = np.append(np.arange(coarse[first - 1], coarse[first], -_FINE_STEP), coarse[first])
    values = curve(fine)
    first = np.flatnonzero(values <= target)[0]
    t_above, t_below = fine[first - 1], fine[first]
    v_above, v_below = values[first - 1], values[first]
    return float(t_above + (target - v_above) * (t_below - t_above) / (v_below - v_above))


class SampleModel:
    """A sample with its degradation history.

    Parameters
    ----------
    kind : str
        One of :data:`SAMPLE_KINDS`.
    core : ioc_sim.physics.MagnesiumCore
        Mg ball parameters (``mg_mgo`` and ``pure_mg``).
    shell : ioc_sim.physics.InterfaceShell
        Interface parameters (``mg_mgo``).
    junctions : ioc_sim.physics.JunctionNetwork
        Surface transport parameters (``mg_mgo``).
    degradation : ioc_sim.physics.Degradation
        Degradation law (``mg_mgo``).

    Attributes
    ----------
    kind : str
        The mounted sample.
    theta : float
        Accumulated degradation, integral of dt / tau(T): the state with memory.
    warm_seconds : float
        Time spent above 77 K since the sample was mounted, s.
    """

    def __init__(self, kind: str = "mg_mgo", *, core=PAPER_CORE, shell=PAPER_SHELL,
                 junctions=PAPER_JUNCTIONS, degradation=PAPER_DEGRADATION):
        self.core = core
        self.shell = shell
        self.junctions = junctions
        self.degradation = degradation
        self._onset_cache: dict = {}
        self.mount(kind)

    def mount(self, kind: str) -> None:
        """Mount a fresh sample of ``kind``: theta = 0, warm_seconds = 0.

        Parameters
        ----------
        kind : str
            One of :data:`SAMPLE_KINDS`.
        """
        _check_choice("kind", kind, SAMPLE_KINDS)
        self.kind = kind
        self.theta = 0.0
        self.warm_seconds = 0.0

    @property
    def max_safe_temperature(self) -> float:
        """Highest temperature (K) the sample survives without damage."""
        if self.kind == "mg_mgo":
            return LIQUID_NITROGEN_TEMPERATURE
        return REFERENCE_MAX_SAFE_TEMPERATURE

    @property
    def superconducting_fraction(self) -> float:
        """f_sc: 1 for a fresh Mg/MgO sample or a reference, 0 for pure Mg."""
        if self.kind == "mg_mgo":
            return surviving_fraction(self.theta, self.degradation.exponent)
        if self.kind == "pure_mg":
            return 0.0
        return 1.0

    @property
    def connected_fraction(self) -> float:
        """The part of f_sc above the percolation threshold, which scales the response."""
        return percolating_fraction(self.superconducting_fraction,
                                    self.degradation.percolation_threshold)

    def advance(self, dt: float, temperature: float) -> None:
        """Let ``dt`` seconds pass at ``temperature``.

        Parameters
        ----------
        dt : float
            Elapsed time, s, >= 0.
        temperature : float
            Sample temperature during that time, K, >= 0.
        """
        if not (math.isfinite(dt) and dt >= 0):
            raise ValueError(f"dt must be a finite time >= 0 s, got {dt!r}")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be finite and >= 0 K, got {temperature!r}")
        if self.kind == "mg_mgo":
            self.theta += dt * degradation_rate(temperature, self.degradation.tau_295,
                                                self.degradation.activation_energy_ev)
        if temperature > LIQUID_NITROGEN_TEMPERATURE:
            self.warm_seconds += dt

    def susceptibility(self, temperature, frequency=1550.0, hac_oe=0.2, hdc_oe=0.0):
        """Noise-free ``4 pi chi = chi' + i chi''`` the susceptometer sees.

        Parameters
        ----------
        temperature : float or array_like
            Sample temperature, K.
        frequency : float
            Excitation frequency, Hz, > 0.
        hac_oe : float
            ac field amplitude, Oe, >= 0.
        hdc_oe : float
            dc field, Oe.

        Returns
        -------
        complex or numpy.ndarray
            4 pi chi (complex for a scalar temperature).
        """
        if not frequency > 0:
            raise ValueError(f"frequency must be > 0 Hz, got {frequency!r}")
        if not hac_oe >= 0:
            raise ValueError(f"hac_oe must be >= 0 Oe, got {hac_oe!r}")
        return self._susceptibility(temperature, frequency, hac_oe, hdc_oe,
                                    self.connected_fraction)

    def _susceptibility(self, temperature, frequency, hac_oe, hdc_oe, fraction):
        if self.kind == "mg_mgo":
            return interface_shell_susceptibility(temperature, frequency, hac_oe * OERSTED,
                                                  hdc_oe * OERSTED, fraction, self.shell,
                                                  self.core)
        if self.kind == "pure_mg":
            return magnesium_sphere_susceptibility(temperature, frequency, self.core)
        return bulk_superconductor_susceptibility(temperature, frequency, REFERENCES[self.kind])

    def dynamic_resistance(self, temperature, bias_current=0.0, excitation_amplitude=0.024,
                           contacts="surface"):
        """Noise-free dU/dI (first harmonic, from the excitation amplitude), ohm.

        Parameters
        ----------
        temperature : float or array_like
            Sample temperature, K.
        bias_current : float
            dc bias, A.
        excitation_amplitude : float
            ac excitation amplitude (not rms), A, > 0.
        contacts : str
            One of :data:`CONTACT_KINDS`.

        Returns
        -------
        float or numpy.ndarray
            dU/dI, ohm.
        """
        _check_choice("contacts", contacts, CONTACT_KINDS)
        if not excitation_amplitude > 0:
            raise ValueError(f"excitation_amplitude must be > 0 A, got {excitation_amplitude!r}")
        return self._dynamic_resistance(temperature, bias_current, excitation_amplitude,
                                        contacts, self.connected_fraction)

    def _dynamic_resistance(self, temperature, bias_current, excitation_amplitude, contacts,
                            fraction):
        if self.kind in REFERENCES:
            return bulk_superconductor_resistance(temperature, REFERENCES[self.kind])
        if self.kind == "mg_mgo" and contacts == "surface":
            return junction_network_dudi(temperature, bias_current, excitation_amplitude,
                                         fraction, self.junctions, self.core)
        return core_resistance(temperature, self.core.resistance_295, self.core.rho_295,
                               self.core.residual_resistance_ratio, self.core.debye_temperature)

    def true_onsets(self, frequency=1550.0, hac_oe=0.2, hdc_oe=0.0, bias_current=0.0,
                    excitation_amplitude=0.024, contacts="surface") -> dict:
        """Onsets of the noise-free model, by the criteria the analysis uses.

        chi' onset: the temperature where 4 pi chi' has dropped by 5 % of its total drop
        between the normal state just above the transition and 4.5 K; for a reference,
        measured below its normal metal at the same temperature, whose eddy-current chi'
        changes fast above a low Tc (:meth:`_reference_chi_onset`). dU/dI onset: the
        temperature where dU/dI has fallen 10 % of the zero-bias step (60 K minus 4.5 K)
        below its own value at 60 K. Both are found on a fine grid (2 mK, after a 0.1 K
        scan) and interpolated. The result is cached on the arguments and on f_sc rounded
        to 3 significant digits (the onsets are computed at that rounded f_sc).

        Parameters
        ----------
        frequency, hac_oe, hdc_oe : float
            As for :meth:`susceptibility`.
        bias_current, excitation_amplitude : float
            As for :meth:`dynamic_resistance`.
        contacts : str
            One of :data:`CONTACT_KINDS`.

        Returns
        -------
        dict
            ``chi_onset`` and ``dudi_onset``: K, nan without a transition.
            ``tc_interface``: K, the interface Tc of Mg/MgO or the nominal Tc of a
            reference, nan without a transition. ``tc_junctions``: K, the mean junction Tc
            of Mg/MgO on surface contacts, nan without a step. ``dudi_step`` and
            ``dudi_step_zero_bias``: ohm, dU/dI(60 K) - dU/dI(4.5 K) at this bias and at
            zero bias, nan where transport sees no superconductor.
            ``connected_fraction``: the rounded connected fraction (f_sc above the
            percolation threshold) the onsets were computed at.
        """
        _check_choice("contacts", contacts, CONTACT_KINDS)
        fraction = float(f"{self.connected_fraction:.3g}")
        key = (self.kind, self.core, self.shell, self.junctions, fraction,
               round(float(frequency), 6), round(float(hac_oe), 6), round(float(hdc_oe), 6),
               round(float(bias_current), 6), round(float(excitation_amplitude), 6), contacts)
        if key not in self._onset_cache:
            if len(self._onset_cache) >= _ONSET_CACHE_SIZE:
                self._onset_cache.clear()
            self._onset_cache[key] = self._compute_onsets(
                fraction, frequency, hac_oe, hdc_oe, bias_current, excitation_amplitude,
                contacts)
        return dict(self._onset_cache[key])

    def _compute_onsets(self, fraction, frequency, hac_oe, hdc_oe, bias_current,
                        excitation_amplitude, contacts):
        onsets = {"connected_fraction": fraction}
        onsets["chi_onset"], onsets["tc_interface"] = self._chi_onset(
            fraction, frequency, hac_oe, hdc_oe)
        onsets.update(self._dudi_onset(fraction, bias_current, excitation_amplitude, contacts))
        return onsets

    def _chi_onset(self, fraction, frequency, hac_oe, hdc_oe):
        """(chi' onset, Tc of the superconductor), nan where there is no transition."""
        if self.kind == "pure_mg":
            return math.nan, math.nan
        if self.kind in REFERENCES:
            reference = REFERENCES[self.kind]
            return self._reference_chi_onset(reference, frequency), reference.tc
        superconducting_share = abs(
            self._susceptibility(LOWEST_TEMPERATURE, frequency, hac_oe, hdc_oe, fraction)
            - magnesium_sphere_susceptibility(LOWEST_TEMPERATURE, frequency, self.core))
        if superconducting_share < CHI_DETECTION_FLOOR:
            return math.nan, math.nan
        # The analysis fits its normal state from one departure window (1 K) above the top of
        # the transition; with the Mg background sloping by 0.009 per K the reference must sit
        # where that fit starts, about 1.5 K above the mean Tc.
        above_transition = self.shell.tc + 4.0 * self.shell.tc_sigma + CHI_NORMAL_MARGIN

        def chi_prime(temperature):
            return np.real(self._susceptibility(temperature, frequency, hac_oe, hdc_oe,
                                                fraction))

        normal = chi_prime(above_transition)
        drop = normal - chi_prime(LOWEST_TEMPERATURE)
        target = normal - CHI_ONSET_FRACTION * drop
        return (_first_crossing(chi_prime, above_transition, LOWEST_TEMPERATURE, target),
                self.shell.tc)

    @staticmethod
    def _reference_chi_onset(reference, frequency):
        """chi' onset of a reference, measured from its normal metal at each temperature.

        A reference's normal state is a good conductor whose eddy-current chi' can change
        fast above Tc (high-purity Pb: from -0.82 at 7.2 K to -0.78 at 8.2 K, by more than
        the 5 % onset level of its 0.18 drop), so a constant normal level would put the onset
        in the normal state. The drop is the normal metal at the nominal Tc minus chi' at
        4.5 K; the onset is where chi' has fallen 5 % of it below the normal metal.
        """
        def shortfall(temperature):
            return np.real(bulk_superconductor_susceptibility(temperature, frequency, reference)
                           - bulk_normal_susceptibility(temperature, frequency, reference))

        drop = float(np.real(bulk_normal_susceptibility(reference.tc, frequency, reference)
                             - bulk_superconductor_susceptibility(LOWEST_TEMPERATURE, frequency,
                                                                  reference)))
        return _first_crossing(shortfall, reference.tc + 10.0 * reference.transition_width,
                               LOWEST_TEMPERATURE, -CHI_ONSET_FRACTION * drop)

    def _dudi_onset(self, fraction, bias_current, excitation_amplitude, contacts):
        result = {"dudi_onset": math.nan, "tc_junctions": math.nan,
                  "dudi_step": math.nan, "dudi_step_zero_bias": math.nan}
        if self.kind == "pure_mg" or (self.kind == "mg_mgo" and contacts == "core"):
            return result
        if self.kind == "mg_mgo":
            normal_scale = self.junctions.junction_resistance
        else:
            normal_scale = REFERENCES[self.kind].normal_resistance

        def dudi(temperature, bias=bias_current):
            return self._dynamic_resistance(temperature, bias, excitation_amplitude, contacts,
                                            fraction)

        ends = np.array([DUDI_NORMAL_TEMPERATURE, LOWEST_TEMPERATURE])
        normal_0, low_0 = dudi(ends, 0.0)
        normal, low = dudi(ends)
        step_zero_bias = float(normal_0 - low_0)
        result["dudi_step_zero_bias"] = step_zero_bias
        result["dudi_step"] = float(normal - low)
        superconducting_step = step_zero_bias
        if self.kind == "mg_mgo":
            # The metallic background falls on cooling too; only the junctions make a step.
            background = surface_background_resistance(ends, self.junctions, self.core)
            superconducting_step -= float(background[0] - background[1])
        if superconducting_step < DUDI_DETECTION_FLOOR * normal_scale:
            return result
        if self.kind == "mg_mgo":
            result["tc_junctions"] = self.junctions.tc
        target = normal - DUDI_ONSET_FRACTION * step_zero_bias
        result["dudi_onset"] = _first_crossing(dudi, DUDI_NORMAL_TEMPERATURE,
                                               LOWEST_TEMPERATURE, target)
        return result
