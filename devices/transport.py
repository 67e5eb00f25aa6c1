"""Four-probe transport: a lock-in, its ac excitation and the dc bias source, reading dU/dI."""

from __future__ import annotations

import math

from ophyd import Component as Cpt
from ophyd import FormattedComponent as FCpt

from tcstation.devices.lockin import LockIn
from tcstation.devices.signals import Quantity
from tcstation.devices.source import CurrentSource


def dynamic_resistance(x_rms: float, sine_amplitude: float, excitation_gain: float) -> float:
    """dU/dI (ohm) from the lock-in's in-phase output.

    The sine out (V rms) drives a V-to-I converter of gain ``excitation_gain``
    (A rms per V rms), so ``I_rms = excitation_gain * sine_amplitude`` and
    ``dU/dI = X_rms / I_rms``, the same as ``sqrt(2) X_rms / Iac`` with Iac the
    amplitude.

    Parameters
    ----------
    x_rms : float
        X, V rms.
    sine_amplitude : float
        Sine-out amplitude, V rms.
    excitation_gain : float
        A rms per V rms.

    Returns
    -------
    float
        dU/dI, ohm; NaN when the excitation is unknown or zero.
    """
    current_rms = excitation_gain * sine_amplitude
    if not (math.isfinite(current_rms) and current_rms > 0):
        return math.nan
    return x_rms / current_rms


class TransportProbe(LockIn):
    """The transport lock-in with its excitation and the dc bias, reading dU/dI (hinted).

    The reading keeps the raw X and Y, the ac excitation amplitude (A, peak) and
    the bias source's measured current, voltage and compliance flag. The
    excitation gain of the V-to-I converter is configuration (the station sets it
    from the sample environment).

    Parameters
    ----------
    prefix : str
        PV prefix of the lock-in, e.g. ``"TCS:LIA2:"``.
    bias_source_prefix : str
        PV prefix of the dc source, e.g. ``"TCS:SRC:"``.
    name : str
        Device name.
    """

    dynamic_resistance = Cpt(Quantity, value=float("nan"), units="ohm", precision=9,
                             kind="hinted", doc="dU/dI, first harmonic")
    excitation_amplitude = Cpt(Quantity, value=float("nan"), units="A", precision=6,
                               kind="normal", doc="ac excitation current amplitude (peak)")
    excitation_gain = Cpt(Quantity, value=float("nan"), units="A/V", kind="config",
                          doc="V-to-I converter: A rms per V rms of sine out, copied by the "
                          "station from the environment's ExciteGain_RBV")
    bias = FCpt(CurrentSource, "{bias_source_prefix}", kind="normal", doc="dc bias source")

    def __init__(self, prefix: str = "", *, bias_source_prefix: str, name: str, **kwargs):
        self.bias_source_prefix = bias_source_prefix
        super().__init__(prefix, name=name, **kwargs)
        self.x.kind = "normal"
        self.y.kind = "normal"

    @property
    def hints(self) -> dict:
        """The probe's own hints: the bias is a parameter of the curve, not a curve."""
        bias_fields = set(self.bias.hints["fields"])
        return {"fields": [field for field in super().hints["fields"]
                           if field not in bias_fields]}

    def read(self):
        """The lock-in's reading with dU/dI computed from the X it carries."""
        reading = super().read()
        x_entry = reading.get(self.x.name) or self.x.read()[self.x.name]
        amplitude = float(self.sine_amplitude.get())
        gain = float(self.excitation_gain.get())
        values = {
            self.dynamic_resistance: dynamic_resistance(x_entry["value"], amplitude, gain),
            self.excitation_amplitude: math.sqrt(2.0) * gain * amplitude,
        }
        for signal, value in values.items():
            signal.put(value, timestamp=x_entry["timestamp"])
            if signal.name in reading:
                reading[signal.name] = {"value": value, "timestamp": x_entry["timestamp"]}
        return reading
