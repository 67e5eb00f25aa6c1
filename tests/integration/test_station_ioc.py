"""The station IOC as a subprocess, talked to through pyepics and caproto's client."""

from __future__ import annotations

import math
import threading

import epics
import numpy as np
import polling
import pytest
from caproto import AlarmSeverity, AlarmStatus, CaprotoTimeoutError, ChannelType
from caproto._utils import ErrorResponseReceived
from caproto.sync.client import write as caproto_write
from caproto.threading.client import Context

from tcstation.ioc_sim.physics import lockin_settle_time

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def caproto_context():
    context = Context()
    yield context
    context.disconnect()


def put(name: str, value, timeout: float = 5.0) -> None:
    """Put with pyepics and wait for completion; fail loudly if it did not connect."""
    assert epics.caput(name, value, wait=True, timeout=timeout) == 1, f"put to {name} failed"


def get(name: str, **kwargs):
    """A fresh read: pyepics' default returns the monitor cache, which can lag a put."""
    value = epics.caget(name, timeout=5.0, use_monitor=False, **kwargs)
    assert value is not None, f"no answer from {name}"
    return value


def wait_for(predicate, timeout: float, what: str):
    # Every read here opens a channel of its own; polled every 20 ms, a refused-put check
    # failed with "Disconnected during initialization", so these poll every 50 ms.
    return polling.wait_for(predicate, timeout, what, poll=0.05)


def wait_sim_seconds(prefix: str, seconds: float, timeout: float = 60.0) -> None:
    start = get(f"{prefix}SIM:Time_RBV")
    wait_for(lambda: get(f"{prefix}SIM:Time_RBV") >= start + seconds, timeout,
             f"{seconds} s of simulated time")


@pytest.fixture(scope="module")
def fast_station(station_factory):
    return station_factory(speedup=60.0, noise=True)


def test_every_instrument_answers_through_pyepics_and_caproto(fast_station, caproto_context):
    prefix = fast_station.prefix
    names = [f"{prefix}{suffix}" for suffix in (
        "TC:IN1", "TC:IN2", "TC:OUT1:SP_RBV", "TC:HTR1", "TC:RampR1_RBV", "TC:IN1:Name_RBV",
        "LIA1:X", "LIA1:FREQ_RBV", "LIA2:X", "LIA2:SENS:Value_RBV", "SRC:CurrMeas",
        "ENV:Sample_RBV", "ENV:MaxSafeTemp_RBV", "SIM:Speedup_RBV",
    )]
    by_pyepics = {name: get(name, as_string=name.endswith(("_RBV",))) for name in names}
    by_caproto = dict(zip(names, (pv.read(data_type="native").data[0]
                                  for pv in caproto_context.get_pvs(*names, timeout=5.0)),
                          strict=True))
    assert by_pyepics[f"{prefix}TC:IN1:Name_RBV"] == "Stage"
    assert by_caproto[f"{prefix}SIM:Speedup_RBV"] == pytest.approx(60.0)
    assert by_pyepics[f"{prefix}ENV:Sample_RBV"] == "mg_mgo"
    assert float(by_pyepics[f"{prefix}ENV:MaxSafeTemp_RBV"]) == pytest.approx(77.0)
    assert by_caproto[f"{prefix}LIA1:FREQ_RBV"] == pytest.approx(1550.0)
    assert 4.0 < by_caproto[f"{prefix}TC:IN1"] < 4.5


def test_record_fields_carry_the_contracts_units_limits_and_descriptions(fast_station):
    prefix = fast_station.prefix
    texts = {suffix: get(f"{prefix}{suffix}", as_string=True) for suffix in (
        "TC:IN2.EGU", "TC:IN2.DESC", "TC:IN2:Kelvin.EGU", "LIA1:FREQ.EGU")}
    assert texts == {"TC:IN2.EGU": "K", "TC:IN2.DESC": "Input B in its display units",
                     "TC:IN2:Kelvin.EGU": "K", "LIA1:FREQ.EGU": "Hz"}
    numbers = {suffix: get(f"{prefix}{suffix}") for suffix in (
        "TC:OUT1:SP.DRVH", "TC:OUT1:SP.DRVL", "TC:OUT1:SP.PREC", "TC:HTR1.HOPR", "SRC:Curr.DRVL")}
    assert numbers == {"TC:OUT1:SP.DRVH": 325.0, "TC:OUT1:SP.DRVL": 0.0, "TC:OUT1:SP.PREC": 3,
                       "TC:HTR1.HOPR": 100.0, "SRC:Curr.DRVL": -1.05}


