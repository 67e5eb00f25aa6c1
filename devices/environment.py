"""What is mounted in the cryostat, and the simulator's own diagnostics."""

from __future__ import annotations

import threading
import time

from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus, EpicsSignal

from tcstation.devices.clock import ClockedDevice
from tcstation.devices.signals import EpicsFlag, EpicsMeasurement, EpicsSetting
from tcstation.devices.waiting import complete
from tcstation.instruments.environment import EXPOSURE_RANGE_MINUTES, FIELD_RANGE_OE
from tcstation.instruments.simulation import OFF_ON


class SampleEnvironment(ClockedDevice, Device):
    """The sample, the insert and the contacts; room-temperature exposure; warm time.

    ``sample``, ``insert`` and ``contacts`` take the IOC's enum strings. Writing
    ``sample`` mounts a fresh sample, and ``max_safe_temperature`` follows it.

    Parameters
    ----------
    prefix : str
        PV prefix, e.g. ``"TCS:ENV:"``.
    name : str
        Device name.
    """

    warm_time = Cpt(EpicsMeasurement, "WarmTime_RBV", units="s", kind="hinted",
                    doc="Time the sample has spent above 77 K")
    exposing = Cpt(EpicsFlag, "Exposing_RBV", kind="normal",
                   doc="A room-temperature exposure is under way")
    exposure_remaining = Cpt(EpicsMeasurement, "ExposeRemaining_RBV", units="min",
                             kind="normal", doc="Time left of the exposure")
    field_dc = Cpt(EpicsSetting, "FieldDC", allowed=FIELD_RANGE_OE, units="Oe", kind="normal",
                   doc="Applied dc field")

    sample = Cpt(EpicsSetting, "Sample", string=True, kind="config",
                 doc="Mounted sample; writing mounts a fresh one")
    insert = Cpt(EpicsSetting, "Insert", string=True, kind="config", doc="Measurement insert")
    contacts = Cpt(EpicsSetting, "Contacts", string=True, kind="config",
                   doc="Four-probe contacts: metal core or oxidised surface")
    exposure_minutes = Cpt(EpicsSetting, "ExposeMinutes", allowed=EXPOSURE_RANGE_MINUTES,
                           units="min", kind="config", doc="Duration of the next exposure")
    max_safe_temperature = Cpt(EpicsMeasurement, "MaxSafeTemp_RBV", units="K", kind="config",
                               doc="Highest temperature the mounted sample tolerates; the station "
                               "copies it into the cryostat's sample_temperature_limit")
    coil_constant = Cpt(EpicsMeasurement, "CoilConst_RBV", units="Oe/V", kind="config",
                        doc="Susceptometer drive: Hac amplitude per V rms of sine out")
    excitation_gain = Cpt(EpicsMeasurement, "ExciteGain_RBV", units="A/V", kind="config",
                          doc="Transport excitation: A rms per V rms of sine out")
    load_resistance = Cpt(EpicsMeasurement, "LoadRes_RBV", units="ohm", kind="config",
                          doc="Leads and contacts seen by the dc source")
    expose_action = Cpt(EpicsSignal, "Expose", kind="omitted", string=True,
                        doc="Put 'Expose' to start an exposure")

    exposure_margin = 120.0
    """Physical seconds allowed beyond the exposure's own duration before it fails."""
    stall_timeout = 60.0
    """Wall seconds the clock may stand still during an exposure (its IOC gone) before it fails."""

    def expose(self, minutes: float) -> DeviceStatus:
        """Take the sample to room temperature for ``minutes``; finish when it is back.

        Parameters
        ----------
        minutes : float
            Duration, 0 to 600 min (physical).

        Returns
        -------
        DeviceStatus
            Finishes when the environment reports the exposure over.
        """
        status = DeviceStatus(self, call_stop_on_failure=False)
        started = threading.Event()

        def watch(value=None, **kwargs):
            if value:
                started.set()
            elif started.is_set():
                complete(status)

        allowed = minutes * 60.0 + self.exposure_margin
        physical_deadline = self.clock.now() + allowed

        def time_out():
            # On the physical clock, not the wall: a simulator that falls behind its
            # speed-up on a busy machine still gets the exposure's physical time.
            last_time, last_advance = self.clock.now(), time.monotonic()
            while not status.done:
                waited_from = time.monotonic()
                if self.clock.wait_until(physical_deadline, timeout=1.0):
                    complete(status, TimeoutError(
                        f"{self.name}: the {minutes:g} min exposure did not end within "
                        f"{allowed:g} s"))
                    return
                now = self.clock.now()
                if now > last_time:
                    last_time, last_advance = now, time.monotonic()
                elif time.monotonic() - last_advance > self.stall_timeout:
                    complete(status, TimeoutError(
                        f"{self.name}: the clock stood still at {now:g} s for "
                        f"{self.stall_timeout:g} wall s during the {minutes:g} min exposure "
                        "(is the IOC gone?)"))
                    return
                if time.monotonic() - waited_from < 0.5:
                    time.sleep(0.5)

        self.exposure_minutes.set(minutes).wait(10.0)
        subscription = self.exposing.subscribe(watch, run=False)
        deadline_watch = threading.Thread(target=time_out, daemon=True,
                                          name=f"{self.name}-exposure-deadline")

        def clean_up(finished):
            self.exposing.unsubscribe(subscription)

        status.add_callback(clean_up)
        deadline_watch.start()
        self.expose_action.put("Expose")
        self.clock.run_fast_while(lambda: not status.done)
        return status


