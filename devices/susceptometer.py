"""Mutual-inductance susceptometer: a lock-in plus its calibration, reading 4 pi chi."""

from __future__ import annotations

import cmath
import math

from ophyd import Component as Cpt
from ophyd import Signal

from tcstation.devices.lockin import LockIn
from tcstation.devices.signals import Quantity

DIMENSIONLESS = "dimensionless"


def calibration_from_reading(x: float, y: float, reference_phase_deg: float,
                             reference_chi: complex = -1 + 0j) -> tuple[float, float]:
    """Scale and pickup phase from a reading of a reference of known 4 pi chi.

    The lock-in reads ``(X + iY) = scale * exp(i (phase - PHAS)) * 4 pi chi``: the
    pickup turns 4 pi chi into a voltage with a gain ``scale`` and a phase of its own,
    and the lock-in's reference phase ``PHAS`` rotates it back.

    Parameters
    ----------
    x, y : float
        The reference's reading, V rms.
    reference_phase_deg : float
        The lock-in's ``PHAS`` during the reading, deg.
    reference_chi : complex
        The reference's 4 pi chi; -1 for a bulk superconductor deep below Tc.

    Returns
    -------
    scale : float
        V rms per unit of 4 pi chi at the drive of the reading.
    phase : float
        Pickup phase, deg, in (-180, 180].
    """
    if reference_chi == 0:
        raise ValueError("the reference's 4 pi chi must not be 0")
    gain = complex(x, y) * cmath.exp(1j * math.radians(reference_phase_deg)) / reference_chi
    if gain == 0:
        raise ValueError("a zero reading cannot calibrate the susceptometer")
    return abs(gain), math.degrees(cmath.phase(gain))


def susceptibility_from_reading(x: float, y: float, reference_phase_deg: float, *,
                                scale: float, phase_deg: float, frequency: float,
                                amplitude: float, calibration_frequency: float,
                                calibration_amplitude: float) -> complex:
    """4 pi chi = chi' + i chi'' from a reading, by a calibration.

    A mutual-inductance pickup's voltage is proportional to the frequency and to the
    drive amplitude, so the calibrated scale is carried to the present frequency and
    sine-out amplitude in proportion.

    Parameters
    ----------
    x, y : float
        The reading, V rms.
    reference_phase_deg : float
        The lock-in's present ``PHAS``, deg.
    scale, phase_deg : float
        The calibration (:func:`calibration_from_reading`).
    frequency, amplitude : float
        The present reference frequency (Hz) and sine-out amplitude (V rms).
    calibration_frequency, calibration_amplitude : float
        The same during the calibration.

    Returns
    -------
    complex
        4 pi chi.
    """
    effective_scale = (scale * (frequency / calibration_frequency)
                       * (amplitude / calibration_amplitude))
    rotation = cmath.exp(1j * math.radians(reference_phase_deg - phase_deg))
    return complex(x, y) * rotation / effective_scale


class Susceptometer(LockIn):
    """The susceptometer's lock-in, reading 4 pi chi' and 4 pi chi'' (hinted) from X and Y.

    The calibration (``calibration_*``, configuration so every run records it)
    is a scale, V rms per unit of 4 pi chi at ``calibration_frequency`` and
    ``calibration_amplitude``, and the pickup's phase. :meth:`calibrate` sets it
    from a reading of a reference (Pb deep below Tc: 4 pi chi = -1). X and Y stay
    in every reading.

    Parameters
    ----------
    prefix : str
        PV prefix of the lock-in, e.g. ``"TCS:LIA1:"``.
    name : str
        Device name.
    """

    chi_real = Cpt(Quantity, value=float("nan"), units=DIMENSIONLESS, precision=5,
                   kind="hinted", doc="4 pi chi' (-1 for a perfect diamagnet)")
    chi_imag = Cpt(Quantity, value=float("nan"), units=DIMENSIONLESS, precision=5,
                   kind="hinted", doc="4 pi chi'' (> 0 for loss)")

    calibration_scale = Cpt(Quantity, value=float("nan"), units="V", kind="config",
                            doc="V rms per unit of 4 pi chi at the calibration drive")
    calibration_phase = Cpt(Quantity, value=0.0, units="deg", kind="config",
                            doc="Phase of the pickup")
    calibration_frequency = Cpt(Quantity, value=float("nan"), units="Hz", kind="config")
    calibration_amplitude = Cpt(Quantity, value=float("nan"), units="V", kind="config",
                                doc="Sine-out amplitude during the calibration")
    calibration_source = Cpt(Signal, value="uncalibrated", kind="config",
                             doc="Where the calibration came from")

    def __init__(self, prefix: str = "", *, name: str, **kwargs):
        super().__init__(prefix, name=name, **kwargs)
        self.x.kind = "normal"
        self.y.kind = "normal"

    def susceptibility(self, x: float, y: float) -> complex:
        """4 pi chi of a reading (X, Y) at the present settings and calibration."""
        return susceptibility_from_reading(
            x, y, float(self.reference_phase.get()),
            scale=float(self.calibration_scale.get()),
            phase_deg=float(self.calibration_phase.get()),
            frequency=float(self.frequency.get()),
            amplitude=float(self.sine_amplitude.get()),
            calibration_frequency=float(self.calibration_frequency.get()),
            calibration_amplitude=float(self.calibration_amplitude.get()),
        )

    def set_calibration(self, scale: float, phase_deg: float, frequency: float,
                        amplitude: float, source: str) -> None:
        """Store a calibration (for instance a nominal one, or one from a file)."""
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"{self.name}: calibration scale {scale!r} V is not > 0")
        self.calibration_scale.put(float(scale))
        self.calibration_phase.put(float(phase_deg))
        self.calibration_frequency.put(float(frequency))
        self.calibration_amplitude.put(float(amplitude))
        self.calibration_source.put(source)

    def calibrate(self, x: float, y: float, reference_chi: complex = -1 + 0j,
                  source: str = "reference reading") -> tuple[float, float]:
        """Calibrate from a settled reading (X, Y) of a reference of known 4 pi chi.

        Take the reading (an average of several for less noise) at the present
        frequency, amplitude and reference phase, then call this.

        Parameters
        ----------
        x, y : float
            The reading, V rms.
        reference_chi : complex
            4 pi chi of the reference; -1 for a bulk superconductor deep below Tc.
        source : str
            Recorded in ``calibration_source``.

        Returns
        -------
        scale, phase : float
            V rms per unit of 4 pi chi, and the pickup phase in deg.
        """
        scale, phase = calibration_from_reading(x, y, float(self.reference_phase.get()),
                                                reference_chi)
        self.set_calibration(scale, phase, float(self.frequency.get()),
                             float(self.sine_amplitude.get()), source)
        return scale, phase

    def read(self):
        """The lock-in's reading with 4 pi chi computed from the X and Y it carries."""
        reading = super().read()
        x_entry = reading.get(self.x.name) or self.x.read()[self.x.name]
        y_entry = reading.get(self.y.name) or self.y.read()[self.y.name]
        chi = self.susceptibility(x_entry["value"], y_entry["value"])
        timestamp = max(x_entry["timestamp"], y_entry["timestamp"])
        for signal, value in ((self.chi_real, chi.real), (self.chi_imag, chi.imag)):
            signal.put(value, timestamp=timestamp)
            if signal.name in reading:
                reading[signal.name] = {"value": value, "timestamp": timestamp}
        return reading
