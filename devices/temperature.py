"""LakeShore 336 temperature controller: loop 1 heats the stage, input B sits on the sample."""

from __future__ import annotations

import math
import threading
import time

from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus, EpicsSignalRO

from devices.signals import EpicsMeasurement, EpicsSetting, Quantity
from devices.waiting import ToleranceHold, complete

SETPOINT_RANGE = (0.0, 325.0)  # K, LakeShore 336 SETP
RAMP_RATE_RANGE = (0.1, 100.0)  # K/min, RAMP
GAIN_RANGE = (0.1, 1000.0)  # P and I of PID
DERIVATIVE_RANGE = (0.0, 200.0)  # D of PID
HEATER_RANGES = ("Off", "Low", "Medium", "High")
CONTROL_MODES = ("Off", "Closed Loop", "Zone", "Open Loop")
CONTROL_INPUTS = ("None", "A", "B", "C", "D")
CONTROLLING_MODES = ("Closed Loop", "Zone")
SETPOINT_MATCH = 1e-6  # K: the setpoint readback shows the value written


class TemperatureLimitError(ValueError):
    """A temperature target outside the allowed range; nothing was written."""


class TemperatureTimeoutError(TimeoutError):
    """The sample did not hold the target within the timeout."""


class TemperatureMoveInterruptedError(RuntimeError):
    """A pending ``set`` ended by ``stop()`` or by a newer ``set``."""


class TemperatureController(Device):
    """A LakeShore 336 whose loop 1 controls the stage, read on the sample sensor.

    A movable: ``set(target)`` checks the target against the hardware range, the
    configured range and the mounted sample's limit before anything is written,
    puts the setpoint, and returns a status that finishes once the *sample*
    sensor (input B, which lags the stage) has stayed within ``tolerance`` of the
    target for ``hold_time``. Setting the present setpoint again works the same
    way, so it completes. ``stop()`` holds the present stage temperature when the
    controller is moving.

    Times (``hold_time``, timeouts) are physical seconds; ``time_scale`` (wall
    seconds per physical second, 1 for a real cryostat) converts them.

    Parameters
    ----------
    prefix : str
        PV prefix of the controller, e.g. ``"TCS:TC:"``.
    name : str
        Device name; signal names derive from it.
    """

    sample_temperature = Cpt(EpicsMeasurement, "IN2", units="K", kind="hinted",
                             doc="Sample sensor (input B)")
    stage_temperature = Cpt(EpicsMeasurement, "IN1", units="K", kind="normal",
                            doc="Stage sensor (input A), the one loop 1 controls")
    setpoint = Cpt(EpicsSetting, "OUT1:SP", allowed=SETPOINT_RANGE, units="K", kind="normal",
                   doc="Loop 1 setpoint")
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
    ramp_enabled = Cpt(EpicsSetting, "OnRamp1", string=True, choices=("Off", "On"),
                       kind="config", doc="Setpoint ramping on/off")
    proportional_gain = Cpt(EpicsSetting, "P1", allowed=GAIN_RANGE, kind="config")
    integral_gain = Cpt(EpicsSetting, "I1", allowed=GAIN_RANGE, kind="config")
    derivative_gain = Cpt(EpicsSetting, "D1", allowed=DERIVATIVE_RANGE, kind="config")
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
    tolerance = Cpt(Quantity, value=0.1, units="K", kind="config",
                    doc="How close the sample must stay to the target")
    hold_time = Cpt(Quantity, value=30.0, units="s", kind="config",
                    doc="How long the sample must stay within tolerance")

    egu = "K"
    approach_margin = 900.0
    """Physical seconds added to the expected ramp duration for the default timeout."""

    def __init__(self, prefix: str = "", *, name: str, time_scale: float = 1.0, **kwargs):
        super().__init__(prefix, name=name, **kwargs)
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._pending: DeviceStatus | None = None

    @property
    def position(self) -> float:
        """The sample temperature (K)."""
        return self.sample_temperature.get()

    @property
    def limits(self) -> tuple[float, float]:
        """The range of targets set() accepts now (K), the sample's limit included."""
        low, high = self._allowed_range()
        return low, min(high, float(self.sample_temperature_limit.get()))

    def _allowed_range(self) -> tuple[float, float]:
        low = max(SETPOINT_RANGE[0], float(self.lower_limit.get()))
        high = min(SETPOINT_RANGE[1], float(self.upper_limit.get()))
        return low, high

    def check_target(self, target) -> float:
        """Return ``target`` as kelvin if set() may go there, else raise.

        Raises
        ------
        TemperatureLimitError
            With the value and the limit it breaks: not a finite number, outside the
            controller's range, or above the mounted sample's maximum safe temperature.
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
        sample_limit = float(self.sample_temperature_limit.get())
        if kelvin > sample_limit:
            raise TemperatureLimitError(
                f"{self.name}: target {kelvin:g} K is above the mounted sample's maximum "
                f"safe temperature {sample_limit:g} K")
        return kelvin

    def _check_ready(self, kelvin: float) -> None:
        """Refuse a set() the controller cannot carry out as configured."""
        units = self.sample_sensor_units.get()
        if units != "K":
            raise ValueError(f"{self.name}: the sample sensor reads in {units!r}, not 'K'; "
                             f"set its units to K before moving")
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
            after ``timeout``, or :class:`TemperatureMoveInterruptedError` on ``stop()``.

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
        hold = ToleranceHold(kelvin, tolerance, hold_seconds * self.time_scale)
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
            if hold.update(value, time.monotonic()) and setpoint_reads_target():
                complete(status)

        def time_out():
            last = hold.last_value
            last_text = f"{last:.3f} K" if last is not None else "no reading"
            complete(status, TemperatureTimeoutError(
                f"{self.name}: the sample did not stay within {tolerance:g} K of "
                f"{kelvin:g} K for {hold_seconds:g} s within {timeout:g} s "
                f"(sample now {last_text}, setpoint reads {self.setpoint.get():g} K)"))

        timer = threading.Timer(timeout * self.time_scale, time_out)
        timer.daemon = True

        def clean_up(finished):
            timer.cancel()
            self.sample_temperature.unsubscribe(subscription)
            with self._lock:
                if self._pending is finished:
                    self._pending = None

        try:
            self.setpoint.put(kelvin)
        except Exception as err:
            complete(status, err)
            with self._lock:
                if self._pending is status:
                    self._pending = None
            raise
        subscription = self.sample_temperature.subscribe(check, run=False)
        status.add_callback(clean_up)
        timer.start()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Hold the present stage temperature if the controller is moving.

        Moving means a pending ``set`` or a stage more than ``tolerance`` away from
        the setpoint (a ramp or a step under way). Then ramping goes off and the
        setpoint goes to the stage reading, and a pending ``set`` fails. An idle
        controller is left alone: the RunEngine calls ``stop`` at the end of every
        plan that moved it.
        """
        with self._lock:
            pending, self._pending = self._pending, None
        stage = float(self.stage_temperature.get())
        setpoint = float(self.setpoint.get())
        if pending is None and abs(stage - setpoint) <= float(self.tolerance.get()):
            return
        hold_at = min(max(stage, SETPOINT_RANGE[0]), SETPOINT_RANGE[1])
        # Setpoint first: a LakeShore switched out of ramping mid-ramp jumps to the target.
        self.setpoint.put(hold_at, use_complete=True, wait=True, timeout=5.0)
        self.ramp_enabled.put("Off", use_complete=True, wait=True, timeout=5.0)
        if pending is not None:
            complete(pending, TemperatureMoveInterruptedError(
                f"{self.name}: stopped; holding the stage at {hold_at:.3f} K"))
