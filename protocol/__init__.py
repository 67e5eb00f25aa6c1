"""The instruments' own remote protocols, as plain functions: a setting to its command
string, a reply to its value, and the reverse for an emulator.

One module per instrument (:mod:`.lakeshore336`, :mod:`.sr830`, :mod:`.sourcemeter`).
Nothing here opens a socket or knows about Channel Access; the bridge
(``tcstation.bridge``) sends these strings through PyVISA and the emulators
(``tcstation.emulators``) answer them. A reply that does not parse raises
:class:`ProtocolError`, naming the instrument, the command and the reply.
"""

from .common import ProtocolError

__all__ = ["ProtocolError"]
