"""The one record type of the contract: a signal an instrument serves.

Plain data: no Channel Access, no ophyd. The simulated IOC builds its PVs from
these records, the devices take their ranges and choices from them, and
``tcstation pv-table`` writes ``docs/pv-table.md`` from them.
"""

from __future__ import annotations

from dataclasses import dataclass

SETTING = "setting"
"""Written as ``SUFFIX`` and read back as ``SUFFIX_RBV``."""
READBACK = "readback"
"""A read-only state of the instrument (a name, the mounted sample, a constant)."""
MEASUREMENT = "measurement"
"""A read-only reading that changes by itself (a temperature, a lock-in output)."""
ACTION = "action"
"""Written to start something; no readback."""
ROLES = (SETTING, READBACK, MEASUREMENT, ACTION)

FLOAT = "float"
INT = "int"
ENUM = "enum"
STRING = "string"
TYPES = (FLOAT, INT, ENUM, STRING)

DESCRIPTION_LENGTH = 40
"""Characters an EPICS record's DESC holds."""
RBV = "_RBV"


@dataclass(frozen=True)
class Signal:
    """One PV of an instrument, as the instrument defines it.

    Attributes
    ----------
    suffix : str
        PV name under the instrument's prefix. A ``{n}`` stands for the loop or
        input number (``OUT{n}:SP``); :func:`numbered` fills it in.
    role : str
        :data:`SETTING`, :data:`READBACK`, :data:`MEASUREMENT` or :data:`ACTION`.
    type : str
        :data:`FLOAT`, :data:`INT`, :data:`ENUM` or :data:`STRING`.
    description : str
        At most 40 characters (the record's ``DESC``).
    units : str
        Engineering units (``EGU``); empty for a pure number.
    precision : int or None
        Digits after the point a display shows (``PREC``).
    limits : (low, high) or None
        The closed range the instrument accepts (a setting) or can report (a
        reading): drive and display limits.
    choices : tuple of str
        An enum's strings, index 0 first: the instrument's own indices.
    command : str
        The instrument's remote command that sets it, ``<...>`` the value.
    query : str
        The remote command (or query) that reads it.
    record : str
        The EPICS record type, where it is not the plain one of its type and role
        (``ai``/``ao``, ``longin``/``longout``, ``mbbi``/``mbbo``, ``stringin``/``stringout``).
    """

    suffix: str
    role: str
    type: str
    description: str
    units: str = ""
    precision: int | None = None
    limits: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    command: str = ""
    query: str = ""
    record: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"{self.suffix}: role {self.role!r} is not one of {ROLES}")
        if self.type not in TYPES:
            raise ValueError(f"{self.suffix}: type {self.type!r} is not one of {TYPES}")
        if len(self.description.replace("{n}", "9").replace("{letter}", "X")) > DESCRIPTION_LENGTH:
            raise ValueError(f"{self.suffix}: description {self.description!r} is longer than "
                             f"{DESCRIPTION_LENGTH} characters")
        if (self.type == ENUM) != bool(self.choices):
            raise ValueError(f"{self.suffix}: an enum, and only an enum, has choices")
        if self.limits is not None and not self.limits[0] < self.limits[1]:
            raise ValueError(f"{self.suffix}: limits {self.limits} are not low < high")

    @property
    def writable(self) -> bool:
        return self.role in (SETTING, ACTION)

    @property
    def readback_suffix(self) -> str | None:
        """``SUFFIX_RBV`` for a setting, else None."""
        return self.suffix + RBV if self.role == SETTING else None

    def pv_suffixes(self) -> tuple[str, ...]:
        """Every PV the signal is served as: the suffix, and the readback of a setting."""
        rbv = self.readback_suffix
        return (self.suffix,) if rbv is None else (self.suffix, rbv)


def numbered(signal: Signal, n: int, letter: str = "") -> Signal:
    """``signal`` for loop or input ``n``: ``{n}`` and ``{letter}`` filled in everywhere."""

    def fill(text: str) -> str:
        return text.replace("{n}", str(n)).replace("{letter}", letter)

    return Signal(
        suffix=fill(signal.suffix), role=signal.role, type=signal.type,
        description=fill(signal.description), units=signal.units,
        precision=signal.precision, limits=signal.limits, choices=signal.choices,
        command=fill(signal.command), query=fill(signal.query), record=signal.record,
    )


def by_suffix(signals) -> dict[str, Signal]:
    """The signals keyed by suffix; refuses a suffix declared twice."""
    table: dict[str, Signal] = {}
    for signal in signals:
        if signal.suffix in table:
            raise ValueError(f"{signal.suffix} is declared twice")
        table[signal.suffix] = signal
    return table
