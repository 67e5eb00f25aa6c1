"""What every bridged instrument's PVGroup shares: PVs built from the contract, the
connect / poll / alarm / reconnect loop, the bridge's own ``IDN_RBV`` and ``Connected_RBV``."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time

from caproto import AlarmSeverity, AlarmStatus, ChannelType
from caproto.server import pvproperty

from tcstation.bridge.config import InstrumentConfig
from tcstation.bridge.connection import CommunicationError, VisaConnection
from tcstation.instruments.signal import ACTION, ENUM, FLOAT, INT, SETTING, by_suffix
from tcstation.ioc_sim.putchecks import (
    CheckedGroup,
    RefusedPutError,
    checked,
    guarded,
    served,
    served_setting,
)
from tcstation.protocol import ProtocolError

logger = logging.getLogger(__name__)

NO_YES = ("No", "Yes")


def attribute_name(suffix: str) -> str:
    return re.sub(r"\W", "_", suffix).lower()


def _initial(signal):
    return {FLOAT: 0.0, INT: 0, ENUM: signal.choices[0] if signal.choices else ""}.get(
        signal.type, "")


def parse_chained(instrument: str, queries: list[tuple[str, object]], reply: str) -> dict:
    """The values of a chained query's reply (``;`` between the replies): each query's
    parser gives ``{suffix: value}``."""
    command = ";".join(text for text, _ in queries)
    parts = reply.split(";")
    if len(parts) != len(queries):
        raise ProtocolError(instrument, command, reply,
                            f"expected {len(queries)} replies separated by ';', got {len(parts)}")
    values = {}
    for (text, parse), part in zip(queries, parts, strict=True):
        values.update(parse(text, part))
    return values


def same(signal, asked, got) -> bool:
    """Whether the instrument took ``asked``: equal, or a float within the PV's precision."""
    if signal.type == FLOAT:
        digits = signal.precision if signal.precision is not None else 3
        return math.isclose(float(asked), float(got), rel_tol=1e-6, abs_tol=10.0 ** -digits)
    return asked == got