def test_loop_2_and_inputs_c_d_are_served_idle(fast_station):
    prefix = fast_station.prefix
    put(f"{prefix}TC:OUT2:SP", 40.0)
    put(f"{prefix}TC:HTR2:Range", "High")
    assert get(f"{prefix}TC:OUT2:SP_RBV") == pytest.approx(40.0)
    assert get(f"{prefix}TC:HTR2:Range_RBV", as_string=True) == "High"
    assert get(f"{prefix}TC:HTR2") == 0.0
    assert get(f"{prefix}TC:IN3:Kelvin") == pytest.approx(4.2)
    assert get(f"{prefix}TC:IN4:Name_RBV", as_string=True) == "Input D"
    message = _refusal(f"{prefix}TC:RampR2", 500.0, ChannelType.DOUBLE)
    assert "500 K/min is outside the allowed range 0.1 to 100 K/min" in message
    try:
        # Input C above its limit turns every heater off, loop 2's too, and keeps it off.
        put(f"{prefix}TC:IN3:TLimit", 1.0)
        wait_for(lambda: get(f"{prefix}TC:HTR2:Range_RBV", as_string=True) == "Off", 5.0,
                 "loop 2's heater to go off")
        assert "input 3 reads 4.200 K" in _refusal(f"{prefix}TC:HTR2:Range", "High",
                                                   ChannelType.STRING)
    finally:
        put(f"{prefix}TC:IN3:TLimit", 0.0)


def test_controller_ramps_at_the_set_rate(fast_station):
    prefix = fast_station.prefix
    put(f"{prefix}TC:HTR1:Range", "High")
    put(f"{prefix}TC:RampR1", 1.5)
    put(f"{prefix}TC:OnRamp1", "On")
    put(f"{prefix}TC:OUT1:SP", 30.0)
    # Each stage update is stamped with the SIM:Time_RBV posted next (every tick, after
    # that tick's readings, on the same circuit): simulated time, whatever the load.
    updates: list[tuple[str, float]] = []

    def recorder(kind: str):
        def record(value=None, **kw):
            updates.append((kind, float(value)))
        return record

    monitors = [epics.PV(f"{prefix}{suffix}", callback=recorder(kind), auto_monitor=True)
                for kind, suffix in (("stage", "TC:IN1"), ("time", "SIM:Time_RBV"))]
    try:
        wait_for(lambda: any(kind == "stage" and value > 26.0 for kind, value in updates),
                 60.0, "the stage to pass 26 K")
    finally:
        for pv in monitors:
            pv.clear_callbacks()
            pv.disconnect()
    clock, stage, pending = [], [], []
    for kind, value in list(updates):
        if kind == "time":
            clock += [value] * len(pending)
            stage += pending
            pending = []
        else:
            pending.append(value)
    simulated, stage = np.array(clock), np.array(stage)
    middle = (stage > 8.0) & (stage < 25.0)
    assert middle.sum() > 50
    rate = np.polyfit(simulated[middle], stage[middle], 1)[0] * 60.0
    assert rate == pytest.approx(1.5, rel=0.05)
    assert get(f"{prefix}TC:HTR1") > 0.0


