"""Security: what TLS costs, plain and TLS side by side in one run, on one mosquitto with a
plain and a TLS listener (a throwaway CA, :mod:`fleetlearn.bench.tls`).

- ingest: readings per second one gateway takes in from the same backlog over each listener
  (:mod:`.ingest`'s measurement), alternated, the best of ``repeats`` each; goal: TLS >= 0.8x
  plain.
- sync: p50 / p99 of the sync latency (:mod:`.sync`'s measurement) at 8 learners, every
  learner and the aggregator over each listener; goal: p99 with TLS <= 2x plain.

``signed`` is the hook for signed models and updates (issue #13, point 3): a third variant,
TLS with signatures, measured the same way once the aggregator and the gateways sign.
"""

from __future__ import annotations

from typing import Any

from broker.address import BrokerAddress
from fleetlearn.bench.harness import Backlog, Progress, run_backlog
from fleetlearn.bench.ingest import _rate
from fleetlearn.bench.measure import percentile
from fleetlearn.bench.sync import sync_latency
from fleetlearn.bench.tls import TlsMosquitto

#: (QoS, readings per message) of the ingest runs.
INGEST = ((1, 1), (1, 20))


def variants(plain: BrokerAddress, tls: BrokerAddress, signed: bool
             ) -> list[tuple[str, BrokerAddress]]:
    """What is measured against plain: TLS, and (``signed``) TLS with signatures."""
    if signed:  # the signing work plugs in here: a variant whose nodes sign and verify
        raise NotImplementedError("signed models and updates are not built yet")
    return [("plain", plain), ("TLS", tls)]


def bench_security(n: int = 40_000, batch_n: int = 200_000, learners: int = 8,
                   rounds: int = 50, repeats: int = 3, signed: bool = False,
                   progress: Progress | None = None, **_: Any) -> list[dict[str, Any]]:
    """Ingest and sync latency, plain against TLS (and signed TLS, when there is signing)."""
    rows: list[dict[str, Any]] = []
    with TlsMosquitto(plain=True) as broker:
        runs = variants(broker.plain_address(), broker.address(), signed)
        for qos, batch in INGEST:
            readings = n if batch == 1 else batch_n
            backlog = Backlog.build(readings, batch)
            best = dict.fromkeys((name for name, _ in runs), 0.0)
            for r in range(repeats):
                for name, address in runs:
                    if progress:
                        progress(f"security: ingest {batch} per message, {name} "
                                 f"{r + 1}/{repeats}")
                    results = run_backlog(address, backlog, qos, [("gateway", {"n": readings})])
                    best[name] = max(best[name], _rate(results, readings))
            for name, _ in runs[1:]:
                rows.append({"scenario": "security",
                             "stream": f"ingest, QoS {qos}, {batch} per message: {name}",
                             "readings": readings, "baseline": "plain (goal: ratio >= 0.8)",
                             "baseline_per_s": round(best["plain"]), "per_s": round(best[name]),
                             "ratio": round(best[name] / best["plain"], 3)})
        ms: dict[str, list[float]] = {}
        for name, address in runs:
            if progress:
                progress(f"security: sync, {learners} learners, {rounds} rounds, {name}")
            ms[name] = [s * 1000 for s in sync_latency(address, learners, rounds)]
        base = percentile(ms["plain"], 99)
        for name, _ in runs[1:]:
            rows.append({"scenario": "security",
                         "stream": f"sync, {learners} learners: {name}", "rounds": rounds,
                         "baseline": "plain (goal: p99 ratio <= 2)",
                         "baseline_p50_ms": round(percentile(ms["plain"], 50), 2),
                         "baseline_p99_ms": round(base, 2),
                         "p50_ms": round(percentile(ms[name], 50), 2),
                         "p99_ms": round(percentile(ms[name], 99), 2),
                         "ratio": round(percentile(ms[name], 99) / base, 3)})
    return rows
