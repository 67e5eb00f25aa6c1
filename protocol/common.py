"""What the three protocols share: the error, number parsing, chained messages."""

from __future__ import annotations

import math


class ProtocolError(ValueError):
    """A reply (or a command) that does not follow the instrument's protocol."""

    def __init__(self, instrument: str, command: str, reply: str, reason: str):
        self.instrument = instrument
        self.command = command
        self.reply = reply
        self.reason = reason
        super().__init__(f"{instrument}: reply {reply!r} to {command!r}: {reason}")


def parse_float(instrument: str, command: str, reply: str, text: str | None = None) -> float:
    """``text`` (default the whole reply) as a finite float, else :class:`ProtocolError`."""
    text = reply if text is None else text
    try:
        value = float(text.strip())
    except ValueError:
        raise ProtocolError(instrument, command, reply, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ProtocolError(instrument, command, reply, f"{text!r} is not finite")
    return value


def parse_int(instrument: str, command: str, reply: str, text: str | None = None,
              allowed: range | None = None) -> int:
    """``text`` as a whole number (in ``allowed`` if given), else :class:`ProtocolError`."""
    text = (reply if text is None else text).strip()
    try:
        value = int(text)
    except ValueError:
        raise ProtocolError(instrument, command, reply,
                            f"{text!r} is not a whole number") from None
    if allowed is not None and value not in allowed:
        raise ProtocolError(instrument, command, reply,
                            f"{value} is outside {allowed.start} to {allowed.stop - 1}")
    return value


def split_fields(instrument: str, command: str, reply: str, count: int,
                 separator: str = ",") -> list[str]:
    """The reply's ``count`` comma-separated fields, else :class:`ProtocolError`."""
    fields = [field.strip() for field in reply.strip().split(separator)]
    if len(fields) != count:
        raise ProtocolError(instrument, command, reply,
                            f"expected {count} fields separated by {separator!r}, "
                            f"got {len(fields)}")
    return fields


def chain(commands: list[str]) -> str:
    """Several commands or queries as one message (the three instruments take ``;``)."""
    return ";".join(commands)


def split_chained(instrument: str, command: str, reply: str, count: int) -> list[str]:
    """The ``count`` replies of a chained query, joined by ``;``."""
    return split_fields(instrument, command, reply, count, separator=";")


def parse_idn(instrument: str, reply: str, model: str) -> tuple[str, str, str, str]:
    """``*IDN?``'s four fields (maker, model, serial, firmware); the model must contain
    ``model`` (case and blanks ignored)."""
    fields = split_fields(instrument, "*IDN?", reply, 4)
    if model.replace(" ", "").upper() not in fields[1].replace(" ", "").upper():
        raise ProtocolError(instrument, "*IDN?", reply,
                            f"model {fields[1]!r} is not a {model}")
    return fields[0], fields[1], fields[2], fields[3]
