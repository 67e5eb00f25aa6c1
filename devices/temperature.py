"""LakeShore 336 temperature controller: loop 1 heats the stage, input B sits on the sample."""

from __future__ import annotations

import logging
import math
import threading

from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus, EpicsSignalRO
from ophyd.status import Status

from tcstation.devices.clock import ClockedDevice
from tcstation.devices.signals import EpicsMeasurement, EpicsSetting, Quantity
from tcstation.devices.waiting import ToleranceHold, complete
from tcstation.instruments.lakeshore336 import (
    CONTROL_INPUTS,
    CONTROL_MODES,
    CONTROLLING_MODES,
    DERIVATIVE_RANGE,
    GAIN_RANGE,
    HEATER_RANGES,
    OFF_ON,
    RAMP_RATE_RANGE,
    SETPOINT_RANGE,
)
from tcstation.instruments.lakeshore336 import TEMPERATURE_LIMIT_RANGE as INPUT_LIMIT_RANGE

SETPOINT_MATCH = 1e-6  # K: the setpoint readback shows the value written
HOLD_MARGIN = 5.0
"""K below the sample's limit that stop() holds at most (default of ``hold_margin``)."""
TARGET_MARGIN = 1.0
"""K below the sample's limit that a target may reach (default of ``target_margin``)."""
STOP_WRITE_TIMEOUT = 5.0
"""Wall seconds stop() waits for each of its puts."""

logger = logging.getLogger(__name__)


class TemperatureLimitError(ValueError):
    """A temperature target outside the allowed range; nothing was written."""


class TemperatureTimeoutError(TimeoutError):
    """The sample did not hold the target within the timeout."""


class TemperatureMoveInterruptedError(RuntimeError):
    """A pending ``set`` ended by ``stop()`` or by a newer ``set``."""


