"""Safety of the sample and the instruments, as suspenders and a cleanup wrapper.

* :class:`SampleTemperatureGuard` suspends a run when the sample nears its
  maximum safe temperature and, before waiting, stops the heating: the
  controller is put to hold a safe setpoint with ramping off.
* :class:`InstrumentConnectionGuard` suspends a run while any watched PV is
  disconnected (an IOC that died or restarts) and resumes when all are back.
* :class:`CompliancePause` pauses the RunEngine with a message when the bias
  source hits its voltage compliance.
* :func:`station_safety_wrapper` runs :func:`make_safe` on every exit of a
  plan: bias to zero, output off, the controller holding a safe setpoint.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterable

from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.suspenders import SuspenderBase
from ophyd import Signal

from devices.station import Station
from devices.temperature import TemperatureController

logger = logging.getLogger(__name__)

GUARD_MARGIN = 0.5
"""K below the sample's limit at which the guard suspends (plans stop 1 K below it)."""
HOLD_MARGIN = 5.0
"""K below the sample's limit at which the guard holds the cryostat."""
RESUME_MARGIN = 3.0
"""K below the sample's limit under which a suspended run may resume."""


def safe_hold_temperature(present: float, limit: float) -> float:
    """A setpoint that keeps the sample where it is, but never near its limit."""
    return min(present, limit - HOLD_MARGIN)


def hold_at(controller: TemperatureController, temperature: float) -> Generator:
    """Closed-loop hold at ``temperature``; returns without waiting for it.

    The setpoint goes first: a LakeShore whose ramping is switched off mid-ramp
    jumps its setpoint to the ramp's target, so ramping goes off only once the
    target is the hold temperature.
    """
    yield from bps.mv(controller.setpoint, temperature)
    yield from bps.mv(controller.ramp_enabled, "Off")
    yield from bps.mv(controller.control_mode, "Closed Loop")


def make_safe(station: Station) -> Generator:
    """Bias to zero and off, and the controller holding a safe setpoint."""
    source = station.bias_source
    yield from bps.mv(source.current, 0.0)
    yield from bps.mv(source.output_enabled, "Off")
    controller = station.cryostat
    present = yield from bps.rd(controller.sample_temperature)
    limit = yield from bps.rd(controller.sample_temperature_limit)
    yield from hold_at(controller, safe_hold_temperature(float(present), float(limit)))


def station_safety_wrapper(plan: Generator, station: Station) -> Generator:
    """Run ``plan`` and, however it ends (success, abort, exception), make the station safe."""
    return (yield from bpp.finalize_wrapper(plan, make_safe(station)))


class SampleTemperatureGuard(SuspenderBase):
    """Suspend near the sample's limit; stop the heating first.

    Watches the stage sensor, which leads the sample when heating: a runaway
    is caught before the lagging sample follows it, and a deliberate exposure
    of the sample alone (the stage stays cold) does not trip it. Trips when the
    stage exceeds ``limit - GUARD_MARGIN``; the pre-plan puts the controller in
    closed loop holding ``limit - HOLD_MARGIN`` with ramping off, so the heater
    brings the stage down instead of the run waiting for it to cool by itself.
    Resumes below ``limit - RESUME_MARGIN``. The limit is read from the
    controller's ``sample_temperature_limit`` at each reading.
    """

    def __init__(self, controller: TemperatureController):
        self.controller = controller
        super().__init__(controller.stage_temperature, pre_plan=self._stop_heating,
                         tripped_message="the sample neared its maximum safe temperature; "
                         "the cryostat now holds below it")
        self.trips = 0

    def __repr__(self) -> str:
        # SuspenderBase's repr shows the pre-plan, a bound method whose repr is this one.
        return f"SampleTemperatureGuard({self.controller.name})"

    @property
    def limit(self) -> float:
        return float(self.controller.sample_temperature_limit.get())

    def _should_suspend(self, value) -> bool:
        tripped = value is not None and float(value) > self.limit - GUARD_MARGIN
        if tripped and not self.tripped:
            self.trips += 1
            logger.error("stage at %.2f K, within %g K of the sample's %g K limit: holding at %g K",
                         float(value), GUARD_MARGIN, self.limit, self.limit - HOLD_MARGIN)
        return tripped

    def _should_resume(self, value) -> bool:
        return value is not None and float(value) < self.limit - RESUME_MARGIN

    def _stop_heating(self) -> Generator:
        yield from hold_at(self.controller, self.limit - HOLD_MARGIN)


class _ConnectionSignal(Signal):
    """True while every watched signal is connected; names the missing ones."""

    def __init__(self, watched: Iterable, **kwargs):
        super().__init__(value=True, **kwargs)
        self.watched = list(watched)
        self.disconnected: set[str] = set()
        self._lock = threading.Lock()
        for signal in self.watched:
            signal.subscribe(self._connection_changed, event_type=signal.SUB_META, run=True)

    def _connection_changed(self, *, obj, connected=None, **kwargs) -> None:
        if connected is None:
            return
        with self._lock:
            name = getattr(obj, "pvname", obj.name)
            if connected:
                self.disconnected.discard(name)
            else:
                self.disconnected.add(name)
            all_connected = not self.disconnected
        if all_connected != self.get():
            self.put(all_connected)


class InstrumentConnectionGuard(SuspenderBase):
    """Suspend while any watched PV is disconnected; resume when all are back.

    Watch one PV per IOC (a reading that updates), e.g. the controller's stage
    sensor and each lock-in's X. When the run resumes it rewinds to its last
    checkpoint, so the interrupted reading is taken again, not lost or doubled.
    """

    def __init__(self, watched: Iterable, *, sleep: float = 0.0,
                 post_plan: Callable[[], Generator] | None = None):
        self.connection = _ConnectionSignal(watched, name="instruments_connected")
        super().__init__(self.connection, sleep=sleep, post_plan=post_plan)

    def _should_suspend(self, value) -> bool:
        return not value

    def _should_resume(self, value) -> bool:
        return bool(value)

    def _get_justification(self) -> str:
        if not self.tripped:
            return ""
        missing = ", ".join(sorted(self.connection.disconnected)) or "(reconnected)"
        return f"instrument connection lost: {missing}"


class CompliancePause:
    """Pause the RunEngine, with a message, when the bias source is in compliance."""

    def __init__(self, station: Station):
        self.station = station
        self.RE = None
        self.message = ""

    def install(self, RE) -> None:
        self.RE = RE
        self.station.bias_source.compliance_tripped.subscribe(self._changed, run=False)

    def remove(self) -> None:
        self.station.bias_source.compliance_tripped.clear_sub(self._changed)
        self.RE = None

    def _changed(self, value=None, **kwargs) -> None:
        if not value or self.RE is None or not self.RE.state.is_running:
            return
        source = self.station.bias_source
        self.message = (
            f"paused: the bias source {source.name} hit its voltage compliance of "
            f"{source.voltage_limit.get():g} V with {source.current.get():g} A set "
            f"({source.measured_current.get():g} A flowing at "
            f"{source.measured_voltage.get():g} V); check the contacts or raise the "
            "compliance, then RE.resume() or RE.abort()"
        )
        logger.error(self.message)
        # request_pause blocks until the RunEngine answers; not in a CA callback thread.
        threading.Thread(target=self._pause, daemon=True, name="compliance-pause").start()

    def _pause(self) -> None:
        try:
            self.RE.request_pause(defer=False)
        except Exception as err:
            logger.error("could not pause on compliance: %s", err)
