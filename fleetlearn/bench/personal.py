"""The personalised learner's cost per reading against the global one (#15.1), on the weather
stream, learned in blocks as a gateway learns them: the global model's predict-then-learn
alone, then with the personal parts (:mod:`learners.personal`, one per station: ``device``
mode) on top, in process CPU time, the variants in turn. Three ratios: of a gateway's whole
path per reading (``gateway_cost_ratio``: payload decoded, judged, cleaned and featured by
:class:`~gateway.pipeline.ReadingPipeline`, then learned), of the learning core as the
scenario defines it (``cost_ratio``: features built per reading, scaling, predict, learn) and
of the learning step alone (``step_cost_ratio``: features built beforehand, the largest share
the parts can take).

>>> from fleetlearn.bench.learning import weather_samples
>>> samples, spec = weather_samples()
>>> row = bench_personal(samples[:600], spec, repeats=1)
>>> sorted(k for k in row if k.endswith("cost_ratio")), row["r2_personalised"] > 0.5
(['cost_ratio', 'gateway_cost_ratio', 'step_cost_ratio'], True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

#: Readings per block (a gateway's block is a turn's readings: up to 4,096).
BLOCK = 256


def interleaved(runs: dict[Any, Callable[[], int]], repeats: int) -> dict[Any, float]:
    """Items per CPU second of each run, the best of ``repeats``, the runs taken in turn
    (process CPU time and turns: on a shared machine neighbours slow neither only one).

    >>> sorted(interleaved({"a": lambda: 10, "b": lambda: 20}, 2))
    ['a', 'b']
    """
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.process_time()
            n = run()
            best[key] = max(best[key], n / max(time.process_time() - start, 1e-9))
    return best


def bench_personal(samples: list[tuple[dict[str, float], float, str]], spec: Any,
                   repeats: int = 3) -> dict[str, Any]:
    """One row: readings/s of the global learner and of global + personal parts, the cost
    ratios, and the prequential R² of both (the parts here sit on one central model)."""
    from fleetlearn.evaluate.scores import score
    from gateway.features import FeatureBuilder
    from learners.linear import LinearModel
    from learners.personal import PersonalParts, key_of

    keys = [key_of("device", "s0", device) for _, _, device in samples]
    starts = range(0, len(samples), BLOCK)

    def features() -> tuple[np.ndarray, np.ndarray]:
        build = FeatureBuilder(spec)
        rows = [build(values, ts, device, "s0") for values, ts, device in samples]
        return np.array([x for x, _ in rows]), np.array([v for _, v in rows])

    X, y = features()

    def run(personal: bool, out: np.ndarray, built: bool = True) -> int:
        Xs, ys = (X, y) if built else features()
        model = LinearModel(spec.features)
        parts = PersonalParts(lambda: LinearModel(spec.features)) if personal else None
        for i in starts:
            b = slice(i, i + BLOCK)
            p = model.predict_then_learn(Xs[b], ys[b])
            out[b] = parts.learn(keys[b], Xs[b], ys[b], p) if parts is not None else p
        return len(ys)

    from broker.messages import Reading
    from broker.reading_codec import encode_reading
    from gateway.cleaning import ChannelPolicy, CleaningConfig
    from gateway.outcomes import ADMITTED
    from gateway.pipeline import ReadingPipeline

    payloads = [(device, encode_reading(Reading(device, i, ts, values)), ts)
                for i, (values, ts, device) in enumerate(samples)]
    cleaning = CleaningConfig(max_age=float("inf"), max_skew=float("inf"),
                              policy=ChannelPolicy(max_age=10_800, z=25))

    def gateway(personal: bool) -> int:
        pipe = ReadingPipeline(spec, cleaning)
        model = LinearModel(spec.features)
        parts = PersonalParts(lambda: LinearModel(spec.features)) if personal else None
        names = pipe.devices_table.names
        for i in starts:
            for device, payload, ts in payloads[i:i + BLOCK]:
                pipe.take(device, payload, ts, "s0")
            block = pipe.flush()
            p = model.predict_then_learn(block.X, block.y)
            if parts is not None:
                dev = block.rows.dev[block.rows.code == ADMITTED].tolist()
                parts.learn([("s0", names[d]) for d in dev], block.X, block.y, p)
        return len(payloads)

    plain, mixed = np.empty(len(y)), np.empty(len(y))
    gateway(True)
    run(True, mixed)  # warm the compiled kernels before timing
    rates = interleaved({
        **{(personal, built): lambda p=personal, b=built: run(p, mixed if p else plain, b)
           for personal in (False, True) for built in (False, True)},
        **{("gateway", personal): lambda p=personal: gateway(p) for personal in (False, True)},
    }, repeats)
    whole = rates[("gateway", False)] / rates[("gateway", True)]
    core, step = rates[(False, False)] / rates[(True, False)], rates[(False, True)] / rates[
        (True, True)]
    return {"scenario": "learning", "stream": f"weather, {len(y):,} readings, blocks of "
            f"{BLOCK}", "baseline": "global learner alone (same blocks)",
            "baseline_per_s": round(rates[(False, False)]), "per_s": round(rates[(True, False)]),
            "ratio": round(1.0 / core, 3), "gateway_cost_ratio": round(whole, 3),
            "cost_ratio": round(core, 3),
            "step_cost_ratio": round(step, 3),
            "us_per_reading": round(1e6 / rates[(True, False)], 2),
            "personalize": "device (one part per station)",
            "r2_global": round(score("regression", y[1:], plain[1:])["r2"], 4),
            "r2_personalised": round(score("regression", y[1:], mixed[1:])["r2"], 4)}
