"""The bridge's timing against the emulators, on loopback: what a put and a reading cost,
how soon a lost instrument shows, how soon it is served again.

Starts ``tcstation emulate`` and ``tcstation bridge`` (LakeShore 336, Keithley 2400,
one SR830) as subprocesses and prints, in wall seconds:

* a put with completion (``OUT1:SP``, ``SRC:Curr``, ``LIA1:SENS``): median and maximum
  of ``--puts`` puts, each a write and its read-back through PyVISA (the LakeShore's
  includes its pace of about 20 commands a second);
* the LakeShore's reading period: the median interval between ``IN1`` timestamps;
* from the emulators' SIGKILL to ``IN1`` in COMM / INVALID alarm;
* from the restarted emulators listening to ``TC:Connected_RBV`` = Yes.

    python benchmarks/bridge_timing.py [--puts 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from caproto import AlarmStatus, CaprotoError

from tcstation.ioc_process import free_port, loopback_client_environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=20)
    args = parser.parse_args()
    ca_port = free_port()
    os.environ.update(loopback_client_environment(ca_port))
    import caproto.sync.client as client

    client.spawn_repeater = lambda: None
    directory = Path(tempfile.mkdtemp(prefix="bridge-timing-"))
    ports = {name: free_port() for name in ("lakeshore336", "lockin1", "lockin2", "sourcemeter")}
    emulate = [sys.executable, "-m", "tcstation.emulators", "--speedup", "60", "--ports-file",
               str(directory / "ports.json")] + [
        item for name, port in ports.items() for item in (f"--{name}-port", str(port))]

    def start_emulators():
        (directory / "ports.json").unlink(missing_ok=True)
        process = subprocess.Popen(emulate, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        while not (directory / "ports.json").exists():
            time.sleep(0.02)
        return process

    def read(name, **kwargs):
        try:
            return client.read(name, data_type="time", timeout=2.0, repeater=False, **kwargs)
        except (CaprotoError, TimeoutError, OSError):
            return None

    config = directory / "bridge.toml"
    config.write_text("".join(
        f'[instruments.{name}]\nkind = "{kind}"\nprefix = "{prefix}"\n'
        f'resource = "TCPIP0::127.0.0.1::{ports[port]}::SOCKET"\nreconnect_period = 0.5\n'
        for name, kind, prefix, port in (("cryostat", "lakeshore336", "TC:", "lakeshore336"),
                                         ("bias_source", "sourcemeter", "SRC:", "sourcemeter"),
                                         ("lockin", "sr830", "LIA1:", "lockin1"))))
    emulators = start_emulators()
    bridge = subprocess.Popen([sys.executable, "-m", "tcstation.bridge", str(config),
                               "--port", str(ca_port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, **loopback_client_environment(ca_port)})
    try:
        for name in ("TC:", "SRC:", "LIA1:"):
            while (getattr(read(f"TCS:{name}Connected_RBV"), "data", [0]))[0] != 1:
                time.sleep(0.1)
        figures = {}
        for pv, values in (("TC:OUT1:SP", (5.0, 6.0)), ("SRC:Curr", (0.0, 0.001)),
                           ("LIA1:SENS", (16, 17))):
            costs = []
            for k in range(args.puts):
                started = time.perf_counter()
                client.write(f"TCS:{pv}", values[k % 2], notify=True, timeout=10.0,
                             repeater=False)
                costs.append(time.perf_counter() - started)
            figures[f"put {pv}"] = (statistics.median(costs), max(costs))
        stamps = []
        while len(stamps) < 12:
            stamp = read("TCS:TC:IN1").metadata.timestamp
            if not stamps or stamp != stamps[-1]:
                stamps.append(stamp)
            time.sleep(0.02)
        figures["IN1 reading period"] = statistics.median(
            b - a for a, b in zip(stamps, stamps[1:], strict=False))
        emulators.kill()
        emulators.wait()
        killed = time.perf_counter()
        while getattr(getattr(read("TCS:TC:IN1"), "metadata", None), "status",
                      None) != AlarmStatus.COMM:
            time.sleep(0.02)
        figures["kill to COMM alarm"] = time.perf_counter() - killed
        emulators = start_emulators()
        back = time.perf_counter()
        while (getattr(read("TCS:TC:Connected_RBV"), "data", [0]))[0] != 1:
            time.sleep(0.02)
        figures["emulator back to connected"] = time.perf_counter() - back
        for name, figure in figures.items():
            text = (f"median {figure[0]:.3f} s, max {figure[1]:.3f} s"
                    if isinstance(figure, tuple) else f"{figure:.3f} s")
            print(f"{name:28s} {text}")
        print(json.dumps(figures))
    finally:
        bridge.terminate()
        bridge.wait(20)
        emulators.terminate()
        emulators.wait(10)


if __name__ == "__main__":
    main()
