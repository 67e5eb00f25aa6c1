"""SourceMeter-class dc current source with voltage compliance: the transport bias."""

from __future__ import annotations

import logging
import math
import threading
import time

from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus

from tcstation.devices.signals import EpicsFlag, EpicsMeasurement, EpicsSetting, Quantity
from tcstation.devices.waiting import OUTAGE_TIMEOUT, OutageTimeoutError, complete, wait_connected
from tcstation.instruments.sourcemeter import (
    CURRENT_LIMIT,
    CURRENT_RANGE,
    OFF_ON,
    VOLTAGE_LIMIT_RANGE,
)

logger = logging.getLogger(__name__)



class CurrentLimitError(ValueError):
    """A bias current outside the allowed range; nothing was written."""


class ComplianceError(RuntimeError):
    """The source hit its voltage compliance and does not deliver the current asked for."""


def _snapshot(signal) -> tuple:
    """(timestamp, value) of ``signal`` now, or (None, None) if it cannot be read."""
    try:
        return signal.timestamp, signal.get()
    except Exception:  # noqa: BLE001 - disconnected, timed out: the monitors will tell
        return None, None


def _last_reading(signal) -> str:
    """``signal``'s value for an error message, or why there is none (a message must not raise)."""
    try:
        return f"{float(signal.get()):.6g} A"
    except Exception as err:  # noqa: BLE001 - disconnected, timed out, None
        return f"unknown ({type(err).__name__}: {err})"


