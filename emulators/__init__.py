"""Emulators: TCP servers on loopback that speak each instrument's own command set.

``tcstation emulate`` serves a LakeShore 336, two SR830s and a Keithley 2400 on
their own ports, every one answering from one shared ``StationSimulation``
(one cryostat, one sample), advanced on wall time times ``--speedup``. They
stand in for the real instruments so the bridge (``tcstation bridge``) is
tested end to end over real sockets.
"""
