"""SourceMeter-class dc current source with voltage compliance: the transport bias."""

from __future__ import annotations

import logging
import math
import threading

from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus

from devices.signals import EpicsFlag, EpicsMeasurement, EpicsSetting, Quantity
from devices.waiting import complete

logger = logging.getLogger(__name__)

CURRENT_RANGE = 1.05  # A, the 1 A range with its over-range (:SOUR:CURR)
VOLTAGE_LIMIT_RANGE = (0.2, 21.0)  # V (:SENS:VOLT:PROT)
SETPOINT_MATCH = 1e-9  # A: the setpoint readback shows the value written


class CurrentLimitError(ValueError):
    """A bias current outside the allowed range; nothing was written."""


class ComplianceError(RuntimeError):
    """The source hit its voltage compliance and does not deliver the current asked for."""


def _last_reading(signal) -> str:
    """``signal``'s value for an error message, or why there is none (a message must not raise)."""
    try:
        return f"{float(signal.get()):.6g} A"
    except Exception as err:  # noqa: BLE001 - disconnected, timed out, None
        return f"unknown ({type(err).__name__}: {err})"


class CurrentSource(Device):
    """A dc current source: a movable bias current with output enable and compliance.

    ``set(current)`` checks ``|current| <= current_limit`` before anything is
    written, puts the setpoint and, with the output on, finishes once
    ``settled_readings`` consecutive measurements delivered after the put are
    within ``current_tolerance`` of the target. If the source reports compliance
    instead, the status fails with :class:`ComplianceError`; every reading
    carries ``compliance_tripped``.

    Parameters
    ----------
    prefix : str
        PV prefix of the source, e.g. ``"TCS:SRC:"``.
    name : str
        Device name.
    """

    measured_current = Cpt(EpicsMeasurement, "CurrMeas", units="A", kind="hinted",
                           doc="Measured output current")
    current = Cpt(EpicsSetting, "Curr", allowed=(-CURRENT_RANGE, CURRENT_RANGE), units="A",
                  kind="normal", doc="Bias current setpoint")
    measured_voltage = Cpt(EpicsMeasurement, "VoltMeas", units="V", kind="normal",
                           doc="Measured output voltage")
    compliance_tripped = Cpt(EpicsFlag, "Tripped", kind="normal",
                             doc="Output limited by the voltage compliance")
    output_enabled = Cpt(EpicsSetting, "Output", string=True, choices=("Off", "On"),
                         kind="normal", doc="Output on/off")
    voltage_limit = Cpt(EpicsSetting, "VoltLimit", allowed=VOLTAGE_LIMIT_RANGE, units="V",
                        kind="config", doc="Voltage compliance")
    current_limit = Cpt(Quantity, value=CURRENT_RANGE, units="A", kind="config",
                        doc="Largest |current| set() accepts")
    current_tolerance = Cpt(Quantity, value=0.5e-3, units="A", kind="config",
                            doc="How close the measured current must come to the setpoint")

    egu = "A"
    fresh_reading_timeout = 5.0
    """Wall seconds to wait for the IOC to deliver the measurements after a put."""
    settled_readings = 2
    """Consecutive measurements after the put that must agree before set() decides.

    The first measurement an IOC delivers after a put may have been acquired
    across the change (a polled instrument; the simulator publishes a tick's
    measurement after a put that its physics step did not see yet).
    """

    @property
    def position(self) -> float:
        """The measured current (A)."""
        return self.measured_current.get()

    @property
    def limits(self) -> tuple[float, float]:
        limit = min(float(self.current_limit.get()), CURRENT_RANGE)
        return -limit, limit

    def check_current(self, value) -> float:
        """Return ``value`` in A if set() may go there, else raise :class:`CurrentLimitError`."""
        low, high = self.limits
        try:
            amps = float(value)
        except (TypeError, ValueError):
            raise CurrentLimitError(f"{self.name}: {value!r} is not a current in A") from None
        if not math.isfinite(amps) or not low <= amps <= high:
            raise CurrentLimitError(f"{self.name}: {amps:g} A is outside the allowed range "
                                    f"{low:g} to {high:g} A")
        return amps

    def set(self, value) -> DeviceStatus:
        """Set the bias current; see the class docstring.

        Raises
        ------
        CurrentLimitError
            Before anything is written, if ``|value| > current_limit``.
        """
        amps = self.check_current(value)
        status = DeviceStatus(self, call_stop_on_failure=False)
        if self.output_enabled.get() != "On":
            setpoint_status = self.current.set(amps)
            setpoint_status.add_callback(
                lambda done: complete(status, None if done.success else done.exception()))
            return status

        tolerance = float(self.current_tolerance.get())

        consecutive = {"delivering": 0, "tripped": 0}

        def check(*args, **kwargs):
            # Measurements count once the setpoint readback shows the new value; the
            # first of them may still have been taken across the change.
            readback = self.current.get()
            if readback is None or abs(readback - amps) > SETPOINT_MATCH:
                return
            tripped = bool(self.compliance_tripped.get())
            delivering = not tripped and abs(self.measured_current.get() - amps) <= tolerance
            consecutive["tripped"] = consecutive["tripped"] + 1 if tripped else 0
            consecutive["delivering"] = consecutive["delivering"] + 1 if delivering else 0
            if consecutive["tripped"] >= self.settled_readings:
                complete(status, ComplianceError(
                    f"{self.name}: in compliance at {self.voltage_limit.get():g} V: "
                    f"{self.measured_current.get():.6g} A measured of {amps:g} A set"))
            elif consecutive["delivering"] >= self.settled_readings:
                complete(status)

        outage = threading.Event()

        def connection_changed(*args, connected=True, **kwargs):
            if not connected:
                outage.set()

        def time_out():
            if outage.is_set() or not self.measured_current.connected:
                # A RunEngine aborts the run on any failed status issued before a suspension,
                # even once the connection guard has resumed and rewound the plan (which puts
                # again). So a move the IOC's outage interrupted is left pending, not failed.
                clean_up(status)
                logger.warning("%s: the IOC went away during the move to %g A; the move is "
                               "left pending (the connection guard rewinds the plan, which "
                               "puts again)", self.name, amps)
                return
            complete(status, TimeoutError(
                f"{self.name}: no measured current within {tolerance:g} A of {amps:g} A "
                f"{self.fresh_reading_timeout:g} s after the put (measured "
                f"{_last_reading(self.measured_current)}, setpoint reads "
                f"{_last_reading(self.current)})"))

        timer = threading.Timer(self.fresh_reading_timeout, time_out)
        timer.daemon = True

        def clean_up(finished):
            timer.cancel()
            self.compliance_tripped.unsubscribe(subscription)
            self.measured_current.unsubscribe(meta_subscription)

        meta_subscription = self.measured_current.subscribe(
            connection_changed, event_type=self.measured_current.SUB_META, run=False)
        self.current.put(amps)
        subscription = self.compliance_tripped.subscribe(check, run=False)
        status.add_callback(clean_up)
        timer.start()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Nothing moves: the source keeps its present current."""
