"""`fleetlearn bench`: measured side by side, as ratios against a baseline of the same run.

Scenarios so far:

- ``cleaning``: the gateway's validation + cleaning (:class:`~gateway.pipeline.ReadingPipeline`)
  on pre-encoded readings of the simulated fleet, against the baseline of only decoding them
  with orjson; on a clean stream and with every fault at 5 %. One core, no broker.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson

from devices.faults import FaultInjector, FaultRates
from devices.simulator import FleetSimulator
from gateway.features import FeatureSpec
from gateway.pipeline import CleaningConfig, ReadingPipeline


def _best_rate(run: Callable[[], int], repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs (the least disturbed by neighbours)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        best = max(best, n / (time.perf_counter() - start))
    return best


def _stream(n: int, faults: str, now: float) -> tuple[list[tuple[str, bytes]], FleetSimulator]:
    sim = FleetSimulator(100, 4, seed=1)
    injector = FaultInjector(sim, FaultRates.parse(faults), seed=1)
    messages = [m for i in range(n) for m in injector.next(i % 100, now)] + injector.drain()
    return [(m.device, m.payload) for m in messages], sim


def bench_cleaning(n: int = 50_000, repeats: int = 3) -> list[dict[str, Any]]:
    """Readings/s of decode-only against decode + validate + clean + features."""
    rows = []
    now = time.time()
    for label, faults in (("clean stream", ""), ("all faults at 5 %", "all=0.05")):
        messages, sim = _stream(n, faults, now)
        spec = FeatureSpec(sim.truth.features, sim.truth.target)
        allow = frozenset(d.device for d in sim.devices)

        def decode_only(messages=messages) -> int:
            for _, payload in messages:
                with contextlib.suppress(orjson.JSONDecodeError):
                    orjson.loads(payload)
            return len(messages)

        def pipeline(messages=messages, spec=spec, allow=allow) -> int:
            pipe = ReadingPipeline(spec, CleaningConfig(allowlist=allow))
            for device, payload in messages:
                pipe.admit(device, payload, now)
            return pipe.accounting.total

        base = _best_rate(decode_only, repeats)
        rate = _best_rate(pipeline, repeats)
        rows.append({"scenario": "cleaning", "stream": label, "messages": len(messages),
                     "baseline": "orjson.loads only", "baseline_per_s": round(base),
                     "per_s": round(rate), "ratio": round(rate / base, 4),
                     "us_per_reading": round(1e6 / rate, 2)})
    return rows


SCENARIOS: dict[str, Callable[..., list[dict[str, Any]]]] = {"cleaning": bench_cleaning}
