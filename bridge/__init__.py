"""The bridge: a Channel Access IOC serving real instruments' PVs through PyVISA.

``tcstation bridge CONFIG.toml`` serves, for each instrument of the TOML, the PVs
the simulated station IOC serves for it (built from the same contract in
``tcstation.instruments``), sending the instrument's own commands
(``tcstation.protocol``) through PyVISA's pure-Python backend (``@py``). Today
it bridges the LakeShore 336; the SR830s and the SourceMeter are not built yet.
"""
