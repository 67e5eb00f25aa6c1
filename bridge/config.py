"""The bridge's TOML: where each instrument is and how to talk to it.

::

    prefix = "TCS:"                 # station prefix, as the simulated IOC's

    [instruments.cryostat]
    kind = "lakeshore336"
    resource = "TCPIP0::192.168.1.50::7777::SOCKET"
    prefix = "TC:"                  # under the station prefix (default: the simulator's)
    read_termination = "\\r\\n"       # defaults: the instrument's own
    write_termination = "\\n"
    timeout = 2.0                   # s, one reply
    poll_period = 0.5               # s, between readings
    settings_period = 10.0          # s, between reads of every setting

    [instruments.bias_source]
    kind = "sourcemeter"
    resource = "TCPIP0::192.168.1.60::5025::SOCKET"
    ramp_rate = 0.1                 # A/s, to 0 A before the output goes off
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tcstation.protocol import lakeshore336, sourcemeter, sr830

PROTOCOLS = {"lakeshore336": lakeshore336, "sr830": sr830, "sourcemeter": sourcemeter}
DEFAULT_PREFIXES = {"lakeshore336": "TC:", "sr830": "LIA1:", "sourcemeter": "SRC:"}
BUILT = ("lakeshore336", "sourcemeter", "sr830")
"""The kinds the bridge serves today."""
DEFAULT_POLL_PERIODS = {"lakeshore336": 0.5, "sr830": 0.2, "sourcemeter": 0.2}
KEYS = {"kind", "resource", "prefix", "read_termination", "write_termination", "timeout",
        "poll_period", "settings_period", "reconnect_period", "ramp_rate"}


class ConfigError(ValueError):
    """A bridge configuration that cannot be served."""


@dataclass(frozen=True)
class InstrumentConfig:
    name: str
    kind: str
    resource: str
    prefix: str
    read_termination: str
    write_termination: str
    timeout: float = 2.0
    poll_period: float = 0.5
    settings_period: float = 10.0
    reconnect_period: float = 1.0
    ramp_rate: float = 0.1
    """A/s: how fast a source is ramped to 0 A before it is switched off."""


@dataclass(frozen=True)
class BridgeConfig:
    prefix: str
    instruments: tuple[InstrumentConfig, ...]
    path: Path | None = None


def _positive(name: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise ConfigError(f"instruments.{name}.{key} = {value!r}: a positive number of seconds")
    return float(value)


def parse_config(data: dict, path: Path | None = None) -> BridgeConfig:
    prefix = data.get("prefix", "TCS:")
    if not isinstance(prefix, str):
        raise ConfigError(f"prefix = {prefix!r} is not a string")
    table = data.get("instruments")
    if not isinstance(table, dict) or not table:
        raise ConfigError("no [instruments.NAME] table: nothing to bridge")
    instruments = []
    for name, entry in table.items():
        unknown = set(entry) - KEYS
        if unknown:
            raise ConfigError(f"instruments.{name}: unknown keys {sorted(unknown)}; "
                              f"known: {sorted(KEYS)}")
        kind = entry.get("kind")
        if kind not in PROTOCOLS:
            raise ConfigError(f"instruments.{name}.kind = {kind!r} is not one of "
                              f"{sorted(PROTOCOLS)}")
        resource = entry.get("resource")
        if not isinstance(resource, str) or "::" not in resource:
            raise ConfigError(f"instruments.{name}.resource = {resource!r} is not a VISA "
                              "resource string (e.g. TCPIP0::192.168.1.50::7777::SOCKET)")
        protocol = PROTOCOLS[kind]
        instruments.append(InstrumentConfig(
            name=name, kind=kind, resource=resource,
            prefix=entry.get("prefix", DEFAULT_PREFIXES[kind]),
            read_termination=entry.get("read_termination", protocol.READ_TERMINATION),
            write_termination=entry.get("write_termination", protocol.WRITE_TERMINATION),
            timeout=_positive(name, "timeout", entry.get("timeout", 2.0)),
            poll_period=_positive(name, "poll_period",
                                  entry.get("poll_period", DEFAULT_POLL_PERIODS[kind])),
            settings_period=_positive(name, "settings_period", entry.get("settings_period", 10.0)),
            reconnect_period=_positive(name, "reconnect_period",
                                       entry.get("reconnect_period", 1.0)),
            ramp_rate=_positive(name, "ramp_rate", entry.get("ramp_rate", 0.1)),
        ))
    return BridgeConfig(prefix=prefix, instruments=tuple(instruments), path=path)


def load_config(path: Path) -> BridgeConfig:
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    return parse_config(data, Path(path))
