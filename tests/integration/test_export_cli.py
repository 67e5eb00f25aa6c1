"""``tcstation export`` as a user runs it: a subprocess against the data directory's Tiled.

Runs counted from ophyd.sim's ``det`` and two with chosen uids (a shared prefix) are
written to a real local Tiled server; the command, pointed only at the data directory,
finds that server, resolves runs by prefix and ``latest``, and says in one line, exit
status 2, when a reference is ambiguous or unknown.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import bluesky.plans as bp
import h5py
import pandas
import pytest
from bluesky import RunEngine
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run
from ophyd.sim import det

from tcstation.storage import LocalTiledServer, StorageConfig, connect_runs

pytestmark = pytest.mark.integration
TCSTATION = str(Path(sys.executable).with_name("tcstation"))


TWINS = ("abcd1234-0000-4000-8000-000000000001", "abcd5678-0000-4000-8000-000000000002")
"""Two older runs whose uids share the prefix ``abcd``."""


def _write_twin(writer: TiledWriter, uid: str, when: float) -> None:
    bundle = compose_run(uid=uid, time=when, metadata={"scan_id": 100, "plan_name": "twin"})
    descriptor = bundle.compose_descriptor(
        name="primary", data_keys={"x": {"dtype": "number", "shape": [], "source": "sim"}})
    writer("start", bundle.start_doc)
    writer("descriptor", descriptor.descriptor_doc)
    writer("event", descriptor.compose_event(data={"x": 1.0}, timestamps={"x": when},
                                             seq_num=1))
    writer("stop", bundle.compose_stop(time=when + 1))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tcstation-data")
    server = LocalTiledServer(StorageConfig(data_dir=data_dir)).start()
    writer = TiledWriter(connect_runs(server.uri, server.api_key))
    for age, uid in zip((2000.0, 1000.0), TWINS, strict=True):
        _write_twin(writer, uid, time.time() - age)
    run_engine = RunEngine({})
    run_engine.subscribe(writer)
    uids = [run_engine(bp.count([det], 3))[0] for _ in range(2)]
    yield data_dir, uids
    server.stop()


def export(data_dir: Path, cwd: Path, *arguments: str,
           command: str = "export") -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("TCSTATION_")}
    environment["TCSTATION_DATA_DIR"] = str(data_dir)
    return subprocess.run([TCSTATION, command, *arguments], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_export_by_the_prefix_its_file_is_named_after(stored, tmp_path):
    data_dir, uids = stored
    result = export(data_dir, tmp_path, uids[1][:8], "--format", "hdf5")
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"{uids[1][:8]}.h5"
    assert f"wrote {path.name}" in result.stdout
    with h5py.File(path, "r") as root:
        assert root["entry/entry_identifier"].asstr()[()] == uids[1]
        assert root["entry"].attrs["default"] == "primary"
        assert root["entry/primary"].attrs["signal"] == "det"
    result = export(data_dir, tmp_path, "latest")
    assert result.returncode == 0, result.stderr
    frame = pandas.read_csv(tmp_path / f"{uids[-1][:8]}.csv")
    assert list(frame["det"]) == pytest.approx([1.0] * 3, abs=1.0)
    assert (tmp_path / f"{uids[-1][:8]}.json").exists()


def test_an_ambiguous_prefix_is_one_line_naming_the_candidates(stored, tmp_path):
    data_dir, _ = stored
    result = export(data_dir, tmp_path, "abcd")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("tcstation export: uid prefix 'abcd' is ambiguous: it matches "
                           "abcd5678 (scan 100, twin, ")
    assert "abcd1234 (scan 100, twin, " in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("reference", ["0000ffff", "999", "last"])
def test_an_unknown_reference_is_one_line_naming_the_newest_runs(stored, tmp_path,
                                                                 reference):
    data_dir, uids = stored
    result = export(data_dir, tmp_path, reference)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("tcstation export: ")
    assert f"the newest are {uids[-1][:8]} (scan " in line
    assert "abcd1234" in line
    assert not list(tmp_path.iterdir())


def test_report_says_the_same_about_an_ambiguous_prefix(stored, tmp_path):
    data_dir, _ = stored
    result = export(data_dir, tmp_path, "abcd", "--output", str(tmp_path / "report"),
                    command="report")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("tcstation report: uid prefix 'abcd' is ambiguous")