class BridgeGroup(CheckedGroup):
    """What every bridged instrument's group does: connect, poll, alarm, reconnect."""

    instrument = "instrument"
    signals: dict = {}  # the contract's signals by suffix, set by build_group_class

    def __init__(self, *args, config: InstrumentConfig, connection: VisaConnection | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config
        self.connection = connection or VisaConnection(config)
        self.connected = False
        self.state: dict = {}
        self.by_suffix = {name[len(self.prefix):]: instance
                          for name, instance in self.pvdb.items() if "." not in name}
        self._poll_now = asyncio.Event()
        self._settings_now = False

    def pv(self, suffix: str):
        return self.by_suffix[suffix]

    async def flag_disconnected(self, error: Exception) -> None:
        """Every PV of the instrument in COMM / INVALID alarm: what it shows is old news."""
        if self.connected:
            logger.error("%s lost: %s", self.config.name, error)
        self.connected = False
        await self.connected_pv.write("No")
        for alarm in {id(pv.alarm): pv.alarm for suffix, pv in self.by_suffix.items()
                      if suffix != "Connected_RBV"}.values():
            if alarm.severity != AlarmSeverity.INVALID_ALARM:
                await alarm.write(status=AlarmStatus.COMM,
                                  severity=AlarmSeverity.INVALID_ALARM)

    async def clear_alarms(self) -> None:
        for alarm in {id(pv.alarm): pv.alarm for pv in self.by_suffix.values()}.values():
            if alarm.status == AlarmStatus.COMM:
                await alarm.write(status=AlarmStatus.NO_ALARM,
                                  severity=AlarmSeverity.NO_ALARM)

    async def run_forever(self) -> None:
        settings_due = 0.0
        while True:
            started = time.monotonic()
            try:
                if not self.connected:
                    await self.connect()
                    settings_due = time.monotonic() + self.config.settings_period
                elif self._settings_now or time.monotonic() >= settings_due:
                    self._settings_now = False
                    await self.read_settings()
                    settings_due = time.monotonic() + self.config.settings_period
                await self.read_measurements()
            except (CommunicationError, ProtocolError) as error:
                await self.flag_disconnected(error)
                await asyncio.sleep(self.config.reconnect_period)
                continue
            except Exception:
                logger.exception("%s: poll failed", self.config.name)
            self._poll_now.clear()
            # the period runs from the start of a poll: a slow instrument (the LakeShore's
            # 20 commands a second) does not stretch it beyond what its replies take
            try:
                await asyncio.wait_for(self._poll_now.wait(), max(
                    0.0, started + self.config.poll_period - time.monotonic()))
            except TimeoutError:
                pass

    async def connect(self) -> None:
        reply = await self.connection.query("*IDN?")
        try:
            self.check_idn(reply)
        except ProtocolError as error:
            await self.connection.run(self.connection.close)
            raise CommunicationError(str(error)) from error
        await self.setup()
        await self.read_settings()
        await self.clear_alarms()
        await self.idn_pv.write(reply)
        self.connected = True
        await self.connected_pv.write("Yes")
        logger.warning("%s connected: %s", self.config.name, reply)

    def check_idn(self, reply: str) -> None:
        raise NotImplementedError

    async def publish(self, values: dict, write_setpoints: bool) -> None:
        """Serve ``{suffix: value}`` read from the instrument.

        A setting's value goes to its readback, and to the setpoint too when
        ``write_setpoints`` (a change made at the front panel shows in both). Keys
        starting with ``_`` are kept in :attr:`state` only. A PV is written only when its
        value changes (or on its first value), so monitors see changes, not polls.
        """
        for suffix, value in values.items():
            old = self.state.get(suffix)
            self.state[suffix] = value
            if suffix.startswith("_"):
                continue
            signal = self.signals[suffix]
            if signal.role != SETTING:
                if old != value or self.pv(suffix).value != value:
                    await self.pv(suffix).write(value)
                continue
            readback = self.pv(signal.readback_suffix)
            if readback.value != value or old is None:
                await readback.write(value)
            setpoint = self.pv(suffix)
            if write_setpoints and setpoint.value != value:
                await setpoint.write(value, verify_value=False)
            await self.published(suffix, value)

    async def published(self, suffix: str, value) -> None:
        """What else a new setting's value changes (default: nothing)."""

    async def write_setting(self, suffix: str, instance, value, exchange, parse) -> object:
        """Put a setting: its command and its query in one exchange; the value read back.

        ``exchange(value)`` gives the command and the query for the checked value;
        ``parse(query, reply)`` gives ``{suffix: value}`` for the query's reply, which is
        published (the setting itself and what the same reply says of others). Refused,
        with the PV, the value and the reason, when the instrument is not connected, does
        not answer, or reads back something else.
        """
        signal = self.signals[suffix]
        value = checked(signal, value, instance.pvname)
        if not self.connected:
            raise RefusedPutError(f"{instance.pvname} = {value!r} refused: the "
                                  f"{self.instrument} ({self.config.resource}) is not connected")
        command, readback = exchange(value)
        try:
            _, reply = await self.connection.transaction([("write", command),
                                                          ("query", readback)])
            values = parse(readback, reply)
        except (CommunicationError, ProtocolError) as error:
            await self.flag_disconnected(error)
            raise RefusedPutError(f"{instance.pvname} = {value!r}: {error}") from error
        await self.publish({key: item for key, item in values.items() if key != suffix},
                           write_setpoints=False)
        got, was = values[suffix], self.state.get(suffix)
        self.state[suffix] = got
        await self.pv(signal.readback_suffix).write(got)  # a monitor update for every put
        await self.published(suffix, got)
        if not same(signal, value, got):
            raise RefusedPutError(f"{instance.pvname} = {value!r}: the {self.instrument} did "
                                  f"not take {command!r}; it reads back {got!r} (was {was!r})")
        return got

    async def exchange_chained(self, queries) -> dict:
        """Send ``queries`` (``(text, parser)``) as one chained message and parse the reply."""
        command = ";".join(text for text, _ in queries)
        reply = await self.connection.query(command)
        try:
            return parse_chained(self.instrument, queries, reply)
        except ProtocolError as error:
            await self.connection.run(self.connection.close)
            raise CommunicationError(str(error)) from error

    async def setup(self) -> None:
        """Commands sent once a connection is made (an interface choice, formats)."""

    async def read_settings(self) -> None:
        raise NotImplementedError

    async def read_measurements(self) -> None:
        raise NotImplementedError

    async def put_setting(self, suffix: str, instance, value):
        raise NotImplementedError

    async def run_action(self, suffix: str, instance, value):
        raise NotImplementedError

    async def shutdown(self) -> None:
        """What the bridge does with the instrument when it stops (default: nothing)."""


def _setting_putter(suffix: str):
    @guarded
    async def putter(group, instance, value):
        return await group.put_setting(suffix, instance, value)

    return putter


def _action_putter(suffix: str):
    @guarded
    async def putter(group, instance, value):
        return await group.run_action(suffix, instance, value)

    return putter


async def _startup(group, instance, async_lib):
    await group.flag_disconnected(CommunicationError("not connected yet"))
    await group.run_forever()


async def _shutdown(group, instance, async_lib):
    try:
        await group.shutdown()
    except Exception:
        logger.exception("%s: shutdown failed", group.config.name)


def build_group_class(signals, base, name):
    """A PVGroup class serving every contract signal as the simulated IOC does."""
    attributes: dict = {"signals": by_suffix(signals)}
    for signal in signals:
        key = attribute_name(signal.suffix)
        if signal.role == SETTING:
            setting, readback = served_setting(signal, _initial(signal))
            attributes[key] = setting.putter(_setting_putter(signal.suffix))
            attributes[key + "_rbv"] = readback
        elif signal.role == ACTION:
            attributes[key] = served(signal, _initial(signal)).putter(
                _action_putter(signal.suffix))
        else:
            attributes[key] = served(signal, _initial(signal))
    attributes["idn_pv"] = pvproperty(name="IDN_RBV", value="", dtype=ChannelType.STRING,
                                      read_only=True, doc="The instrument's *IDN? reply",
                                      max_length=100, record="stringin")
    connected = pvproperty(name="Connected_RBV", value="No", dtype=ChannelType.ENUM,
                           enum_strings=NO_YES, read_only=True, alarm_group="connected",
                           doc="The bridge talks to the instrument", record="bi")
    attributes["connected_pv"] = connected.startup(_startup).shutdown(_shutdown)
    return type(name, (base,), attributes)


