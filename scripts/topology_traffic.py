"""What the core broker carries, flat against bridged + hierarchical (issue #16, point 5):
`up` with 3 sites x 2 gateways (30 devices, 1,000 readings/s), run for SECONDS with a
subscriber to every fleetlearn topic on the core (flat: the one broker); messages and bytes a
second it receives, then the final model's weight error against the fleet's truth.

    .venv/bin/python scripts/topology_traffic.py [SECONDS]

docs/deployment.md gives the figures.
"""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from broker.client import Node
from fleetlearn.deploy.bridged import BridgedDeployment
from fleetlearn.deploy.settings import UpSettings
from fleetlearn.deploy.up import LocalDeployment


def run(topology: str, seconds: float) -> dict:
    kind = BridgedDeployment if topology == "bridged" else LocalDeployment
    logs = Path(tempfile.mkdtemp(prefix=f"topology-{topology}-"))
    dep = kind(UpSettings(topology=topology, sites=3, gateways=6, devices=30, rate=1000.0,
                          duration=None, log_dir=logs))
    seen = [0, 0]

    def count(topic: str, payload: bytes) -> None:
        seen[0] += 1
        seen[1] += len(topic) + len(payload)

    try:
        dep.start()
        core = Node("topology-count", dep.address, subscriptions=[("fleet/#", 1)],
                    handler=count)
        core.connect(timeout=5)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            dep.monitor.poll(0.02)
            core.poll(0.0)
        core.close(flush_timeout=2)
        dep.interrupted = True  # drain with the short bounds of a Ctrl-C
        dep.drain()
        report = dep.report()
    finally:
        dep.stop_all()
        shutil.rmtree(logs, ignore_errors=True)
    return {"topology": topology, "messages_per_s": round(seen[0] / seconds, 1),
            "bytes_per_s": round(seen[1] / seconds), "readings": report["readings"]["published"],
            "learned": report["readings"]["learned"],
            "weight_error": (report.get("model") or {}).get("weight_error")}


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    for topology in ("flat", "bridged"):
        print(json.dumps(run(topology, seconds)))
