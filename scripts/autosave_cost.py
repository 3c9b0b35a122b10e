"""What Mosquitto's autosave costs: the broker's CPU seconds while N QoS 1 messages of 1 KiB
(a batch of ~20 readings each) go through it to a kept-session subscriber that is present, or
away (its queue grows), then over 10 s at rest; and the size of the saved database.

    .venv/bin/python scripts/autosave_cost.py [N] [AUTOSAVE_SECONDS ...]

docs/architecture.md (Sessions) gives the figures.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import broker.mosquitto as m
from broker.address import BrokerAddress
from broker.client import Node
from broker.client_factory import Session


def cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid``."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def run(autosave: int, absent: bool, n: int, size: int = 1024) -> dict:
    m.AUTOSAVE_INTERVAL = autosave
    b = m.MosquittoBroker(data_dir=Path(tempfile.mkdtemp())).start()
    addr = BrokerAddress(port=b.port)
    got = [0]
    sub = Node("sub", addr, subscriptions=[("t/#", 1)], session=Session("fl-sub-x"),
               handler=lambda t, p: got.__setitem__(0, got[0] + 1))
    sub.connect()
    if absent:
        sub.close()
    pub = Node("pub", addr)
    pub.connect()
    payload = b"x" * size
    c0, t0 = cpu(b.process.pid), time.monotonic()
    for i in range(n):
        pub.publish("t/a", payload, qos=1)
        if i % 100 == 0:
            pub.pump(0)
            if not absent:
                sub.poll(0)
    while pub.unacked:
        pub.pump(0.01)
        if not absent:
            sub.poll(0)
    while not absent and got[0] < n:
        sub.poll(0.01)
    # then 10 s of the broker at rest with what it holds (what autosave costs when idle)
    t1, c1 = time.monotonic(), cpu(b.process.pid)
    time.sleep(10)
    c2 = cpu(b.process.pid)
    db = b.data_dir / "mosquitto.db"
    dbsize = db.stat().st_size if db.exists() else 0
    b.cleanup()
    return {"autosave": autosave, "absent": absent, "n": n, "msgs_per_s": round(n / (t1 - t0)),
            "broker_cpu_busy": round(c1 - c0, 2), "broker_cpu_idle_10s": round(c2 - c1, 2),
            "db_bytes": dbsize}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for absent in (False, True):
        for autosave in [int(a) for a in sys.argv[2:]] or [1800, 5, 1]:
            print(run(autosave, absent, n), flush=True)
