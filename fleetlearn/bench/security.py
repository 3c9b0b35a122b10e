"""Security: what TLS and signatures cost, each against plain in one run, on one mosquitto with
a plain and a TLS listener (a throwaway CA, :mod:`fleetlearn.bench.tls`). The issue's three
goals (#13, Performance), each row saying whether it held:

- ingest: readings per second one gateway takes in from the same backlog over each listener
  (:mod:`.ingest`'s measurement), alternated, the best of ``repeats`` each; goal: TLS >= 0.8x
  plain. (Readings are not signed: TLS is all that changes.) Beside it, the CPU the gateway and
  the broker spent a reading (``cpu_us``, the least of ``repeats``), and ``cpu_ratio``: plain's
  CPU a reading over TLS's, what the rate ratio would be if CPU alone set the pace.
- sync: p50 / p99 of the sync latency (:mod:`.sync`'s measurement) at ``learners`` learners,
  plain, TLS, and TLS with signatures (the aggregator signs every model and checks every update,
  every learner signs its updates and checks every model, against a trust file made for the
  run: :func:`.signing.fleet_keys`); the rounds are split in ``repeats`` blocks, the variants
  alternated block by block so that a busy minute falls on all of them; goal: p99 of TLS with
  signatures <= 2x plain.
- signature: verifying one model's signature against the gateway's adoption of it
  (:func:`.signing.bench_signature_cost`); goal: < 5 %.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from broker.address import BrokerAddress
from fleetlearn.bench.harness import Backlog, Progress, run_backlog
from fleetlearn.bench.ingest import _rate
from fleetlearn.bench.measure import percentile
from fleetlearn.bench.signing import bench_signature_cost, fleet_keys
from fleetlearn.bench.sync import sync_latency
from fleetlearn.bench.tls import TlsMosquitto

#: (QoS, readings per message) of the ingest runs.
INGEST = ((1, 1), (1, 20))
#: The goals: ingest ratio at least, sync p99 ratio at most.
INGEST_GOAL, SYNC_GOAL = 0.8, 2.0


def variants(plain: BrokerAddress, tls: BrokerAddress, keys: Path | None
             ) -> list[tuple[str, BrokerAddress, Path | None]]:
    """What is measured against plain: TLS, and (with ``keys``) TLS with signatures."""
    runs = [("plain", plain, None), ("TLS", tls, None)]
    return runs + ([("TLS + signatures", tls, keys)] if keys is not None else [])


def blocks(rounds: int, repeats: int) -> list[int]:
    """``rounds`` split into at most ``repeats`` blocks.

    >>> blocks(50, 3), blocks(2, 3)
    ([17, 17, 16], [1, 1])
    """
    parts = min(rounds, repeats)
    return [rounds // parts + (1 if i < rounds % parts else 0) for i in range(parts)]


def _met(held: bool) -> str:
    return "met" if held else "not met"


def _ingest(broker: TlsMosquitto, n: int, batch_n: int, repeats: int,
            progress: Progress | None) -> list[dict[str, Any]]:
    """Readings/s (best of ``repeats``) and CPU µs a reading, the gateway's and the broker's
    (least of ``repeats``: a cost, which a busy machine inflates less than it slows a rate)."""
    rows = []
    runs = variants(broker.plain_address(), broker.address(), None)
    assert broker.process is not None
    for qos, batch in INGEST:
        readings = n if batch == 1 else batch_n
        backlog = Backlog.build(readings, batch)
        best = dict.fromkeys((name for name, _, _ in runs), 0.0)
        cpu = dict.fromkeys((name for name, _, _ in runs), float("inf"))
        for r in range(repeats):
            for name, address, _ in runs:
                if progress:
                    progress(f"security: ingest {batch} per message, {name} {r + 1}/{repeats}")
                results = run_backlog(address, backlog, qos, [("gateway", {"n": readings})],
                                      broker_pid=broker.process.pid)
                best[name] = max(best[name], _rate(results, readings))
                used = sum(x["cpu_s"] for x in results) + results[0]["broker_cpu_s"]
                cpu[name] = min(cpu[name], used / readings * 1e6)
        for name, _, _ in runs[1:]:
            ratio = best[name] / best["plain"]
            rows.append({"scenario": "security: ingest",
                         "stream": f"ingest, QoS {qos}, {batch} per message: {name}",
                         "readings": readings, "baseline": f"plain (goal: ratio >= {INGEST_GOAL})",
                         "baseline_per_s": round(best["plain"]), "per_s": round(best[name]),
                         "ratio": round(ratio, 3), "goal": _met(ratio >= INGEST_GOAL),
                         "baseline_cpu_us": round(cpu["plain"], 1),
                         "cpu_us": round(cpu[name], 1),
                         "cpu_ratio": round(cpu["plain"] / cpu[name], 3)})
    return rows


def _sync(broker: TlsMosquitto, learners: int, rounds: int, repeats: int, keys: Path,
          progress: Progress | None) -> list[dict[str, Any]]:
    runs = variants(broker.plain_address(), broker.address(), keys)
    ms: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    parts = blocks(rounds, repeats)
    for b, count in enumerate(parts):
        for name, address, signed in runs:
            if progress:
                progress(f"security: sync, {learners} learners, {name}, block {b + 1}/"
                         f"{len(parts)}")
            ms[name] += [s * 1000 for s in sync_latency(address, learners, count, keys=signed)]
    base = percentile(ms["plain"], 99)
    rows = []
    for name, _, _ in runs[1:]:
        ratio = percentile(ms[name], 99) / base
        rows.append({"scenario": "security: sync", "stream": f"sync, {learners} learners: {name}",
                     "rounds": rounds, "baseline": f"plain (goal: p99 ratio <= {SYNC_GOAL:g})",
                     "baseline_p50_ms": round(percentile(ms["plain"], 50), 2),
                     "baseline_p99_ms": round(base, 2),
                     "p50_ms": round(percentile(ms[name], 50), 2),
                     "p99_ms": round(percentile(ms[name], 99), 2),
                     "ratio": round(ratio, 3), "goal": _met(ratio <= SYNC_GOAL)})
    return rows


def bench_security(n: int = 40_000, batch_n: int = 200_000, learners: int = 8,
                   rounds: int = 50, repeats: int = 3, count: int = 2000,
                   progress: Progress | None = None, **_: Any) -> list[dict[str, Any]]:
    """Ingest (plain, TLS), sync latency (plain, TLS, TLS + signatures) and the cost of a model's
    signature: the whole Performance section of issue #13 in one run."""
    with TlsMosquitto(plain=True) as broker, \
            tempfile.TemporaryDirectory(prefix="fleetlearn-keys-") as keys:
        fleet_keys(Path(keys), [f"learner-{i}" for i in range(learners)])
        rows = _ingest(broker, n, batch_n, repeats, progress)
        rows += _sync(broker, learners, rounds, repeats, Path(keys), progress)
    if progress:
        progress("security: a model's signature against its adoption")
    return rows + bench_signature_cost(count=count, repeats=repeats,
                                       scenario="security: signature")
