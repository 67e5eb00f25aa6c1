"""Every signal of the station's devices and the PV each one uses, without an IOC.

The station is built from ophyd's fake signals (:mod:`tcstation.devices.fakes`), so the
names and kinds are those :func:`tcstation.devices.station.build_station` gives; the PVs
come from the device classes' components. ``tcstation pv-table`` writes the
documentation from this, and a unit test compares it with the simulated IOC.
"""

from __future__ import annotations

from dataclasses import dataclass

from ophyd import Kind
from ophyd.sim import FakeEpicsSignal, FakeEpicsSignalRO

from tcstation.devices.environment import SampleEnvironment, SimulationDiagnostics
from tcstation.devices.fakes import fake_device
from tcstation.devices.signals import FlagMixin, RbvPairMixin
from tcstation.devices.station import DEFAULT_PREFIX, Station, station_prefixes
from tcstation.devices.susceptometer import Susceptometer
from tcstation.devices.temperature import TemperatureController
from tcstation.devices.transport import TransportProbe

KIND_NAMES = {Kind.hinted: "hinted", Kind.normal: "read", Kind.config: "config",
              Kind.omitted: "omitted"}


@dataclass(frozen=True)
class DeviceSignal:
    """One signal of a device and the PV it uses (none for a signal the device holds).

    Attributes
    ----------
    name : str
        The ophyd name, e.g. ``cryostat_setpoint``.
    kind : str
        ``hinted``, ``read`` (normal), ``config`` or ``omitted``.
    pv : str or None
        The PV written to (a setting) or read, with its prefix; None if device-held.
    readback : bool
        A setting read back from ``pv + '_RBV'``.
    writable : bool
        The device writes ``pv``.
    string : bool
        Read and written as enum strings.
    flag : bool
        A bi-style flag (0 = no, 1 = yes).
    choices : tuple of str or None
        The enum strings the device writes (None: whatever the IOC serves).
    allowed : (low, high) or None
        The range the device checks before it writes.
    whole : bool
        Written as a whole number (an index).
    units : str
        Units the device describes the signal with, when the PV serves none.
    doc : str
    """

    name: str
    kind: str
    pv: str | None
    readback: bool = False
    writable: bool = False
    string: bool = False
    flag: bool = False
    choices: tuple[str, ...] | None = None
    allowed: tuple[float, float] | None = None
    whole: bool = False
    units: str = ""
    doc: str = ""

    @property
    def pvs(self) -> tuple[str, ...]:
        """Every PV the signal connects to."""
        if self.pv is None:
            return ()
        return (self.pv, self.pv + "_RBV") if self.readback else (self.pv,)


def fake_station(prefix: str = DEFAULT_PREFIX) -> Station:
    """The station's devices as :func:`~tcstation.devices.station.build_station` names them,
    on fakes."""
    prefixes = station_prefixes(prefix)
    return Station(
        cryostat=fake_device(TemperatureController, prefixes["cryostat"], name="cryostat"),
        susceptometer=fake_device(Susceptometer, prefixes["susceptometer"], name="susceptometer"),
        transport=fake_device(TransportProbe, prefixes["transport"],
                              bias_source_prefix=prefixes["bias_source"], name="transport"),
        environment=fake_device(SampleEnvironment, prefixes["environment"], name="environment"),
        simulation=fake_device(SimulationDiagnostics, prefixes["simulation"], name="simulation"),
    )


def _kind(signal) -> str:
    for kind, text in KIND_NAMES.items():
        if signal.kind == kind:
            return text
    return "hinted" if signal.kind & Kind.hinted else str(signal.kind)


def device_signals(device) -> list[DeviceSignal]:
    """Every signal of ``device`` (sub-devices included), in component order."""
    entries = []
    for walk in device.walk_signals():
        signal = walk.item
        parent = signal.parent
        component = getattr(type(parent), signal.attr_name)
        kwargs = component.kwargs
        doc = component.doc or ""
        if doc.startswith("Component attribute"):
            doc = ""
        is_epics = isinstance(signal, FakeEpicsSignal)
        pv = parent.prefix + component.suffix if is_epics else None
        choices = kwargs.get("choices")
        entries.append(DeviceSignal(
            name=signal.name, kind=_kind(signal), pv=pv,
            readback=isinstance(signal, RbvPairMixin),
            writable=is_epics and not isinstance(signal, FakeEpicsSignalRO),
            string=bool(kwargs.get("string", False)), flag=isinstance(signal, FlagMixin),
            choices=tuple(choices) if choices is not None else None,
            allowed=kwargs.get("allowed"), whole=bool(kwargs.get("whole", False)),
            units=kwargs.get("units", "") or "", doc=doc,
        ))
    return entries


def station_signals(prefix: str = DEFAULT_PREFIX) -> list[DeviceSignal]:
    """Every signal of every device of the station under ``prefix``."""
    station = fake_station(prefix)
    return [entry for device in station.devices for entry in device_signals(device)]

