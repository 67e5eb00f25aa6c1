"""Safety of the sample and the instruments: the RunEngine's layer of the station's safety.

The sample's limit is protected in three layers, each independent of the others:

1. the controller's own input temperature limit (LakeShore 336 ``TLIMIT``), which
   shuts every output down inside the instrument;
2. the watchdog (:mod:`tcstation.watchdog`), a process of its own that needs no
   plan running;
3. this module, inside the RunEngine:

* :class:`SampleTemperatureGuard` suspends a run when the stage (in kelvin,
  whatever the display units) is about to near the sample's limit: it predicts
  the reading one reaction time ahead from its rate of rise, cuts the heater at
  once from the monitor callback, then holds a safe setpoint before waiting.
* :func:`refuse_unsafe_setpoints`, a RunEngine preprocessor, refuses any
  setpoint above the highest target (also from a rewind after a suspension, so a
  resumed plan cannot put the unsafe value back), ending the run with the value.
* :class:`InstrumentConnectionGuard` suspends a run while any watched PV is
  disconnected (an IOC that died or restarts) and resumes when all are back.
* :class:`CompliancePause` pauses the RunEngine with a message when the bias
  source hits its voltage compliance.
* :func:`station_safety_wrapper` runs :func:`make_safe` on every exit of a
  plan: bias to zero, output off, the controller holding a safe setpoint.

Policy values (kelvin below the sample's limit, ``limit = max_safe_temperature``)::

    limit                      the sample's limit; TLIMIT on the sample input
    limit - WATCHDOG_MARGIN    the watchdog's trip point (predicted reading)
    limit - GUARD_MARGIN       the guard's trip point (predicted stage reading)
    limit - TARGET_MARGIN      the highest target a plan or the queue accepts
    limit - RESUME_MARGIN      a suspended run may resume below this
    limit - HOLD_MARGIN        the setpoint every safe hold uses
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterable

from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.suspenders import SuspenderBase
from bluesky.utils import Msg
from ophyd import Signal

from tcstation.devices.station import Station
from tcstation.devices.temperature import TemperatureController
from tcstation.plans.policy import (
    GUARD_MARGIN,
    GUARD_REACTION_TIME,
    HOLD_MARGIN,
    RESUME_MARGIN,
    TARGET_MARGIN,
    WATCHDOG_MARGIN,  # noqa: F401  (policy, re-exported)
    RisePredictor,
    heating_bound,
)

logger = logging.getLogger(__name__)

class UnsafeSetpointError(RuntimeError):
    """A plan put a setpoint above what the station can hold; nothing was written."""


def highest_target(controller: TemperatureController) -> float:
    """The highest temperature a plan may aim for: ``limit - TARGET_MARGIN`` (K)."""
    max_target = getattr(controller, "max_target", None)
    if callable(max_target):
        return float(max_target())
    return float(controller.sample_temperature_limit.get()) - TARGET_MARGIN


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
    """Bias to zero and off, and the controller holding a safe setpoint.

    Starts with a checkpoint: the runs of the plan are closed by now, so a
    suspension during the clean-up rewinds only the clean-up (never replaying a
    closed run's messages).
    """
    yield from bps.checkpoint()
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


def _writes_setpoint(obj, controller: TemperatureController) -> bool:
    if obj is controller or obj is controller.setpoint:
        return True
    written = getattr(obj, "setpoint_pvname", None) or getattr(obj, "pvname", None)
    return written is not None and written == controller.setpoint.setpoint_pvname


def refuse_unsafe_setpoints(controller: TemperatureController) -> Callable:
    """A RunEngine preprocessor: a ``set`` of the setpoint above the highest target fails.

    Checks every message, whatever object carries the put (the controller, its
    setpoint signal or any signal on the same PV), also those a rewind replays
    after a suspension, so a plan that caused a trip cannot put the unsafe value
    back on resume: the run ends with :class:`UnsafeSetpointError` naming the value
    and the allowed range, and the clean-up runs.

    Use as ``RE.preprocessors.append(refuse_unsafe_setpoints(station.cryostat))``.
    """

    def check(msg: Msg):
        if msg.command != "set" or not msg.args or not _writes_setpoint(msg.obj, controller):
            return None, None
        try:
            value = float(msg.args[0])
        except (TypeError, ValueError):
            return None, None
        highest = highest_target(controller)
        if math.isfinite(value) and value <= highest:
            return None, None

        def refuse() -> Generator:
            raise UnsafeSetpointError(
                f"refused: setpoint {value:g} K for {getattr(msg.obj, 'name', msg.obj)} is "
                f"outside the allowed range {controller.lower_limit.get():g} to "
                f"{highest:g} K (the sample's limit "
                f"{float(controller.sample_temperature_limit.get()):g} K less "
                f"{TARGET_MARGIN:g} K); nothing was written")
            yield  # pragma: no cover

        return refuse(), None

    def preprocessor(plan: Generator) -> Generator:
        return (yield from bpp.plan_mutator(plan, check))

    return preprocessor


class SampleTemperatureGuard(SuspenderBase):
    """Suspend before the sample nears its limit; stop the heating first.

    Watches the stage sensor in kelvin (``stage_temperature``, the controller's
    kelvin reading whatever the display units), which leads the sample when
    heating: a runaway is caught before the lagging sample follows it, and a
    deliberate exposure of the sample alone (the stage stays cold) does not trip
    it. Trips when the stage, predicted one reaction time ahead from its rate of
    rise (:class:`RisePredictor`, :data:`GUARD_REACTION_TIME`), exceeds
    ``limit - GUARD_MARGIN``, or when it reads no kelvin temperature at all (not a
    positive number). On the trip the heater range goes Off at once, from the
    monitor callback (whether or not a plan runs); the pre-plan then puts the
    controller in closed loop holding ``limit - HOLD_MARGIN`` with ramping off and
    gives the heater its range back, so the loop holds there. Resumes
    below ``limit - RESUME_MARGIN``. The limit is read from the controller's
    ``sample_temperature_limit`` at each reading.
    """

    def __init__(self, controller: TemperatureController, *,
                 reaction_time: float = GUARD_REACTION_TIME):
        self.controller = controller
        self.reaction_time = reaction_time
        self.predictor = RisePredictor()
        super().__init__(controller.stage_temperature, pre_plan=self._stop_heating,
                         tripped_message="the sample neared its maximum safe temperature; "
                         "the cryostat now holds below it")
        self.trips = 0
        self.last_trip: str = ""
        self.heater_range_before_trip: str | None = None

    def __repr__(self) -> str:
        # SuspenderBase's repr shows the pre-plan, a bound method whose repr is this one.
        return f"SampleTemperatureGuard({self.controller.name})"

    @property
    def limit(self) -> float:
        return float(self.controller.sample_temperature_limit.get())

    @property
    def trip_point(self) -> float:
        return self.limit - GUARD_MARGIN

    def __call__(self, value, **kwargs):
        stamp = kwargs.get("timestamp") or time.time()
        if value is not None:
            try:
                self.predictor.update(float(stamp), float(value))
            except (TypeError, ValueError):
                pass
        return super().__call__(value, **kwargs)

    def _should_suspend(self, value) -> bool:
        if value is None:
            return False
        try:
            kelvin = float(value)
        except (TypeError, ValueError):
            kelvin = math.nan
        if not (math.isfinite(kelvin) and kelvin > 0):
            reason = (f"the stage reads {value!r}, not a temperature in kelvin: the guard is "
                      "blind, so it holds the cryostat")
        else:
            predicted = self.predictor.predicted(self.reaction_time, self._bound())
            if not predicted > self.trip_point and not kelvin > self.trip_point:
                return False
            reason = (f"stage at {kelvin:.2f} K rising {self.predictor.rate:.3g} K/s (wall), "
                      f"predicted {predicted:.2f} K within {self.reaction_time:g} s, past the "
                      f"trip point {self.trip_point:g} K ({GUARD_MARGIN:g} K below the "
                      f"sample's {self.limit:g} K limit)")
        if not self.tripped:
            self.trips += 1
            self._cut_heater()
            self.last_trip = reason
            logger.error("temperature guard: %s; heater off, holding at %g K", reason,
                         self.limit - HOLD_MARGIN)
        return True

    def _bound(self) -> float:
        controller = self.controller
        try:
            return heating_bound(controller.control_mode.get(), controller.heater_range.get(),
                                 controller.setpoint.get())
        except Exception:
            return math.inf

    def _should_resume(self, value) -> bool:
        try:
            kelvin = float(value)
        except (TypeError, ValueError):
            return False
        return 0 < kelvin < self.limit - RESUME_MARGIN

    def _get_justification(self) -> str:
        return f"{self._tripped_message}: {self.last_trip}" if self.last_trip else \
            self._tripped_message

    def _cut_heater(self) -> None:
        """Heater range Off now: no waiting, callable from a monitor callback."""
        try:
            previous = self.controller.heater_range.get()
            if previous != "Off":
                self.heater_range_before_trip = previous
            self.controller.heater_range.put("Off", wait=False)
        except Exception as err:
            logger.error("temperature guard: could not put the heater range Off: %s", err)

    def _stop_heating(self) -> Generator:
        """Heater off, then a closed-loop hold at ``limit - HOLD_MARGIN``, then the heater's
        range back, so that the loop holds there (it cannot heat past the hold)."""
        controller = self.controller
        yield from bps.mv(controller.heater_range, "Off")
        yield from hold_at(controller, self.limit - HOLD_MARGIN)
        if self.heater_range_before_trip not in (None, "Off"):
            yield from bps.mv(controller.heater_range, self.heater_range_before_trip)


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