def test_bad_puts_are_refused_flagged_and_the_ioc_keeps_serving(fast_station, caproto_context):
    prefix = fast_station.prefix
    # (suffix, value, whether our putter sees it and flags it): text to a number and an
    # enum index beyond the list reach the putter too (ioc_sim.putchecks), so get flagged.
    cases = [
        ("TC:OUT1:SP", 1000.0, True), ("TC:OUT1:SP", -5.0, True), ("TC:OUT1:SP", math.nan, True),
        ("TC:RampR1", 0.0, True), ("SRC:Curr", 5.0, True), ("SRC:Curr", -5.0, True),
        ("LIA1:SENS", 27, True), ("LIA1:SENS", -1, True), ("LIA1:OFLT", 20, True),
        ("LIA2:SLVL", 10.0, True), ("TC:OUT1:SP", "hot", True), ("SRC:Curr", "lots", True),
        ("TC:HTR1:Range", 7, True),
    ]
    for suffix, bad_value, flagged in cases:
        name = f"{prefix}{suffix}"
        (pv,) = caproto_context.get_pvs(name, timeout=5.0)
        before = pv.read(data_type="native").data[0]
        # The server answers ECA_PUTFAIL; caproto's threading client turns that into a
        # timeout.
        # Text goes on the wire as DBR_STRING so that it reaches the server.
        wire_type = ChannelType.STRING if isinstance(bad_value, str) else None
        with pytest.raises(CaprotoTimeoutError):
            pv.write([bad_value], wait=True, timeout=1.0, data_type=wire_type)
        reading = pv.read(data_type="time")
        assert reading.data[0] == before, f"{name} changed to {reading.data[0]} on {bad_value!r}"
        if flagged:
            assert reading.metadata.severity == AlarmSeverity.MAJOR_ALARM, name
            assert reading.metadata.status == AlarmStatus.WRITE, name
    clock = get(f"{prefix}SIM:Time_RBV")
    wait_for(lambda: get(f"{prefix}SIM:Time_RBV") > clock, 5.0, "the clock to keep running")
    put(f"{prefix}TC:OUT1:SP", 4.2)
    (setpoint,) = caproto_context.get_pvs(f"{prefix}TC:OUT1:SP", timeout=5.0)
    assert setpoint.read(data_type="time").metadata.severity == AlarmSeverity.NO_ALARM


def test_pyepics_put_of_out_of_range_bias_leaves_the_source_alone(fast_station):
    prefix = fast_station.prefix
    put(f"{prefix}SRC:Curr", 0.2)
    epics.caput(f"{prefix}SRC:Curr", 5.0, wait=True, timeout=5.0)
    assert get(f"{prefix}SRC:Curr_RBV") == pytest.approx(0.2)
    assert get(f"{prefix}SRC:Curr") == pytest.approx(0.2)
    put(f"{prefix}SRC:Curr", 0.0)