class TemperatureController(ClockedDevice, Device):
    """A LakeShore 336 whose loop 1 controls the stage, read on the sample sensor.

    A movable: ``set(target)`` checks the target against the hardware range, the
    configured range and :meth:`max_target` (the mounted sample's limit less
    ``target_margin``) before anything is written, puts the setpoint, and returns
    a status that finishes once the *sample* sensor (input B, which lags the
    stage) has stayed within ``tolerance`` of the target for ``hold_time``.
    Setting the present setpoint again works the same way, so it completes. A
    raw ``setpoint.set()`` (or ``put``) is held to :meth:`max_target` too.

    ``stop()`` holds the present stage temperature when the controller is
    moving, never above :meth:`hold_ceiling` (the sample's limit less
    ``hold_margin``) nor above the present setpoint, and lowers an idle
    setpoint that sits above the ceiling.

    Temperatures are read in kelvin (``IN1:Kelvin``, ``IN2:Kelvin``: LakeShore
    ``KRDG?``) whatever the inputs' display units. The controller's own last line
    of defence is its input temperature limit (``IN2:TLimit`` and ``IN1:TLimit``,
    LakeShore ``TLIMIT``) at the sample's limit, which :meth:`apply_sample_input_limit`
    arms on both inputs.

    Times (``hold_time``, timeouts) are physical seconds, measured on the
    device's clock (:mod:`tcstation.devices.clock`; the hold on the simulation clock when
    there is one).

    Parameters
    ----------
    prefix : str
        PV prefix of the controller, e.g. ``"TCS:TC:"``.
    name : str
        Device name; signal names derive from it.
    time_scale : float
        Wall seconds per physical second of the default wall clock.
    clock : WallClock or SimulationClock, optional
        The clock to measure holds on.
    """

    sample_temperature = Cpt(EpicsMeasurement, "IN2:Kelvin", units="K", kind="hinted",
                             doc="Sample sensor (input B), K whatever its display units")
    stage_temperature = Cpt(EpicsMeasurement, "IN1:Kelvin", units="K", kind="normal",
                            doc="Stage sensor (input A, the one loop 1 controls), K")
    setpoint = Cpt(EpicsSetting, "OUT1:SP", allowed=SETPOINT_RANGE, units="K", kind="normal",
                   parent_check="check_setpoint", doc="Loop 1 setpoint, at most max_target()")
    heater_output = Cpt(EpicsMeasurement, "HTR1", units="%", kind="normal",
                        doc="Heater 1 output, percent of the range")

    heater_range = Cpt(EpicsSetting, "HTR1:Range", string=True, choices=HEATER_RANGES,
                       kind="config", doc="Heater 1 range")
    control_mode = Cpt(EpicsSetting, "OUT1:Mode", string=True, choices=CONTROL_MODES,
                       kind="config", doc="Loop 1 control mode")
    control_input = Cpt(EpicsSetting, "OUT1:Cntrl", string=True, choices=CONTROL_INPUTS,
                        kind="config", doc="Sensor input loop 1 controls")
    ramp_rate = Cpt(EpicsSetting, "RampR1", allowed=RAMP_RATE_RANGE, units="K/min",
                    kind="config", doc="Setpoint ramp rate")
    ramp_enabled = Cpt(EpicsSetting, "OnRamp1", string=True, choices=OFF_ON,
                       kind="config", doc="Setpoint ramping on/off")
    proportional_gain = Cpt(EpicsSetting, "P1", allowed=GAIN_RANGE, kind="config")
    integral_gain = Cpt(EpicsSetting, "I1", allowed=GAIN_RANGE, kind="config")
    derivative_gain = Cpt(EpicsSetting, "D1", allowed=DERIVATIVE_RANGE, kind="config")
    sample_input_limit = Cpt(EpicsSetting, "IN2:TLimit", allowed=INPUT_LIMIT_RANGE, units="K",
                             kind="config", doc="Input B temperature limit (TLIMIT): above it "
                             "the controller turns every output off; 0 = off")
    stage_input_limit = Cpt(EpicsSetting, "IN1:TLimit", allowed=INPUT_LIMIT_RANGE, units="K",
                            kind="config", doc="Input A temperature limit (TLIMIT), armed at "
                            "the sample's limit too: the stage leads the sample when heating")
    sample_sensor_units = Cpt(EpicsSignalRO, "IN2:Units_RBV", string=True, auto_monitor=True,
                              kind="config")
    stage_sensor_units = Cpt(EpicsSignalRO, "IN1:Units_RBV", string=True, auto_monitor=True,
                             kind="config")

    lower_limit = Cpt(Quantity, value=SETPOINT_RANGE[0], units="K", kind="config",
                      doc="Lowest target set() accepts")
    upper_limit = Cpt(Quantity, value=SETPOINT_RANGE[1], units="K", kind="config",
                      doc="Highest target set() accepts (the cryostat's own limit)")
    sample_temperature_limit = Cpt(Quantity, value=SETPOINT_RANGE[1], units="K", kind="config",
                                   doc="Maximum safe temperature of the mounted sample")
    target_margin = Cpt(Quantity, value=TARGET_MARGIN, units="K", kind="config",
                        doc="Targets stay at least this far below the sample's limit")
    hold_margin = Cpt(Quantity, value=HOLD_MARGIN, units="K", kind="config",
                      doc="stop() holds at least this far below the sample's limit")
    tolerance = Cpt(Quantity, value=0.1, units="K", kind="config",
                    doc="How close the sample must stay to the target")
    hold_time = Cpt(Quantity, value=30.0, units="s", kind="config",
                    doc="How long the sample must stay within tolerance")

    egu = "K"
    approach_margin = 900.0
    """Physical seconds added to the expected ramp duration for the default timeout."""

    def __init__(self, prefix: str = "", *, name: str, **kwargs):
        super().__init__(prefix, name=name, **kwargs)
        self._lock = threading.Lock()
        self._pending: DeviceStatus | None = None

    @property
    def position(self) -> float:
        """The sample temperature (K)."""
        return self.sample_temperature.get()

    @property
    def limits(self) -> tuple[float, float]:
        """The range of targets set() accepts now (K), up to :meth:`max_target`."""
        low, high = self._allowed_range()
        return low, min(high, self.max_target())

    def _allowed_range(self) -> tuple[float, float]:
        low = max(SETPOINT_RANGE[0], float(self.lower_limit.get()))
        high = min(SETPOINT_RANGE[1], float(self.upper_limit.get()))
        return low, high

    def max_target(self) -> float:
        """The highest target (K): the sample's limit less ``target_margin``."""
        return float(self.sample_temperature_limit.get()) - float(self.target_margin.get())

    def hold_ceiling(self) -> float:
        """The highest setpoint stop() leaves (K): the sample's limit less ``hold_margin``."""
        ceiling = float(self.sample_temperature_limit.get()) - float(self.hold_margin.get())
        return max(SETPOINT_RANGE[0], min(ceiling, self.max_target(), SETPOINT_RANGE[1]))

    def _above_max_target(self, kelvin: float) -> str | None:
        highest = self.max_target()
        if kelvin <= highest:
            return None
        return (f"{kelvin:g} K is above the highest target {highest:g} K (the mounted sample's "
                f"maximum safe temperature {float(self.sample_temperature_limit.get()):g} K "
                f"less the target margin {float(self.target_margin.get()):g} K)")

    def check_setpoint(self, kelvin: float) -> None:
        """Refuse a raw setpoint above :meth:`max_target` (``setpoint.set`` and ``put`` call this).

        Raises
        ------
        TemperatureLimitError
            Naming the value, the highest target and the sample's limit.
        """
        refusal = self._above_max_target(float(kelvin))
        if refusal is not None:
            raise TemperatureLimitError(f"{self.setpoint.name}: {refusal}")

    def check_target(self, target) -> float:
        """Return ``target`` as kelvin if set() may go there, else raise.

        Raises
        ------
        TemperatureLimitError
            With the value and the limit it breaks: not a finite number, outside the
            controller's range, or above :meth:`max_target`.
        """
        try:
            kelvin = float(target)
        except (TypeError, ValueError):
            raise TemperatureLimitError(
                f"{self.name}: target {target!r} is not a temperature in K") from None
        if not math.isfinite(kelvin):
            raise TemperatureLimitError(f"{self.name}: target {kelvin} K is not finite")
        low, high = self._allowed_range()
        if not low <= kelvin <= high:
            raise TemperatureLimitError(
                f"{self.name}: target {kelvin:g} K is outside the allowed range "
                f"{low:g} to {high:g} K")
        refusal = self._above_max_target(kelvin)
        if refusal is not None:
            raise TemperatureLimitError(f"{self.name}: target {refusal}")
        return kelvin

    def _check_ready(self, kelvin: float) -> None:
        """Refuse a set() the controller cannot carry out as configured."""
        mode = self.control_mode.get()
        if mode not in CONTROLLING_MODES:
            raise ValueError(f"{self.name}: loop 1 is in mode {mode!r}; set() needs one of "
                             f"{', '.join(CONTROLLING_MODES)}")
        warmest = max(self.stage_temperature.get(), self.sample_temperature.get())
        if self.heater_range.get() == "Off" and kelvin > warmest + self.tolerance.get():
            raise ValueError(f"{self.name}: the heater range is Off, so the stage cannot warm "
                             f"from {warmest:.3f} K to {kelvin:g} K; set heater_range first")

    def expected_timeout(self, kelvin: float) -> float:
        """Default timeout (physical s) of a set() to ``kelvin``.

        With ramping on, the LakeShore ramps from the present *setpoint*, so the ramp
        lasts ``|target - setpoint| / rate``; add the hold time and
        :attr:`approach_margin` for the heater, the thermal lag and the final approach.
        """
        ramp_seconds = 0.0
        if self.ramp_enabled.get() == "On":
            rate = float(self.ramp_rate.get())
            ramp_seconds = abs(kelvin - float(self.setpoint.get())) / rate * 60.0
        return 1.2 * ramp_seconds + float(self.hold_time.get()) + self.approach_margin

    def set(self, target, *, timeout: float | None = None) -> DeviceStatus:
        """Go to ``target`` K and finish once the sample holds it.

        Parameters
        ----------
        target : float
            Temperature, K.
        timeout : float, optional
            Physical seconds before the status fails; default
            :meth:`expected_timeout`.

        Returns
        -------
        DeviceStatus
            Finishes when the sample sensor has stayed within ``tolerance`` of
            ``target`` for ``hold_time``; fails with :class:`TemperatureTimeoutError`
            after ``timeout``, or :class:`TemperatureMoveInterruptedError` on ``stop()``
            or a newer ``set``.

        Raises
        ------
        TemperatureLimitError
            Before anything is written, if the target is not allowed.
        """
        kelvin = self.check_target(target)
        self._check_ready(kelvin)
        if timeout is None:
            timeout = self.expected_timeout(kelvin)
        tolerance = float(self.tolerance.get())
        hold_seconds = float(self.hold_time.get())
        hold = ToleranceHold(kelvin, tolerance, hold_seconds)
        clock = self.clock
        status = DeviceStatus(self, call_stop_on_failure=False)
        with self._lock:
            previous, self._pending = self._pending, status
        if previous is not None:
            complete(previous, TemperatureMoveInterruptedError(
                f"{self.name}: the move was replaced by a move to {kelvin:g} K"))

        def setpoint_reads_target() -> bool:
            readback = self.setpoint.get()
            return readback is not None and abs(readback - kelvin) <= SETPOINT_MATCH

        def check(value=None, **kwargs):
            if status.done:
                return
            if hold.update(value, clock.now()) and setpoint_reads_target():
                complete(status)

        def time_out():
            last = hold.last_value
            last_text = f"{last:.3f} K" if last is not None else "no reading"
            complete(status, TemperatureTimeoutError(
                f"{self.name}: the sample did not stay within {tolerance:g} K of "
                f"{kelvin:g} K for {hold_seconds:g} s within {timeout:g} s "
                f"(sample now {last_text}, setpoint reads {self.setpoint.get():g} K)"))

        def setpoint_written(written):
            if not written.success:
                complete(status, written.exception())

        timer = threading.Timer(clock.wall_seconds(timeout), time_out)
        timer.daemon = True

        def clean_up(finished):
            timer.cancel()
            self.sample_temperature.unsubscribe(subscription)
            with self._lock:
                if self._pending is finished:
                    self._pending = None

        try:
            written = self.setpoint.set(kelvin)
        except Exception as err:
            complete(status, err)
            with self._lock:
                if self._pending is status:
                    self._pending = None
            raise
        subscription = self.sample_temperature.subscribe(check, run=False)
        status.add_callback(clean_up)
        written.add_callback(setpoint_written)
        timer.start()
        clock.run_fast_while(lambda: not status.done)
        return status

    def apply_sample_input_limit(self, kelvin: float) -> Status:
        """Arm the controller's temperature limit (``TLIMIT``) on both inputs at ``kelvin``.

        The sample input (B) is the limit itself. The stage input (A) gets the same
        limit because the stage leads the sample when heating: with only input B
        armed, a runaway heater has the stage some 25 K above the sample by the time
        the sample crosses its limit, and the sample goes on warming to meet it.
        Idempotent: a limit the controller already reads back is not written again.

        Parameters
        ----------
        kelvin : float
            The mounted sample's maximum safe temperature, K (0 turns the limits off).

        Returns
        -------
        ophyd.status.Status
            Finishes when the controller reads both limits back.
        """
        kelvin = float(kelvin)
        statuses = []
        for limit in (self.sample_input_limit, self.stage_input_limit):
            if limit.readback_shows(kelvin):
                status = Status(limit)
                status.set_finished()
            else:
                status = limit.set(kelvin)
            statuses.append(status)
        return statuses[0] & statuses[1]

    def stop(self, *, success: bool = False) -> None:
        """Hold the present stage temperature if the controller is moving, never above the ceiling.

        Moving means a pending ``set`` or a stage more than ``tolerance`` away from
        the setpoint (a ramp or a step under way). Then ramping goes off and the
        setpoint goes to the stage reading, but never above :meth:`hold_ceiling`
        nor above the present setpoint (stop() never raises it), and a pending
        ``set`` fails. An idle controller is left alone (the RunEngine
        calls ``stop`` at the end of every plan that moved it) unless its setpoint
        is above :meth:`hold_ceiling`: then the setpoint comes down to it.

        A controller whose IOC is disconnected is not written to (a put queued now
        would land whenever the IOC returns): a pending ``set`` fails and a warning
        is logged. The RunEngine calls ``stop`` when an outage suspends a run; the
        ramp then goes on in the controller and the plan resumes on it.
        """
        with self._lock:
            pending, self._pending = self._pending, None
        if not (self.setpoint.connected and self.stage_temperature.connected):
            # A put queued now would land whenever the IOC returns, long after this
            # stop() was asked for (a suspension's stop would then end the resumed ramp).
            # While the controller is away its own input limits and the watchdog guard
            # the sample.
            message = (f"{self.name}: stop() wrote nothing: the controller's IOC is "
                       f"disconnected")
            if pending is not None:
                complete(pending, TemperatureMoveInterruptedError(message))
            logger.warning(message)
            return
        ceiling = self.hold_ceiling()
        stage = _reading_or_none(self.stage_temperature)
        setpoint = _reading_or_none(self.setpoint)
        moving = (pending is not None or stage is None or setpoint is None
                  or abs(stage - setpoint) > float(self.tolerance.get()))
        if not moving and setpoint <= ceiling:
            return
        start_from = stage if stage is not None else setpoint
        if start_from is None:
            if pending is not None:
                complete(pending, TemperatureMoveInterruptedError(
                    f"{self.name}: stopped; the controller does not answer, nothing written"))
            raise TemperatureMoveInterruptedError(
                f"{self.name}: cannot stop: neither the stage temperature nor the setpoint "
                f"can be read")
        # Never raise the setpoint: a hold already below the stage (a guard's, a
        # finalizer's, a cool-down's target) stays where it is.
        hold_at = min(max(start_from, SETPOINT_RANGE[0]), ceiling,
                      setpoint if setpoint is not None else math.inf)
        try:
            # Setpoint first: a LakeShore switched out of ramping mid-ramp jumps to the target.
            self.setpoint.set(hold_at).wait(STOP_WRITE_TIMEOUT)
            self.ramp_enabled.set("Off").wait(STOP_WRITE_TIMEOUT)
        finally:
            if pending is not None:
                complete(pending, TemperatureMoveInterruptedError(
                    f"{self.name}: stopped; holding the stage at {hold_at:.3f} K"))


def _reading_or_none(signal) -> float | None:
    """``signal``'s finite value, or None (no reading, or its IOC does not answer)."""
    try:
        number = float(signal.get())
    except Exception:  # noqa: BLE001 - disconnected, timed out, None
        return None
    return number if math.isfinite(number) else None
