"""The sample environment: what is mounted, the dc field, the room-temperature exposure.

Not an instrument with remote commands: a real station serves these from its
own records (what is mounted is typed in; the constants come from the
insert's calibration sheet).
"""

from __future__ import annotations

from .signal import ACTION, ENUM, FLOAT, MEASUREMENT, READBACK, SETTING, Signal

KIND = "sample environment"

SAMPLE_KINDS = ("pure_mg", "mg_mgo", "pb", "nb", "mgb2")
INSERT_KINDS = ("susceptometer", "transport")
CONTACT_KINDS = ("core", "surface")
FIELD_RANGE_OE = (-1000.0, 1000.0)  # Oe, the dc field coil
EXPOSURE_RANGE_MINUTES = (0.0, 600.0)  # min, one room-temperature exposure
EXPOSE_ACTIONS = ("Idle", "Expose")
NO_YES = ("No", "Yes")

SIGNALS = (
    Signal("Sample", SETTING, ENUM, "Mounted sample; a put mounts a fresh one",
           choices=SAMPLE_KINDS),
    Signal("Insert", SETTING, ENUM, "Measurement insert", choices=INSERT_KINDS),
    Signal("Contacts", SETTING, ENUM, "Four-probe contacts: core or surface",
           choices=CONTACT_KINDS),
    Signal("FieldDC", SETTING, FLOAT, "Applied dc field", units="Oe", precision=2,
           limits=FIELD_RANGE_OE),
    Signal("ExposeMinutes", SETTING, FLOAT, "Duration of the next exposure", units="min",
           precision=2, limits=EXPOSURE_RANGE_MINUTES),
    Signal("Expose", ACTION, ENUM, "Put Expose to warm the sample to 295 K",
           choices=EXPOSE_ACTIONS),
    Signal("Exposing_RBV", MEASUREMENT, ENUM, "Exposure under way", choices=NO_YES),
    Signal("ExposeRemaining_RBV", MEASUREMENT, FLOAT, "Exposure time left", units="min",
           precision=2, limits=EXPOSURE_RANGE_MINUTES),
    Signal("WarmTime_RBV", MEASUREMENT, FLOAT, "Time the sample spent above 77 K",
           units="s", precision=1),
    Signal("MaxSafeTemp_RBV", READBACK, FLOAT, "Highest temperature the sample tolerates",
           units="K", precision=1),
    Signal("CoilConst_RBV", READBACK, FLOAT, "Hac amplitude per V rms of sine out",
           units="Oe/V", precision=4),
    Signal("ExciteGain_RBV", READBACK, FLOAT, "Excitation A rms per V rms of sine out",
           units="A/V", precision=5),
    Signal("LoadRes_RBV", READBACK, FLOAT, "Leads and contacts at the dc source",
           units="ohm", precision=3),
)
"""Every signal of the sample environment."""

WARM_TIME_TOLERANCE_SECONDS = {"mg_mgo": 12 * 60.0}
"""s above 77 K a sample kind tolerates before a measurement no longer sees it as mounted.

Mg/MgO's superconducting interface decays as f_sc = exp(-(t / 22 min)^4) at 295 K (physics
note, section 5): 12 min leave f_sc = 0.92, 15 min 0.81, 30 min 0.03. The warm time counts
every second above 77 K as if it were at 295 K, so the tolerance errs on the safe side.
Kinds not listed (pure Mg, the references) do not degrade when warm."""
