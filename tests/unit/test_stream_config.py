"""The document stream's settings: defaults, environment variables, clear refusals."""

from __future__ import annotations

import pytest

from tcstation.follow import RunPrinter
from tcstation.stream import StreamConfig, StreamError


def test_defaults_are_bluesky_s_conventional_loopback_ports():
    config = StreamConfig.from_environment({})
    assert (config.in_address, config.out_address) == ("tcp://127.0.0.1:5577",
                                                       "tcp://127.0.0.1:5578")
    assert config.enabled and config.is_local


def test_the_environment_moves_and_turns_off_the_stream():
    config = StreamConfig.from_environment({
        "TCSTATION_STREAM": "OFF", "TCSTATION_STREAM_HOST": "beamline-proxy",
        "TCSTATION_STREAM_IN_PORT": "6000", "TCSTATION_STREAM_OUT_PORT": "6001"})
    assert not config.enabled and not config.is_local
    assert config.out_address == "tcp://beamline-proxy:6001"


@pytest.mark.parametrize("environ, message", [
    ({"TCSTATION_STREAM": "yes"}, "TCSTATION_STREAM='yes' is not one of on, off"),
    ({"TCSTATION_STREAM_IN_PORT": "high"}, "TCSTATION_STREAM_IN_PORT='high': expected a port"),
    ({"TCSTATION_STREAM_OUT_PORT": "70000"}, "TCSTATION_STREAM_OUT_PORT=70000: expected a port"),
    ({"TCSTATION_STREAM_OUT_PORT": "5577"}, "both 5577"),
])
def test_bad_settings_are_refused_with_the_value(environ, message):
    with pytest.raises(StreamError, match=message):
        StreamConfig.from_environment(environ)


def test_an_event_line_shows_the_dimension_first_then_the_hinted_fields_with_units():
    lines: list[str] = []
    printer = RunPrinter(lines.append)
    printer("start", {"uid": "a" * 32, "time": 0, "plan_name": "transport_ramp", "scan_id": 7,
                      "sample": {"name": "mg_mgo"},
                      "hints": {"dimensions": [(["sample_temperature"], "primary")]}})
    printer("descriptor", {
        "uid": "d", "run_start": "a" * 32, "name": "primary",
        "data_keys": {"dudi": {"units": "ohm"}, "sample_temperature": {"units": "K"},
                      "raw": {}},
        "hints": {"transport": {"fields": ["dudi"]}, "cryostat": {"fields": []}}})
    printer("event", {"descriptor": "d", "seq_num": 3,
                      "data": {"dudi": 0.0012345678, "sample_temperature": 45.25, "raw": 1}})
    printer("stop", {"run_start": "a" * 32, "exit_status": "abort", "reason": "operator"})
    assert lines[0].endswith("transport_ramp, scan 7, sample mg_mgo")
    assert lines[1] == "      3  sample_temperature 45.25 K  dudi 0.00123457 ohm"
    assert lines[2] == "run aaaaaaaa (transport_ramp) ended: abort: operator, 1 events"
