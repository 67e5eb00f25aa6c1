"""Pure logic of the devices: holds, fresh updates, autorange, calibration, dU/dI."""

from __future__ import annotations

import cmath
import math
import threading
import time

import pytest
from ophyd import Signal

from tcstation.devices import sr830_tables
from tcstation.devices.lockin import AutorangeError, next_sensitivity_index
from tcstation.devices.susceptometer import calibration_from_reading, susceptibility_from_reading
from tcstation.devices.transport import dynamic_resistance
from tcstation.devices.waiting import FreshUpdates, ToleranceHold


def test_hold_completes_only_after_the_hold_time_inside_the_tolerance():
    hold = ToleranceHold(target=20.0, tolerance=0.1, hold=30.0)
    assert not hold.update(19.5, now=0.0)
    assert not hold.update(19.95, now=10.0)  # enters: the hold starts here
    assert not hold.update(20.08, now=39.9)
    assert hold.update(19.92, now=40.0)


def test_hold_restarts_when_the_reading_leaves_the_tolerance():
    hold = ToleranceHold(target=20.0, tolerance=0.1, hold=30.0)
    assert not hold.update(20.0, now=0.0)
    assert not hold.update(20.2, now=20.0)
    assert not hold.update(20.0, now=25.0)
    assert not hold.update(20.0, now=50.0)
    assert hold.update(20.0, now=55.0)


@pytest.mark.parametrize("reading", [math.nan, None, math.inf])
def test_hold_treats_a_missing_reading_as_outside(reading):
    hold = ToleranceHold(target=20.0, tolerance=0.1, hold=0.0)
    assert not hold.update(reading, now=0.0)
    assert hold.update(20.0, now=1.0)


def test_hold_of_zero_completes_on_the_first_reading_inside():
    assert ToleranceHold(target=4.2, tolerance=0.1, hold=0.0).update(4.25, now=0.0)


def test_fresh_updates_wait_for_every_signal_after_the_moment():
    first, second = Signal(name="first", value=0.0), Signal(name="second", value=0.0)
    updates = FreshUpdates([first, second])
    since = time.monotonic()
    assert updates.stale(since) == ["first", "second"]
    first.put(1.0)
    assert updates.stale(since) == ["second"]
    publisher = threading.Timer(0.05, second.put, args=(2.0,))
    publisher.start()
    updates.wait_after(since, timeout=5.0)
    assert updates.stale(since) == []


def test_fresh_updates_time_out_naming_the_stale_signals():
    first, second = Signal(name="lockin_x", value=0.0), Signal(name="lockin_y", value=0.0)
    updates = FreshUpdates([first, second])
    since = time.monotonic()
    first.put(1.0)
    with pytest.raises(TimeoutError, match="lockin_y") as raised:
        updates.wait_after(since, timeout=0.05)
    assert "lockin_x" not in str(raised.value)


def test_autorange_keeps_a_signal_that_sits_in_range():
    assert next_sensitivity_index(17, 0.5e-3, overloaded=False) is None  # 1 mV, half scale


def test_autorange_steps_a_decade_on_overload():
    assert next_sensitivity_index(10, 10e-6, overloaded=True) == 13


def test_autorange_aims_a_large_signal_below_full_scale():
    # 0.95 mV on 1 mV: above 0.9 of full scale; 2 mV holds it at 0.475 <= 0.7
    assert next_sensitivity_index(17, 0.95e-3, overloaded=False) == 18


def test_autorange_moves_a_small_signal_to_a_more_sensitive_scale():
    # 5 uV on 1 V full scale: the most sensitive scale holding it at <= 0.7 is 10 uV
    assert next_sensitivity_index(26, 5e-6, overloaded=False) == 11


def test_autorange_stays_on_the_most_sensitive_scale():
    assert next_sensitivity_index(0, 1e-12, overloaded=False) is None


def test_autorange_fails_when_the_largest_scale_overloads():
    with pytest.raises(AutorangeError, match="1 V"):
        next_sensitivity_index(26, 1.0, overloaded=True)


