"""The IPython profile opens a session on the simulated station and binds the station's names."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tcstation.queueserver import PROFILE_DIR

pytestmark = pytest.mark.integration

PROBE = ("print('NAMES', sorted(n for n in ('RE', 'station', 'cryostat', 'transport', "
         "'bias_source', 'susceptometer', 'environment', 'transport_ramp', 'source_protocol', "
         "'report') if n in globals())); import inspect; "
         "print('SIGNATURE', inspect.signature(transport_ramp)); "
         "print('SUSPENDERS', len(RE.suspenders))")


def test_ipython_profile_opens_the_simulated_station(station_factory, tmp_path):
    ioc = station_factory(speedup=60.0)
    ipython = Path(sys.executable).with_name("ipython")
    environment = {**os.environ, "TCSTATION_PREFIX": ioc.prefix, "TCSTATION_STORAGE": "off",
                   "IPYTHONDIR": str(tmp_path / "ipython"), "MPLBACKEND": "Agg"}
    result = subprocess.run([str(ipython), f"--profile-dir={PROFILE_DIR}", "--no-banner",
                             "--HistoryManager.enabled=False", "-c", PROBE],
                            env=environment, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert f"tcstation: simulated station ({ioc.prefix}TC:), data: no Tiled storage" in output
    assert ("NAMES ['RE', 'bias_source', 'cryostat', 'environment', 'report', 'source_protocol', "
            "'station', 'susceptometer', 'transport', 'transport_ramp']") in output
    assert "SIGNATURE (start: float = 4.5, stop: float = 70.0" in output
    assert "SUSPENDERS 2" in output
