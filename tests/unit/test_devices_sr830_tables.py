"""The devices' SR830 tables: the contract's, with the settling of the output filter."""

from __future__ import annotations

import pytest

from tcstation.devices import sr830_tables
from tcstation.instruments import sr830
from tcstation.ioc_sim.physics import lockin_settle_time


@pytest.mark.parametrize("slope_index", range(4))
@pytest.mark.parametrize("time_constant_index", range(20))
def test_settle_time_agrees_with_the_physics_note(time_constant_index, slope_index):
    expected = lockin_settle_time(sr830.TIME_CONSTANTS[time_constant_index],
                                  sr830.SLOPES_DB[slope_index])
    assert sr830_tables.settle_time(time_constant_index, slope_index) == pytest.approx(expected)


def test_settle_time_multipliers():
    assert sr830_tables.settle_time(9, 0) == pytest.approx(5 * 0.3)
    assert sr830_tables.settle_time(9, 1) == pytest.approx(7 * 0.3)
    assert sr830_tables.settle_time(10, 2) == pytest.approx(9 * 1.0)
    assert sr830_tables.settle_time(11, 3) == pytest.approx(10 * 3.0)


@pytest.mark.parametrize("arguments", [(20, 1), (-1, 1), (9, 4), (9.5, 1)])
def test_settle_time_refuses_indices_outside_the_tables(arguments):
    with pytest.raises(ValueError, match="index"):
        sr830_tables.settle_time(*arguments)


def test_sensitivity_index_for_a_magnitude():
    assert sr830_tables.sensitivity_index_for(0.0, 0.7) == 0
    assert sr830_tables.sensitivity_index_for(0.8e-3, 0.7) == 18  # 2 mV
    assert sr830_tables.sensitivity_index_for(0.7e-3, 0.7) == 17  # exactly 0.7 of 1 mV
    assert sr830_tables.sensitivity_index_for(5.0, 0.7) == 26
    with pytest.raises(ValueError, match="headroom"):
        sr830_tables.sensitivity_index_for(1e-3, 0.0)


def test_sensitivity_text():
    assert sr830_tables.format_sensitivity(0) == "2 nV"
    assert sr830_tables.format_sensitivity(16) == "500 uV"
    assert sr830_tables.format_sensitivity(26) == "1 V"
    assert sr830.format_time_constant(sr830.TIME_CONSTANTS[9]) == "300 ms"
