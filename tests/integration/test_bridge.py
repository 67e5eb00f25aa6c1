"""The bridge end to end: emulators and the bridge IOC as subprocesses, real TCP between
them (PyVISA, pyvisa-py), real Channel Access to the test.

The LakeShore 336 is bridged: its readings follow the model, a setpoint put reaches the
emulated controller and reads back, and an emulator killed mid-run puts the PVs in
COMM / INVALID alarm until it is back, when the bridge reconnects by itself.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from caproto import AlarmSeverity, AlarmStatus, CaprotoError
from caproto.sync.client import write

from tcstation.ioc_process import free_port
from tests.integration.bridge_processes import (
    START_TIMEOUT,
    WAIT,
    BridgeProcess,
    reading,
    value,
)
from tests.integration.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bridge(emulators, tmp_path_factory):
    """The bridge IOC serving the emulated LakeShore; yields the instrument's PV prefix."""
    process = BridgeProcess(tmp_path_factory.mktemp("bridge"), (
        '[instruments.cryostat]\nkind = "lakeshore336"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["lakeshore336"]}::SOCKET"\n'
        'timeout = 2.0\npoll_period = 0.25\nreconnect_period = 0.5\n'))
    try:
        yield process.start("TC:Connected_RBV").prefix + "TC:"
    finally:
        process.stop()


def test_probe_names_the_emulated_instruments(emulators, tmp_path):
    config = tmp_path / "probe.toml"
    config.write_text(
        '[instruments.cryostat]\nkind = "lakeshore336"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["lakeshore336"]}::SOCKET"\n'
        '[instruments.bias_source]\nkind = "sourcemeter"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["sourcemeter"]}::SOCKET"\n'
        '[instruments.susceptometer]\nkind = "sr830"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["lockin1"]}::SOCKET"\n'
        '[instruments.nothing]\nkind = "sr830"\n'
        f'resource = "TCPIP0::127.0.0.1::{free_port()}::SOCKET"\ntimeout = 1.0\n')
    result = subprocess.run([sys.executable, "-m", "tcstation.bridge", str(config), "--probe"],
                            capture_output=True, text=True, timeout=60)
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "answers: LSCI,MODEL336" in lines["cryostat"], result.stdout
    assert "answers: KEITHLEY INSTRUMENTS INC.,MODEL 2400" in lines["bias_source"]
    assert "answers: Stanford_Research_Systems,SR830" in lines["susceptometer"]
    assert "does not answer" in lines["nothing"]
    assert result.returncode == 1


def test_serves_the_controller_identity(bridge):
    assert value(f"{bridge}IDN_RBV").startswith(b"LSCI,MODEL336")
    assert value(f"{bridge}IN2:Name_RBV") == b"Sample"


def test_setpoint_reaches_the_controller_and_inputs_follow_the_model(bridge, emulators):
    write(f"{bridge}OUT1:SP", 15.0, notify=True, timeout=10.0, repeater=False)
    assert value(f"{bridge}OUT1:SP_RBV") == pytest.approx(15.0)
    assert float(emulators.ask("SETP? 1")) == pytest.approx(15.0)
    write(f"{bridge}HTR1:Range", "High", notify=True, timeout=10.0, repeater=False)
    assert emulators.ask("RANGE? 1") == "3"
    # the stage (input A) and then the sample (B, lagging it) reach the setpoint
    for pv in ("IN1", "IN2"):
        wait_for(lambda pv=pv: (value(f"{bridge}{pv}") or 0) > 14.8, WAIT,
                 f"{bridge}{pv} to reach 15 K", poll=0.2)
    # what the bridge serves is what the emulated controller reads now (settled: within
    # the sensor noise and the drift between the poll and this query)
    for pv, letter in (("IN1", "A"), ("IN2", "B")):
        served = value(f"{bridge}{pv}")
        assert served == pytest.approx(float(emulators.ask(f"KRDG? {letter}")), abs=0.1)
    assert value(f"{bridge}IN1:Kelvin") == pytest.approx(value(f"{bridge}IN1"), abs=0.1)
    assert value(f"{bridge}HTR1") > 0.0


def test_a_refused_put_changes_nothing(bridge, emulators):
    before = emulators.ask("SETP? 1")
    with pytest.raises(CaprotoError):
        write(f"{bridge}OUT1:SP", 1000.0, notify=True, timeout=10.0, repeater=False)
    assert emulators.ask("SETP? 1") == before


def test_a_lost_controller_alarms_and_the_bridge_reconnects(bridge, emulators):
    wait_for(lambda: (reading(f"{bridge}IN1") or (0, -1))[1] == AlarmStatus.NO_ALARM, WAIT,
             f"{bridge}IN1 without alarm before the outage", poll=0.2)
    emulators.kill()
    for pv in ("IN1", "IN2", "OUT1:SP_RBV", "HTR1"):
        wait_for(lambda pv=pv: (reading(f"{bridge}{pv}") or (0, 0, 0))[1:3] == (
            AlarmStatus.COMM, AlarmSeverity.INVALID_ALARM), WAIT,
            f"{bridge}{pv} in COMM / INVALID alarm with the controller gone", poll=0.2)
    assert value(f"{bridge}Connected_RBV") == 0
    stale = reading(f"{bridge}IN1")
    with pytest.raises(CaprotoError):  # a put while the controller is gone fails
        write(f"{bridge}OUT1:SP", 6.0, notify=True, timeout=10.0, repeater=False)
    emulators.start()  # a fresh controller: the stage back at 4.2 K
    wait_for(lambda: value(f"{bridge}Connected_RBV") == 1, START_TIMEOUT,
             "the bridge to reconnect", poll=0.2)
    fresh = wait_for(lambda: (lambda got: got if got and got[1] == AlarmStatus.NO_ALARM
                              and got[3] > stale[3] else None)(reading(f"{bridge}IN1")),
                     WAIT, f"{bridge}IN1 fresh and without alarm", poll=0.2)
    assert fresh[0] == pytest.approx(4.2, abs=0.2)
    assert value(f"{bridge}OUT1:SP_RBV") == pytest.approx(4.2)
    write(f"{bridge}OUT1:SP", 6.0, notify=True, timeout=10.0, repeater=False)
    assert float(emulators.ask("SETP? 1")) == pytest.approx(6.0)
