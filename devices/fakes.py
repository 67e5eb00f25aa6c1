"""Fake versions of the station's devices for tests without an IOC.

``fake_device(TemperatureController, name="cryostat")`` returns a device of the
same structure whose EPICS signals are ophyd's fake signals with this package's
behaviour (setting checks, default units, flags, put-completion ``set``) kept;
set readings with ``signal.sim_put(value)``.

A fake setting completes a put once its putter has run, as an IOC completes a
put callback after its record processed. Set ``setting.sim_hold_completions =
True`` to keep completions back until ``setting.sim_complete_puts()``.
"""

from __future__ import annotations

from ophyd.sim import FakeEpicsSignal, FakeEpicsSignalRO, fake_device_cache, make_fake_device

from tcstation.devices.signals import (
    CheckedSettingMixin,
    DefaultUnitsMixin,
    EpicsFlag,
    EpicsMeasurement,
    EpicsSetting,
    FlagMixin,
    PutCompletionSetMixin,
    RbvPairMixin,
)


class FakeEpicsSetting(RbvPairMixin, CheckedSettingMixin, PutCompletionSetMixin, DefaultUnitsMixin,
                       FakeEpicsSignal):
    """:class:`tcstation.devices.signals.EpicsSetting` without EPICS, with put completion."""

    sim_hold_completions = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sim_held_completions: list = []

    def put(self, value, *args, callback=None, use_complete=None, **kwargs):
        if not kwargs.get("force", False):
            self.check_value(value)  # as EpicsSignal.put does
        result = super().put(value, *args, **kwargs)
        if callback is not None:
            if self.sim_hold_completions:
                self.sim_held_completions.append(callback)
            else:
                callback(pvname=self.name)
        return result

    def sim_complete_puts(self) -> None:
        """Complete every put held back by ``sim_hold_completions``, oldest first."""
        held, self.sim_held_completions = self.sim_held_completions, []
        for callback in held:
            callback(pvname=self.name)


class FakeEpicsMeasurement(DefaultUnitsMixin, FakeEpicsSignalRO):
    """:class:`tcstation.devices.signals.EpicsMeasurement` without EPICS."""


class FakeEpicsFlag(FlagMixin, FakeEpicsSignalRO):
    """:class:`tcstation.devices.signals.EpicsFlag` without EPICS."""


fake_device_cache.update({
    EpicsSetting: FakeEpicsSetting,
    EpicsMeasurement: FakeEpicsMeasurement,
    EpicsFlag: FakeEpicsFlag,
})


def fake_device(cls, prefix: str = "FAKE:", **kwargs):
    """An instance of the fake counterpart of device class ``cls``."""
    return make_fake_device(cls)(prefix, **kwargs)
