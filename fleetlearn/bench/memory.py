"""Memory: every node's RSS (VmRSS from /proc) after N readings of a whole local deployment
(`fleetlearn up`: fleet, 2 gateways, aggregator, predictor), against a raw paho subscriber
after the same readings; and, with a soak, each node's RSS slope (least squares, MB/h).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from fleetlearn.bench.harness import Backlog, Progress, own_broker, run_backlog
from fleetlearn.bench.measure import rss_mib, slope
from fleetlearn.deploy.up import LocalDeployment, UpSettings

BATCH = 20


def deployment_rss(readings: int, rate: float, batch: int, progress: Progress | None = None,
                   label: str = "") -> dict[str, list[tuple[float, float]]]:
    """Run `up` until ``readings`` are published at ``rate``; (seconds, RSS MiB) per node,
    sampled every half second while the fleet runs."""
    settings = UpSettings(devices=100, sites=2, gateways=2, rate=rate, batch=batch, qos=1,
                          duration=readings / rate)
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    deployment = LocalDeployment(settings)

    def sample(state: Any, elapsed: float) -> None:
        pids = {c.name: c.pid for c in deployment.children if c.running}
        if deployment.own_broker is not None and deployment.own_broker.running:
            pids["mosquitto"] = deployment.own_broker.process.pid
        for name, pid in pids.items():
            try:
                rss = rss_mib(pid)
            except OSError:
                continue  # it just ended
            if rss > 0:  # 0 while a process that is ending gives its memory back
                samples[name].append((elapsed, rss))
        if progress:
            published = state.readings().get("published", 0)
            progress(f"memory{label}: {elapsed:.0f}/{settings.duration:.0f} s, "
                     f"{published:,} readings published")

    deployment.progress = sample
    try:
        deployment.start()
        deployment.watch()
        # once more now that every reading is out: the progress samples come every half
        # second, so a short run's only one could be a node's first moments after exec
        sample(deployment.state, time.monotonic() - deployment.fleet_started)
        deployment.drain()
    finally:
        deployment.stop_all()
    result = deployment.report()
    if result["readings"]["unaccounted"]:
        raise RuntimeError(f"memory run: {result['readings']['unaccounted']} readings were not "
                           "accounted for")
    return samples


def bench_memory(n: int = 200_000, soak: float = 0.0, rate: float = 10_000.0,
                 soak_rate: float = 1_000.0, progress: Progress | None = None, **_: Any
                 ) -> list[dict[str, Any]]:
    """RSS of every node after ``n`` readings; with ``soak`` seconds, each node's RSS slope."""
    if progress:
        progress("memory: raw paho subscriber baseline")
    with own_broker() as address:
        [raw] = run_backlog(address, Backlog.build(n, BATCH), 1, [("raw", {"n": n})])
    samples = deployment_rss(n, rate, BATCH, progress)
    rows = []
    for name in sorted(samples):
        series = samples[name]
        rows.append({"scenario": "memory", "stream": f"{name} after {n:,} readings",
                     "readings": n, "baseline": "raw paho subscriber, same readings",
                     "baseline_mib": round(raw["rss_mib"], 1),
                     "rss_mib": round(series[-1][1], 1),
                     "peak_mib": round(max(v for _, v in series), 1),
                     "ratio": round(series[-1][1] / raw["rss_mib"], 3)})
    if soak > 0:
        soaked = deployment_rss(int(soak * soak_rate), soak_rate, 1, progress, " soak")
        for name in sorted(soaked):
            series = [(t, v) for t, v in soaked[name] if t >= 0.2 * soak]  # past warm-up
            if len(series) < 3:
                continue
            per_s = slope([t for t, _ in series], [v for _, v in series])
            rows.append({"scenario": "memory", "stream": f"{name}, soak {soak:g} s at "
                         f"{soak_rate:g} readings/s", "readings": int(soak * soak_rate),
                         "baseline": "goal: < 5 MB/h",
                         "rss_mib": round(series[-1][1], 1),
                         "slope_mb_per_h": round(per_s * 3600 * 1.048576, 2),
                         "samples": len(series)})
    return rows
