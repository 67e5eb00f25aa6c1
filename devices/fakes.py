"""Fake versions of the station's devices for tests without an IOC.

``fake_device(TemperatureController, name="cryostat")`` returns a device of the
same structure whose EPICS signals are ophyd's fake signals with this package's
behaviour (setting checks, default units, flags) kept; set readings with
``signal.sim_put(value)``.
"""

from __future__ import annotations

from ophyd.sim import FakeEpicsSignal, FakeEpicsSignalRO, fake_device_cache, make_fake_device

from devices.signals import (
    CheckedSettingMixin,
    DefaultUnitsMixin,
    EpicsFlag,
    EpicsMeasurement,
    EpicsSetting,
    FlagMixin,
    RbvPairMixin,
)


class FakeEpicsSetting(RbvPairMixin, CheckedSettingMixin, DefaultUnitsMixin, FakeEpicsSignal):
    """:class:`devices.signals.EpicsSetting` without EPICS."""


class FakeEpicsMeasurement(DefaultUnitsMixin, FakeEpicsSignalRO):
    """:class:`devices.signals.EpicsMeasurement` without EPICS."""


class FakeEpicsFlag(FlagMixin, FakeEpicsSignalRO):
    """:class:`devices.signals.EpicsFlag` without EPICS."""


fake_device_cache.update({
    EpicsSetting: FakeEpicsSetting,
    EpicsMeasurement: FakeEpicsMeasurement,
    EpicsFlag: FakeEpicsFlag,
})


def fake_device(cls, prefix: str = "FAKE:", **kwargs):
    """An instance of the fake counterpart of device class ``cls``."""
    return make_fake_device(cls)(prefix, **kwargs)
