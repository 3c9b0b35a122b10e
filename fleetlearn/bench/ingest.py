"""Ingest: readings per second one gateway takes in (validate + clean + learn), against a raw
paho subscriber that only decodes, fed the same backlog by the same publisher through the same
broker, back to back in the same run; QoS 0 and 1, single readings and batches in either
layout (columns, rows).

Also the scale figures: 1 gateway against 2 on two partitions (sites), and one gateway as the
number of devices grows (throughput, and the memory its per-device state takes).
"""

from __future__ import annotations

import time
from typing import Any

from broker.address import BrokerAddress
from broker.topics import Topics
from devices.simulator import FleetSimulator
from fleetlearn.bench.harness import Backlog, Progress, own_broker, run_backlog
from fleetlearn.bench.measure import rss_mib
from gateway.config import GatewayConfig
from gateway.features import FeatureSpec
from gateway.partition import Partition
from gateway.pipeline import CleaningConfig
from gateway.service import Gateway

#: (QoS, readings per message, layout of a batch: None for single readings)
MODES = ((0, 1, None), (1, 1, None), (0, 20, "columns"), (1, 20, "columns"),
         (0, 20, "rows"), (1, 20, "rows"))


def gateway_config(devices: int = 100, sites: int = 2, seed: int = 1, node_id: str = "gw-bench",
                   partition: str = "all") -> GatewayConfig:
    """The gateway under test: defaults, the simulated fleet's task, its devices as the
    allowlist (the fleet of :meth:`Backlog.build` with the same devices, sites and seed)."""
    sim = FleetSimulator(devices, sites, seed)
    return GatewayConfig(
        node_id=node_id, partition=Partition.parse(partition),
        spec=FeatureSpec(sim.truth.features, sim.truth.target),
        cleaning=CleaningConfig(allowlist=frozenset(d.device for d in sim.devices)))


def gateway_subscriber(conn: Any, address: BrokerAddress, prefix: str, n: int,
                       timeout: float = 120.0, **fleet: Any) -> None:
    """A :class:`Gateway` driven by its own node loop until it has accounted for n readings.
    ``fleet``: :func:`gateway_config`'s arguments."""
    gw = Gateway(gateway_config(**fleet), Topics(prefix), address)
    gw.connect()
    conn.send({"ready": True, "rss_mib": rss_mib()})
    conn.recv()
    start, cpu = time.monotonic(), time.process_time()
    deadline = start + timeout
    accounting = gw.pipeline.accounting
    while accounting.total < n and time.monotonic() < deadline:
        gw.control.poll(0)  # the same turn as Node.run(companions=[control])
        gw.node.poll()
    end, cpu = time.monotonic(), time.process_time() - cpu
    conn.send({"start": start, "end": end, "cpu_s": cpu, "received": accounting.total,
               "learned": gw.learned, "rejected": dict(accounting.rejected),
               "rss_mib": rss_mib(), "devices": gw.pipeline.devices})
    gw.control.close(1.0)
    gw.node.close(1.0)


def _rate(results: list[dict[str, Any]], n: int) -> float:
    """Readings/s of a set of subscribers that shared the backlog: from go to the last done."""
    if sum(r["received"] for r in results) < n:
        got = sum(r["received"] for r in results)
        raise RuntimeError(f"subscribers took in {got} of {n} readings before the deadline")
    return n / (max(r["end"] for r in results) - min(r["go"] for r in results))


def bench_ingest(n: int = 40_000, batch_n: int = 200_000, repeats: int = 2,
                 progress: Progress | None = None, **_: Any) -> list[dict[str, Any]]:
    """Gateway against raw paho, per (QoS, batch, layout) mode; the best of ``repeats`` each."""
    rows = []
    with own_broker() as address:
        for qos, batch, layout in MODES:
            readings = n if batch == 1 else batch_n
            backlog = Backlog.build(readings, batch, layout=layout or "columns")
            stream = f"QoS {qos}, {batch} per message" + (f" in {layout}" if layout else "")
            best = {"raw": 0.0, "gateway": 0.0}
            learned = 0
            for r in range(repeats):
                for kind in ("raw", "gateway"):
                    if progress:
                        progress(f"ingest {stream}: {kind} {r + 1}/{repeats}")
                    results = run_backlog(address, backlog, qos, [(kind, {"n": readings})])
                    best[kind] = max(best[kind], _rate(results, readings))
                    if kind == "gateway":
                        learned = results[0]["learned"]
            rows.append({"scenario": "ingest", "stream": stream,
                         "readings": readings, "baseline": "raw paho + orjson.loads",
                         "baseline_per_s": round(best["raw"]), "per_s": round(best["gateway"]),
                         "ratio": round(best["gateway"] / best["raw"], 3),
                         "learned": learned})
    return rows


def bench_scale(n: int = 200_000, devices: tuple[int, ...] = (100, 1_000, 10_000),
                repeats: int = 3, progress: Progress | None = None, **_: Any
                ) -> list[dict[str, Any]]:
    """1 gateway against 2 on two site partitions, at QoS 1 and at QoS 0 (best of ``repeats``
    each, the two interleaved); then one gateway as devices grow (one run each, QoS 1).
    Batches of 20 in columns (the fleet's default)."""
    rows = []
    batch = 20
    with own_broker() as address:
        backlog = Backlog.build(n, batch, devices=100, sites=2)
        for qos in (1, 0):
            rates = {1: 0.0, 2: 0.0}
            for r in range(repeats):
                for k in (1, 2):
                    if progress:
                        progress(f"scale: {k} gateway(s), QoS {qos}, run {r + 1}/{repeats}")
                    parts = ["all"] if k == 1 else ["sites:s0", "sites:s1"]
                    subs = [("gateway", {"n": n // k, "node_id": f"gw-{i}", "partition": p})
                            for i, p in enumerate(parts)]
                    results = run_backlog(address, backlog, qos, subs)
                    rates[k] = max(rates[k], _rate(results, n))
            rows.append({"scenario": "scale",
                         "stream": f"2 gateways (sites s0, s1) vs 1, QoS {qos}",
                         "readings": n, "baseline": "1 gateway, all sites",
                         "baseline_per_s": round(rates[1]), "per_s": round(rates[2]),
                         "ratio": round(rates[2] / rates[1], 3)})
        qos = 1
        base_rate = None
        for d in devices:
            if progress:
                progress(f"scale: 1 gateway, {d:,} devices")
            m = max(n, 2 * d * batch)  # every device sends at least 2 batches
            backlog = Backlog.build(m, batch, devices=d, sites=2)
            [res] = run_backlog(address, backlog, qos,
                                [("gateway", {"n": m, "devices": d})])
            rate = _rate([res], m)
            base_rate = base_rate or rate
            grown = res["rss_mib"] - res["rss_ready_mib"]
            rows.append({"scenario": "scale", "stream": f"{d:,} devices, 1 gateway",
                         "readings": m, "baseline": f"{devices[0]:,} devices",
                         "baseline_per_s": round(base_rate), "per_s": round(rate),
                         "ratio": round(rate / base_rate, 3),
                         "rss_mib": round(res["rss_mib"], 1),
                         "kib_per_device": round(grown * 1024 / d, 2)})
    return rows
