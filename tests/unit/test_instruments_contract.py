"""The instruments contract: a leaf package of plain data, each signal declared once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tcstation import instruments
from tcstation.instruments import environment, lakeshore336, simulation, sourcemeter, sr830
from tcstation.instruments.signal import ENUM, SETTING, Signal, by_suffix

CONTRACTS = (lakeshore336, sr830, sourcemeter, environment, simulation)
PACKAGE = Path(instruments.__file__).parent


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_the_package_imports_only_itself_and_the_standard_library(path):
    """A leaf: relative imports of its own modules, so it does not depend on where it is
    installed, and the two standard-library modules it needs."""
    allowed = {"__future__", "dataclasses"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                own_modules = {module.stem for module in PACKAGE.glob("*.py")}
                assert node.module in own_modules, f"{path.name} imports .{node.module}"
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda module: module.__name__)
def test_every_pv_is_declared_once(contract):
    table = by_suffix(contract.SIGNALS)
    served = [pv for signal in contract.SIGNALS for pv in signal.pv_suffixes()]
    assert len(served) == len(set(served))
    assert set(table) <= set(served)


def test_the_lakeshore_serves_two_loops_and_four_inputs():
    suffixes = {pv for signal in lakeshore336.SIGNALS for pv in signal.pv_suffixes()}
    for pv in ("OUT2:SP", "OUT2:SP_RBV", "HTR2", "HTR2:Range_RBV", "P2_RBV", "I2", "D2",
               "RampR2_RBV", "OnRamp2", "IN3", "IN4:Units_RBV", "IN4:Name_RBV", "IN3:Kelvin"):
        assert pv in suffixes
    setpoint = by_suffix(lakeshore336.SIGNALS)["OUT1:SP"]
    assert (setpoint.command, setpoint.query) == ("SETP 1,<K>", "SETP? 1")
    assert by_suffix(lakeshore336.SIGNALS)["IN3:Kelvin"].query == "KRDG? C"


def test_a_signal_refuses_what_epics_cannot_serve():
    with pytest.raises(ValueError, match="longer than 40"):
        Signal("X", SETTING, "float", "x" * 41)
    with pytest.raises(ValueError, match="only an enum"):
        Signal("X", SETTING, ENUM, "no choices")
    with pytest.raises(ValueError, match="low < high"):
        Signal("X", SETTING, "float", "empty range", limits=(1.0, 1.0))


def test_the_sample_model_knows_the_environments_kinds():
    from tcstation.ioc_sim import sample

    assert sample.SAMPLE_KINDS == environment.SAMPLE_KINDS
    assert sample.CONTACT_KINDS == environment.CONTACT_KINDS
