"""The bridged SourceMeter end to end: a bias put reaches the emulated Keithley 2400 and
its measurement comes back over Channel Access; stopping the bridge ramps the source to
0 A and switches it off; a source that stops answering and comes back is ramped to 0 A
and switched off before the bridge serves it again."""

from __future__ import annotations

import os
import signal

import pytest
from caproto.sync.client import write

from tests.integration.bridge_processes import (
    START_TIMEOUT,
    WAIT,
    BridgeProcess,
    value,
)
from tests.integration.polling import wait_for

pytestmark = pytest.mark.integration


def source_config(emulators) -> str:
    return ('[instruments.bias_source]\nkind = "sourcemeter"\n'
            f'resource = "TCPIP0::127.0.0.1::{emulators.ports["sourcemeter"]}::SOCKET"\n'
            'timeout = 2.0\npoll_period = 0.2\nreconnect_period = 0.5\nramp_rate = 0.5\n')


def ask(emulators, text: str) -> str:
    return emulators.ask(text, "sourcemeter")


def switch_on(pvs: str, amps: float) -> None:
    write(f"{pvs}VoltLimit", 2.0, notify=True, timeout=10.0, repeater=False)
    write(f"{pvs}Curr", amps, notify=True, timeout=10.0, repeater=False)
    write(f"{pvs}Output", "On", notify=True, timeout=10.0, repeater=False)


def test_bias_reaches_the_source_and_stopping_the_bridge_makes_it_safe(emulators,
                                                                       tmp_path):
    bridge = BridgeProcess(tmp_path, source_config(emulators)).start("SRC:Connected_RBV")
    pvs = f"{bridge.prefix}SRC:"
    try:
        assert value(f"{pvs}IDN_RBV").startswith(b"KEITHLEY")
        switch_on(pvs, 0.2)
        assert ask(emulators, ":OUTP?;:SOUR:CURR?") == "1;+2.000000E-01"
        assert value(f"{pvs}Output_RBV") == 1
        # the measurement: 0.2 A through the 1.5 ohm load
        wait_for(lambda: abs((value(f"{pvs}VoltMeas") or 0) - 0.3) < 1e-3, WAIT,
                 f"{pvs}VoltMeas to read 0.3 V", poll=0.1)
        assert value(f"{pvs}CurrMeas") == pytest.approx(0.2)
        assert value(f"{pvs}Tripped") == 0
    finally:
        bridge.stop()
    assert ask(emulators, ":OUTP?;:SOUR:CURR?") == "0;+0.000000E+00"


def test_a_source_found_again_is_made_safe_first(emulators, tmp_path):
    bridge = BridgeProcess(tmp_path, source_config(emulators)).start("SRC:Connected_RBV")
    pvs = f"{bridge.prefix}SRC:"
    try:
        switch_on(pvs, 0.1)
        assert ask(emulators, ":OUTP?") == "1"
        # the source stops answering (the emulator frozen: its state, 0.1 A on, is kept)
        os.kill(emulators.process.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: value(f"{pvs}Connected_RBV") == 0, WAIT,
                     "the bridge to see the source gone", poll=0.2)
        finally:
            os.kill(emulators.process.pid, signal.SIGCONT)
        wait_for(lambda: value(f"{pvs}Connected_RBV") == 1, START_TIMEOUT,
                 "the bridge to reconnect", poll=0.2)
        assert ask(emulators, ":OUTP?;:SOUR:CURR?") == "0;+0.000000E+00"
        assert value(f"{pvs}Output_RBV") == 0
        assert value(f"{pvs}Curr_RBV") == 0.0
    finally:
        bridge.stop()
