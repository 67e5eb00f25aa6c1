"""The emulators over real loopback TCP: terminators, chained queries, each instrument's
error behaviour, readings from the shared simulation."""

from __future__ import annotations

import asyncio

import pytest

from tcstation.emulators.base import Clock
from tcstation.emulators.lakeshore336 import LakeShore336Emulator
from tcstation.emulators.sourcemeter import SourceMeterEmulator
from tcstation.emulators.sr830 import SR830Emulator
from tcstation.ioc_sim.simulation import StationSimulation
from tcstation.protocol import lakeshore336 as ls
from tcstation.protocol import sourcemeter as sm
from tcstation.protocol import sr830 as lia

REPLY_TIMEOUT = 10.0  # s: generous, the machine may be busy


class Line:
    """A client's TCP connection to one emulator."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def send(self, text: str, terminator: str = "\n") -> None:
        self.writer.write((text + terminator).encode())
        await self.writer.drain()

    async def ask(self, text: str, terminator: str = "\n") -> bytes:
        await self.send(text, terminator)
        return await asyncio.wait_for(self.reader.readuntil(b"\n"), REPLY_TIMEOUT)


def run(scenario):
    """Run ``scenario(clock, lines)`` against the three kinds of emulator on free ports."""

    async def main():
        simulation = StationSimulation("mg_mgo", noise=False, seed=1)
        clock = Clock(simulation, speedup=1.0)
        emulators = {"ls": LakeShore336Emulator(clock),
                     "lia": SR830Emulator(clock, "susceptometer"),
                     "src": SourceMeterEmulator(clock)}
        lines = {}
        for name, emulator in emulators.items():
            port = await emulator.start("127.0.0.1", 0)
            lines[name] = Line(*await asyncio.open_connection("127.0.0.1", port))
        try:
            await scenario(clock, lines)
        finally:
            for name, line in lines.items():
                line.writer.close()
                emulators[name].server.close()

    asyncio.run(main())


def test_lakeshore_terminators_chains_and_ignored_commands():
    async def scenario(clock, lines):
        line = lines["ls"]
        reply = await line.ask("*IDN?", "\r\n")
        assert reply.endswith(b"\r\n") and ls.check_idn(reply.decode())
        reply = (await line.ask("KRDG? A;KRDG?B;SETP? 1;RAMP? 1")).decode().strip()
        kelvin_a, kelvin_b, setpoint, ramp = reply.split(";")
        assert ls.parse_reading("KRDG? A", kelvin_a) == pytest.approx(4.2, abs=0.01)
        assert ls.parse_ramp("RAMP? 1", ramp) == (False, 1.0)
        # a malformed and an out-of-range command are ignored, the rest of the line is not
        await line.send("BOGUS 1;SETP 1,1000;SETP 1,12.5;RANGE 1,9;RANGE 1,2")
        reply = (await line.ask("SETP? 1;RANGE? 1")).decode().strip()
        assert reply == "+012.5000;2"
        await line.send(ls.pid_command(1, 40, 10, 5) + ";" + ls.outmode_command(
            1, "Closed Loop", "B", True))
        reply = (await line.ask("PID? 1;OUTMODE? 1;INNAME? B")).decode().strip().split(";")
        assert ls.parse_pid("PID? 1", reply[0]) == (40.0, 10.0, 5.0)
        assert ls.parse_outmode("OUTMODE? 1", reply[1]) == ("Closed Loop", "B", True)
        assert reply[2] == "Sample"
        assert clock.simulation.cryostat.setpoint == 12.5

    run(scenario)


def test_sr830_status_bits_and_outputs():
    async def scenario(clock, lines):
        line = lines["lia"]
        assert lia.check_idn((await line.ask("*IDN?")).decode().strip())
        await line.send("OUTX 0")
        assert (await line.ask("*ESR?")).strip() == b"0"
        await line.send("FOO 1")
        assert int(await line.ask("*ESR?")) & lia.ESR_COMMAND_ERROR
        await line.send("SENS 99")
        status = int(await line.ask("*ESR?"))
        assert status & lia.ESR_EXECUTION_ERROR and not status & lia.ESR_COMMAND_ERROR
        assert (await line.ask("SENS?")).strip() == b"17"  # the refused SENS 99 is ignored
        x, y, r, theta = lia.parse_snap("SNAP? 1,2,3,4",
                                        (await line.ask("SNAP? 1,2,3,4")).decode())
        assert r == pytest.approx((x**2 + y**2) ** 0.5, rel=1e-3)
        # an overload latches in LIAS? until read, even once it is gone
        await line.send("SENS 0")
        await asyncio.sleep(0.05)
        clock.catch_up()
        await line.send("SENS 26")
        assert int(await line.ask("LIAS?")) & lia.LIAS_OUTPUT_OVERLOAD
        assert int(await line.ask("LIAS?")) == 0
        await line.send("FREQ 1000;HARM 2")
        assert (await line.ask("FREQ?;HARM?")).strip() == b"1000;2"

    run(scenario)


def test_sourcemeter_error_queue_and_read():
    async def scenario(clock, lines):
        line = lines["src"]
        assert sm.check_idn((await line.ask("*IDN?")).decode().strip())
        await line.send("*RST;" + sm.SOURCE_CURRENT + ";" + sm.ELEMENTS)
        await line.send(sm.READ)  # output off: no reply, an error queued
        assert sm.parse_error((await line.ask(sm.ERROR_QUERY)).decode()) == sm.OUTPUT_DISABLED
        await line.send(":SOUR:VOLT:BOGUS 1")
        assert sm.parse_error((await line.ask(sm.ERROR_QUERY)).decode()) == sm.UNDEFINED_HEADER
        await line.send(sm.current_command(5.0))
        assert sm.parse_error((await line.ask(sm.ERROR_QUERY)).decode()) == sm.OUT_OF_RANGE
        assert sm.parse_error((await line.ask(sm.ERROR_QUERY)).decode())[0] == 0
        await line.send(";".join([sm.voltage_limit_command(2.0), sm.current_command(0.01),
                                  sm.output_command(True)]))
        reply = (await line.ask(sm.READ)).decode()
        assert reply.endswith("\n") and not reply.endswith("\r\n")
        volts, amps = sm.parse_read(reply)
        assert amps == pytest.approx(0.01) and volts == pytest.approx(0.015)
        await line.send(sm.current_command(1.0))  # 1.5 V wanted, 2 V allowed
        assert (await line.ask(sm.TRIPPED_QUERY)).strip() == b"0"
        await line.send(sm.voltage_limit_command(0.5))
        assert (await line.ask(sm.TRIPPED_QUERY + ";" + sm.OUTPUT_QUERY)).strip() == b"1;1"

    run(scenario)


def test_lakeshore_reads_the_shared_cryostat():
    async def scenario(clock, lines):
        await lines["ls"].send("SETP 1,20;RANGE 1,3")
        clock.speedup = 600.0
        await asyncio.sleep(0.3)
        clock.catch_up()
        kelvin = ls.parse_reading("KRDG? B", (await lines["ls"].ask("KRDG? B")).decode())
        assert kelvin == pytest.approx(clock.simulation.cryostat.sample_temperature, abs=0.5)
        assert kelvin > 5.0, f"the sample did not warm: {kelvin} K"

    run(scenario)