@pytest.mark.parametrize("magnitude", [3e-9, 7.7e-8, 4.2e-6, 0.3e-3, 2.9e-3, 0.45, 0.85])
@pytest.mark.parametrize("start", [0, 9, 17, 26])
def test_autorange_converges_within_a_few_steps(magnitude, start):
    index = start
    for _ in range(12):
        full_scale = sr830_tables.SENSITIVITIES[index]
        overloaded = magnitude > full_scale
        step = next_sensitivity_index(index, min(magnitude, full_scale), overloaded)
        if step is None:
            break
        index = step
    else:
        pytest.fail(f"no convergence from index {start} for {magnitude} V")
    full_scale = sr830_tables.SENSITIVITIES[index]
    assert magnitude <= 0.9 * full_scale
    assert magnitude >= 0.2 * full_scale or index == 0


def pickup_reading(chi: complex, scale: float, phase_deg: float, lockin_phase_deg: float):
    """What an SR830 reads from a pickup (scale, phase) at reference phase PHAS."""
    volts = scale * cmath.exp(1j * math.radians(phase_deg)) * chi
    reading = volts * cmath.exp(-1j * math.radians(lockin_phase_deg))
    return reading.real, reading.imag


def test_calibration_on_a_perfect_diamagnet_recovers_scale_and_phase():
    x, y = pickup_reading(-1.0, scale=0.3e-3, phase_deg=-8.0, lockin_phase_deg=12.0)
    scale, phase = calibration_from_reading(x, y, reference_phase_deg=12.0)
    assert scale == pytest.approx(0.3e-3)
    assert phase == pytest.approx(-8.0)


def test_calibration_reads_the_reference_back_as_minus_one():
    x, y = pickup_reading(-1.0, scale=0.27e-3, phase_deg=-8.0, lockin_phase_deg=0.0)
    scale, phase = calibration_from_reading(x, y, 0.0)
    chi = susceptibility_from_reading(x, y, 0.0, scale=scale, phase_deg=phase, frequency=1550.0,
                                      amplitude=1.0, calibration_frequency=1550.0,
                                      calibration_amplitude=1.0)
    assert chi.real == pytest.approx(-1.0)
    assert chi.imag == pytest.approx(0.0, abs=1e-12)


def test_calibration_carries_to_other_frequency_amplitude_and_phase():
    calibration = calibration_from_reading(*pickup_reading(-1.0, 0.3e-3, -8.0, 0.0), 0.0)
    chi = complex(-0.62, 0.11)
    # The pickup's voltage scales with frequency x drive: at 775 Hz and 0.5 V it is 4x smaller.
    x, y = pickup_reading(chi, scale=0.3e-3 / 4, phase_deg=-8.0, lockin_phase_deg=40.0)
    measured = susceptibility_from_reading(
        x, y, 40.0, scale=calibration[0], phase_deg=calibration[1], frequency=775.0,
        amplitude=0.5, calibration_frequency=1550.0, calibration_amplitude=1.0)
    assert measured.real == pytest.approx(chi.real)
    assert measured.imag == pytest.approx(chi.imag)


def test_calibration_matches_the_simulated_pickup():
    from tcstation.ioc_sim.simulation import PICKUP_PHASE_DEG, PICKUP_VOLTS_PER_HZ_OE

    volts_per_unit = PICKUP_VOLTS_PER_HZ_OE * 1550.0 * 0.2
    x, y = pickup_reading(-1.0, volts_per_unit, PICKUP_PHASE_DEG, 0.0)
    scale, phase = calibration_from_reading(x, y, 0.0)
    assert scale == pytest.approx(0.3e-3)
    assert phase == pytest.approx(PICKUP_PHASE_DEG)


def test_calibration_refuses_a_zero_reading_or_reference():
    with pytest.raises(ValueError, match="zero reading"):
        calibration_from_reading(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="must not be 0"):
        calibration_from_reading(1e-4, 0.0, 0.0, reference_chi=0)


def test_dynamic_resistance_from_the_in_phase_output():
    gain, sine_amplitude = 0.01, 1.697  # A/V and V rms: Iac = 24 mA amplitude
    current_rms = gain * sine_amplitude
    x_rms = 5.0e-3 * current_rms
    assert dynamic_resistance(x_rms, sine_amplitude, gain) == pytest.approx(5.0e-3)
    amplitude = math.sqrt(2) * current_rms
    assert dynamic_resistance(x_rms, sine_amplitude, gain) == pytest.approx(
        math.sqrt(2) * x_rms / amplitude)
    assert amplitude == pytest.approx(0.024, rel=1e-3)


@pytest.mark.parametrize("gain", [0.0, math.nan])
def test_dynamic_resistance_is_nan_without_a_known_excitation(gain):
    assert math.isnan(dynamic_resistance(1e-6, 1.0, gain))