class SimulationDiagnostics(Device):
    """Simulation only: the simulator's clock, noise switch and true state.

    A real station serves none of these PVs; tests compare measurements against
    this truth.

    Parameters
    ----------
    prefix : str
        PV prefix, e.g. ``"TCS:SIM:"``.
    name : str
        Device name.
    """

    simulated_time = Cpt(EpicsMeasurement, "Time_RBV", units="s", kind="normal")
    sample_temperature = Cpt(EpicsMeasurement, "SampleTemp_RBV", units="K", kind="hinted",
                             doc="True sample temperature")
    superconducting_fraction = Cpt(EpicsMeasurement, "ScFraction_RBV", units="dimensionless",
                                   kind="normal")
    degradation = Cpt(EpicsMeasurement, "Degradation_RBV", units="dimensionless",
                      kind="normal", doc="Degradation state theta")
    chi_real = Cpt(EpicsMeasurement, "Chi1_RBV", units="dimensionless", kind="normal",
                   doc="Noise-free 4 pi chi'")
    chi_imag = Cpt(EpicsMeasurement, "Chi2_RBV", units="dimensionless", kind="normal",
                   doc="Noise-free 4 pi chi''")
    dynamic_resistance = Cpt(EpicsMeasurement, "Dudi_RBV", units="ohm", kind="normal",
                             doc="Noise-free dU/dI")
    tc_chi = Cpt(EpicsMeasurement, "TcChi_RBV", units="K", kind="normal",
                 doc="True chi' onset at the present drive and field")
    tc_dudi = Cpt(EpicsMeasurement, "TcDudi_RBV", units="K", kind="normal",
                  doc="True dU/dI onset at the present bias")
    wake_at = Cpt(EpicsSignal, "WakeAt", kind="omitted",
                  doc="Simulated time a client waits for: the simulator runs to it at once")
    speedup = Cpt(EpicsMeasurement, "Speedup_RBV", kind="config",
                  doc="Simulated seconds per wall second")
    tick = Cpt(EpicsMeasurement, "Tick_RBV", units="s", kind="config",
               doc="Wall seconds between simulation steps")
    noise = Cpt(EpicsSetting, "Noise", string=True, choices=OFF_ON, kind="config",
                doc="Simulated noise and drift")