def test_dudi_and_susceptibility_follow_the_sample_state(station_factory):
    # Its own IOC at 300x: the 30-minute exposure is 6 wall s, not 30. Every reading
    # waits on the simulation clock (settled_x) and warm time is the simulator's own
    # count, so nothing checked depends on the speed-up.
    prefix = station_factory(speedup=300.0, noise=True).prefix
    put(f"{prefix}TC:OUT1:SP", 4.2)
    put(f"{prefix}SIM:Noise", "Off")
    wait_for(lambda: get(f"{prefix}SIM:SampleTemp_RBV") < 4.6, 60.0, "the sample at base")

    def settled_x(lockin: str) -> float:
        wait_sim_seconds(prefix, 20.0)
        return get(f"{prefix}{lockin}:X")

    fresh_chi = settled_x("LIA1")
    put(f"{prefix}ENV:Insert", "transport")
    put(f"{prefix}SRC:Output", "On")
    surface = settled_x("LIA2")
    put(f"{prefix}SRC:Curr", 0.4)
    surface_biased = settled_x("LIA2")
    put(f"{prefix}ENV:Contacts", "core")
    core = settled_x("LIA2")
    put(f"{prefix}SRC:Curr", 0.0)
    put(f"{prefix}ENV:Contacts", "surface")
    put(f"{prefix}ENV:ExposeMinutes", 30.0)
    put(f"{prefix}ENV:Expose", "Expose")
    assert get(f"{prefix}ENV:Exposing_RBV", as_string=True) == "Yes"
    wait_for(lambda: get(f"{prefix}ENV:Exposing_RBV", as_string=True) == "No", 60.0,
             "the 30-minute exposure to end")
    wait_for(lambda: get(f"{prefix}SIM:SampleTemp_RBV") < 4.6, 60.0, "the sample back at base")
    degraded_surface = settled_x("LIA2")
    warm_seconds = get(f"{prefix}ENV:WarmTime_RBV")
    fraction = get(f"{prefix}SIM:ScFraction_RBV")
    put(f"{prefix}ENV:Insert", "susceptometer")
    degraded_chi = settled_x("LIA1")
    put(f"{prefix}ENV:Sample", "pure_mg")
    pure_mg_chi = settled_x("LIA1")

    excitation_rms = 0.024 / math.sqrt(2)
    # At base every junction superconducts: the 3 mOhm background remains (physics note 4).
    assert surface / excitation_rms == pytest.approx(3.0e-3, rel=0.02)
    assert surface_biased > surface, "bias should push weak links normal"
    assert 0 < core < 0.01 * surface, "core contacts: a few micro-ohm, no junctions"
    assert degraded_surface > 1.5 * surface, "the degraded interface lost its superconductivity"
    assert fraction < 0.1
    assert 30 * 60 <= warm_seconds < 32 * 60
    assert get(f"{prefix}ENV:WarmTime_RBV") == 0.0, "a freshly mounted sample has not been warm"
    assert fresh_chi < -0.2e-3, "fresh Mg/MgO shields: 4 pi chi' below -0.7 at 0.3 mV/unit"
    assert degraded_chi == pytest.approx(pure_mg_chi, abs=0.01 * abs(fresh_chi))
    # Pure Mg still shields by eddy currents at base (4 pi chi' ~ -0.6 against -0.9 fresh):
    # 0.05 mV is about 0.17 units of 4 pi chi, some 80 times the pickup noise.
    assert degraded_chi > fresh_chi + 0.05e-3


def test_lockin_settles_after_a_bias_step_within_the_table_time(station_factory):
    """Timed on the simulation clock, so the verdict does not depend on the machine's load.

    The IOC posts SIM:Time_RBV every tick after that tick's readings, and a put's readback
    before the put completes, all on one circuit in order: each X (and bias readback)
    update is timed by the SIM:Time_RBV posts either side of it (a tick: 0.1 wall s, so
    0.4 simulated s at 4x; 24 wall s at 1x become 7).
    """
    speedup = 4.0
    station = station_factory(speedup=speedup, noise=False)
    prefix = station.prefix
    put(f"{prefix}ENV:Insert", "transport")
    put(f"{prefix}LIA2:OFLT", 10)  # 1 s
    put(f"{prefix}LIA2:OFSL", "12 dB/oct")
    put(f"{prefix}SRC:Output", "On")
    settle = lockin_settle_time(1.0, 12)
    wait_sim_seconds(prefix, settle + 1.0)
    before = get(f"{prefix}LIA2:X")
    updates: list[tuple[str, float]] = []
    lock = threading.Lock()

    def recorder(kind: str):
        def record(value=None, **kw):
            with lock:
                updates.append((kind, float(value)))
        return record

    monitors = [epics.PV(f"{prefix}{suffix}", callback=recorder(kind), auto_monitor=True)
                for kind, suffix in (("x", "LIA2:X"), ("bias", "SRC:Curr_RBV"),
                                     ("time", "SIM:Time_RBV"))]
    wait_for(lambda: all(pv.connected for pv in monitors) and
             {kind for kind, _ in updates} >= {"x", "time"}, 5.0, "the monitors")
    put(f"{prefix}SRC:Curr", 0.4)
    wait_sim_seconds(prefix, 2 * settle)
    for pv in monitors:
        pv.clear_callbacks()
    after = get(f"{prefix}LIA2:X")
    assert abs(after - before) > 0.05 * abs(before), "the bias step must change the reading"
    with lock:
        # (earliest, latest) simulated time of each update: between the previous and the
        # next SIM:Time_RBV post. A stalled tick widens one interval, never shifts it.
        stamped, pending, previous = [], [], -math.inf
        for kind, value in updates:
            if kind == "time":
                stamped += [(previous, value, pending_kind, x) for pending_kind, x in pending]
                pending, previous = [], value
            else:
                pending.append((kind, value))
    steps = [(early, late) for early, late, kind, value in stamped
             if kind == "bias" and value == pytest.approx(0.4)]
    assert steps, "no bias readback of 0.4 A was posted"
    step_early, step_late = steps[0]
    trace = [(early, late, x) for early, late, kind, x in stamped
             if kind == "x" and early >= step_late]
    tolerance = 0.01 * abs(after - before)
    # Elapsed since the step: at least early - step_late, at most late - step_early. The
    # lower bound never exceeds the true time (6.6 s to 1 % at 12 dB/oct), so a correct
    # filter passes whatever the ticks; one slower than the table by two ticks fails.
    within = [early - step_late for early, late, x in trace if abs(x - after) <= tolerance]
    outside = [late - step_early for early, late, x in trace if abs(x - after) > tolerance]
    assert within and min(within) <= settle, (min(within, default=None), settle)
    assert outside and max(outside) >= 0.5 * settle, "a filter that jumps is no filter"