class CurrentSource(Device):
    """A dc current source: a movable bias current with output enable and compliance.

    ``set(current)`` checks ``|current| <= current_limit`` before anything is
    written, then puts the setpoint with completion. With the output on it
    finishes once the IOC has completed the put, the setpoint readback shows the
    value, and ``settled_readings`` measurements that the IOC posted at or after
    that readback are within ``current_tolerance`` of the target. An IOC with
    database semantics posts the new measurement before it completes the put, so
    one confirmation costs no wait; a measurement that comes later (a polled
    instrument) is waited for. If the source reports compliance instead, the
    status fails with :class:`ComplianceError`; every reading carries
    ``compliance_tripped``. A move the IOC's outage interrupts stays pending while
    the IOC is away, then puts again and finishes on measurements after the
    reconnection (a RunEngine's rewind may wait on it again); it fails with
    :class:`~tcstation.devices.waiting.OutageTimeoutError` if the IOC is not back within
    ``outage_timeout`` wall seconds, and simply finishes if a newer ``set()``
    superseded it meanwhile.

    Parameters
    ----------
    prefix : str
        PV prefix of the source, e.g. ``"TCS:SRC:"``.
    name : str
        Device name.
    """

    measured_current = Cpt(EpicsMeasurement, "CurrMeas", units="A", kind="hinted",
                           doc="Measured output current")
    current = Cpt(EpicsSetting, "Curr", allowed=CURRENT_RANGE, units="A",
                  kind="normal", doc="Bias current setpoint")
    measured_voltage = Cpt(EpicsMeasurement, "VoltMeas", units="V", kind="normal",
                           doc="Measured output voltage")
    compliance_tripped = Cpt(EpicsFlag, "Tripped", kind="normal",
                             doc="Output limited by the voltage compliance")
    output_enabled = Cpt(EpicsSetting, "Output", string=True, choices=OFF_ON,
                         kind="normal", doc="Output on/off")
    voltage_limit = Cpt(EpicsSetting, "VoltLimit", allowed=VOLTAGE_LIMIT_RANGE, units="V",
                        kind="config", doc="Voltage compliance")
    current_limit = Cpt(Quantity, value=CURRENT_LIMIT, units="A", kind="config",
                        doc="Largest |current| set() accepts")
    current_tolerance = Cpt(Quantity, value=0.5e-3, units="A", kind="config",
                            doc="How close the measured current must come to the setpoint")

    egu = "A"
    fresh_reading_timeout = 60.0
    """Wall seconds to wait for the IOC to deliver the measurements after a put.

    An IOC with database semantics posts them before it completes the put; the
    timeout only fires on a connected IOC that stopped answering (5 s fired on a
    loaded machine; a lost connection is an outage, handled apart).
    """
    outage_timeout = OUTAGE_TIMEOUT
    """Wall seconds from an outage for the IOC to come back before the move fails."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._moves = 0
        self._moves_lock = threading.Lock()
    settled_readings = 1
    """Measurements posted at or after the put's readback that must agree before set() decides.

    Measurements count by the IOC's own timestamps, so the order in which the
    client's threads deliver the put completion and the monitors does not matter.
    """

    @property
    def position(self) -> float:
        """The measured current (A)."""
        return self.measured_current.get()

    @property
    def limits(self) -> tuple[float, float]:
        limit = min(float(self.current_limit.get()), CURRENT_LIMIT)
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
            written = self.current.set(amps)
            written.add_callback(
                lambda done: complete(status, None if done.success else done.exception()))
            return status
        with self._moves_lock:
            self._moves += 1
            move = self._moves
        recovery = {"deadline": None}

        def recover():
            if recovery["deadline"] is None:
                recovery["deadline"] = time.monotonic() + self.outage_timeout
            logger.warning("%s: the IOC went away during the move to %g A; the move waits up "
                           "to %g s for it, then puts again", self.name, amps,
                           self.outage_timeout)
            signals = (self.measured_current, self.current, self.compliance_tripped)
            if not wait_connected(signals, recovery["deadline"] - time.monotonic()):
                missing = ", ".join(signal.name for signal in signals if not signal.connected)
                complete(status, OutageTimeoutError(
                    f"{self.name}: the IOC did not come back within {self.outage_timeout:g} s "
                    f"of the outage during the move to {amps:g} A (still disconnected: "
                    f"{missing or 'none'})"))
                return
            if move != self._moves:
                logger.warning("%s: the IOC is back; the move to %g A was superseded by a "
                               "newer set() and ends", self.name, amps)
                complete(status)
                return
            logger.warning("%s: the IOC is back; putting %g A again", self.name, amps)
            try:
                self._confirm(status, amps, on_outage)
            except Exception as err:  # noqa: BLE001 - the put itself failed
                complete(status, err)

        def on_outage():
            threading.Thread(target=recover, name=f"{self.name}-recover", daemon=True).start()

        self._confirm(status, amps, on_outage)
        return status

    def _confirm(self, status: DeviceStatus, amps: float, on_outage) -> None:
        """Put ``amps`` and finish ``status`` on the measurements; ``on_outage()`` if the IOC goes.

        One attempt of :meth:`set`: it ends by finishing or failing ``status``, or
        by calling ``on_outage`` once (and then leaves ``status`` alone).
        """
        tolerance = float(self.current_tolerance.get())
        lock = threading.Lock()
        # Monitor values with their IOC timestamps as the monitor thread delivered them (a
        # signal's value and timestamp read from another thread may be from two updates).
        # since: the timestamp of the readback showing the value; measurements count from it.
        readback_before = _snapshot(self.current)
        state = {
            "written": False, "since": None, "counted": None, "delivering": 0, "tripped": 0,
            "measured": _snapshot(self.measured_current),
            "trip": _snapshot(self.compliance_tripped), "over": False,
        }

        def shows_target(value) -> bool:
            return value is not None and abs(float(value) - amps) <= 1e-9 * max(abs(amps), 1.0)

        def evaluate():
            with lock:
                since = state["since"]
                measured_at, measured = state["measured"]
                if (status.done or state["over"] or not state["written"] or since is None
                        or measured_at is None or measured_at < since):
                    return
                trip_at, tripped = state["trip"]
                tripped = bool(tripped)
                tripped_fresh = trip_at is not None and trip_at >= since
                delivering = not tripped and abs(float(measured) - amps) <= tolerance
                if measured_at == state["counted"] and not (tripped and tripped_fresh):
                    return
                state["counted"] = measured_at
                state["tripped"] = state["tripped"] + 1 if tripped and tripped_fresh else 0
                state["delivering"] = state["delivering"] + 1 if delivering else 0
                decided = None
                if state["tripped"] >= self.settled_readings:
                    decided = ComplianceError(
                        f"{self.name}: in compliance at {self.voltage_limit.get():g} V: "
                        f"{float(measured):.6g} A measured of {amps:g} A set")
                elif state["delivering"] >= self.settled_readings:
                    decided = True
            if decided is True:
                complete(status)
            elif decided is not None:
                complete(status, decided)

        def readback_changed(value=None, timestamp=None, **kwargs):
            with lock:
                if state["since"] is None and shows_target(value):
                    state["since"] = timestamp
            evaluate()

        def measurement_changed(value=None, timestamp=None, **kwargs):
            with lock:
                state["measured"] = (timestamp, value)
            evaluate()

        def trip_changed(value=None, timestamp=None, obj=None, **kwargs):
            with lock:
                state["trip"] = (timestamp, bool(obj.get()))
            evaluate()

        def written_done(written):
            with lock:
                if state["over"]:
                    return
            if not written.success:
                complete(status, written.exception())
                return
            with lock:
                state["written"] = True
                if state["since"] is None and shows_target(readback_before[1]):
                    # The readback showed the value before the put, and the IOC did not
                    # post it again: measurements since it count.
                    state["since"] = readback_before[0]
            evaluate()

        def outage():
            # A RunEngine aborts the run on any failed status issued before a suspension,
            # and its rewind may wait on this status again: the move is redone instead.
            with lock:
                if status.done or state["over"]:
                    return
                state["over"] = True
            clean_up(status)
            on_outage()

        def connection_changed(*args, connected=True, **kwargs):
            if not connected:
                outage()

        def time_out():
            if status.done:
                return
            if not self.measured_current.connected:
                outage()
                return
            put_text = ("" if state["since"] is not None
                        else "; the put was not completed with the readback showing it")
            complete(status, TimeoutError(
                f"{self.name}: no measured current within {tolerance:g} A of {amps:g} A "
                f"{self.fresh_reading_timeout:g} s after the put (measured "
                f"{_last_reading(self.measured_current)}, setpoint reads "
                f"{_last_reading(self.current)}{put_text})"))

        timer = threading.Timer(self.fresh_reading_timeout, time_out)
        timer.daemon = True
        subscriptions = []

        def clean_up(finished):
            timer.cancel()
            for signal, subscription in list(subscriptions):
                signal.unsubscribe(subscription)
            subscriptions.clear()

        subscriptions.append((self.measured_current, self.measured_current.subscribe(
            connection_changed, event_type=self.measured_current.SUB_META, run=False)))
        for signal, callback in ((self.current, readback_changed),
                                 (self.measured_current, measurement_changed),
                                 (self.compliance_tripped, trip_changed)):
            subscriptions.append((signal, signal.subscribe(callback, run=False)))
        status.add_callback(clean_up)
        if not self.measured_current.connected:
            outage()
            return
        try:
            written = self.current.set(amps)
        except Exception as err:
            if not self.measured_current.connected:
                outage()
                return
            complete(status, err)
            raise
        written.add_callback(written_done)
        timer.start()

    def stop(self, *, success: bool = False) -> None:
        """Nothing moves: the source keeps its present current."""
