"""A bridged SR830 end to end: settings reach the emulated lock-in and read back with
their table values, the outputs follow the model, an overload shows in OVLD, a refused
setting fails its put."""

from __future__ import annotations

import pytest
from caproto import CaprotoError
from caproto.sync.client import write

from tests.integration.bridge_processes import WAIT, BridgeProcess, value
from tests.integration.polling import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lockin(emulators, tmp_path_factory):
    """The bridge serving the susceptometer's emulated SR830; yields its PV prefix."""
    process = BridgeProcess(tmp_path_factory.mktemp("bridge"), (
        '[instruments.susceptometer]\nkind = "sr830"\nprefix = "LIA1:"\n'
        f'resource = "TCPIP0::127.0.0.1::{emulators.ports["lockin1"]}::SOCKET"\n'
        'timeout = 2.0\npoll_period = 0.2\n'))
    try:
        yield process.start("LIA1:Connected_RBV").prefix + "LIA1:"
    finally:
        process.stop()


def ask(emulators, text: str) -> str:
    return emulators.ask(text, "lockin1")


def put(name: str, data) -> None:
    write(name, data, notify=True, timeout=10.0, repeater=False)


def test_settings_reach_the_lockin_and_read_back(lockin, emulators):
    assert value(f"{lockin}IDN_RBV").startswith(b"Stanford_Research_Systems,SR830")
    put(f"{lockin}OFLT", 10)
    assert ask(emulators, "OFLT?") == "10"
    assert value(f"{lockin}OFLT:Value_RBV") == pytest.approx(1.0)
    put(f"{lockin}OFSL", "24 dB/oct")
    assert ask(emulators, "OFSL?") == "3"
    put(f"{lockin}PHAS", 8.0)
    assert float(ask(emulators, "PHAS?")) == pytest.approx(8.0)
    assert value(f"{lockin}PHAS_RBV") == pytest.approx(8.0)
    put(f"{lockin}SENS", 16)
    assert value(f"{lockin}SENS:Value_RBV") == pytest.approx(500e-6)


def test_outputs_follow_the_model(lockin, emulators):
    # at 4.2 K the Mg/MgO sample screens fully: about 0.27 mV at 1550 Hz and 0.2 Oe
    served = wait_for(lambda: (lambda r: r if r and r > 1e-4 else None)(value(f"{lockin}R")),
                      WAIT, f"{lockin}R to show the pickup signal", poll=0.2)
    assert served == pytest.approx(float(ask(emulators, "OUTP? 3")), rel=0.1)
    x, y = value(f"{lockin}X"), value(f"{lockin}Y")
    assert value(f"{lockin}R") == pytest.approx((x**2 + y**2) ** 0.5, rel=0.1)


def test_an_overload_shows_and_a_refused_setting_fails(lockin, emulators):
    put(f"{lockin}SENS", 0)  # 2 nV full scale: the pickup overloads it
    wait_for(lambda: value(f"{lockin}OVLD") == 1, WAIT, f"{lockin}OVLD = Yes", poll=0.2)
    put(f"{lockin}SENS", 17)
    wait_for(lambda: value(f"{lockin}OVLD") == 0, WAIT, f"{lockin}OVLD = No", poll=0.2)
    put(f"{lockin}FREQ", 20000.0)
    with pytest.raises(CaprotoError):  # 20 kHz at harmonic 6 exceeds 102 kHz: ignored
        put(f"{lockin}HARM", 6)
    assert ask(emulators, "HARM?") == "1"
    assert value(f"{lockin}HARM_RBV") == 1
    put(f"{lockin}FREQ", 1550.0)