def _settings() -> list[tuple[str, object]]:
    """Every writable PV suffix of the station IOC with its PV instance (built in-process)."""
    from tcstation.ioc_sim.station import build_ioc, build_parser

    ioc = build_ioc(build_parser().parse_args(["--prefix", "P:", "--no-noise"]))
    return [(name.removeprefix("P:"), instance) for name, instance in ioc.pvdb.items()
            if not instance.pvspec.read_only and instance.putter is not None]


def _refusal(name: str, value, data_type) -> str:
    """Put ``value`` expecting a refusal; return the server's message."""
    try:
        caproto_write(name, [value], notify=True, data_type=data_type, timeout=20.0)
    except ErrorResponseReceived as err:
        return bytes(err.args[0].error_message).decode(errors="replace").rstrip("\x00")
    raise AssertionError(f"{name} accepted {value!r}")


def test_every_refused_put_names_the_value_and_what_is_allowed(fast_station, caproto_context):
    prefix = fast_station.prefix
    settings = _settings()
    enums = [(suffix, pv) for suffix, pv in settings if pv.data_type == ChannelType.ENUM]
    numbers = [(suffix, pv) for suffix, pv in settings if pv.data_type != ChannelType.ENUM]
    assert len(enums) >= 14 and len(numbers) >= 24
    for suffix, pv in enums:
        name = f"{prefix}{suffix}"
        (client,) = caproto_context.get_pvs(name, timeout=5.0)
        before = client.read(data_type=ChannelType.STRING).data[0]
        for bad, wire in (("bogus", ChannelType.STRING), (len(pv.enum_strings), ChannelType.LONG),
                          (-1, ChannelType.LONG), (0.5, ChannelType.DOUBLE)):
            message = _refusal(name, bad, wire)
            assert repr(bad) in message or str(bad) in message, message
            assert all(repr(choice) in message for choice in pv.enum_strings), message
        assert client.read(data_type=ChannelType.STRING).data[0] == before, name
    for suffix, _pv in numbers:
        name = f"{prefix}{suffix}"
        (client,) = caproto_context.get_pvs(name, timeout=5.0)
        before = client.read().data[0]
        message = _refusal(name, "bogus", ChannelType.STRING)
        assert "'bogus'" in message and "allowed" in message and " to " in message, message
        assert client.read().data[0] == before, name


@pytest.mark.parametrize("suffix", ["LIA1:SENS", "LIA2:OFLT", "LIA1:HARM", "LIA2:AGAN"])
def test_a_fractional_index_is_refused_not_truncated(fast_station, caproto_context, suffix):
    name = f"{fast_station.prefix}{suffix}"
    (client,) = caproto_context.get_pvs(name, timeout=5.0)
    before = int(client.read().data[0])
    message = _refusal(name, before + 0.5, ChannelType.DOUBLE)
    assert f"{before + 0.5!r}" in message and "whole number" in message, message
    assert client.read().data[0] == before
    assert get(f"{name}_RBV" if suffix != "LIA2:AGAN" else name) == before
