"""The bridge: a Channel Access IOC serving real instruments' PVs through PyVISA.

``tcstation bridge CONFIG.toml`` serves, for each instrument of the TOML, the PVs
the simulated station IOC serves for it (built from the same contract in
``tcstation.instruments``), sending the instrument's own commands
(``tcstation.protocol``) through PyVISA's pure-Python backend (``@py``): the LakeShore 336
(:mod:`.lakeshore336`), the Keithley 2400 (:mod:`.sourcemeter`) and SR830s
(:mod:`.sr830`); :mod:`.group` holds what they share.
"""
