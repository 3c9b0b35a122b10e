"""The ``signing`` scenario: what verifying one model's signature costs a gateway, against
what adopting that model costs it (decode + :meth:`~learners.local.LocalLearner.adopt`), for
the simulated task's model (3 features) and a wider one. One core, no broker.

Both sides run over the same pre-signed models of rising versions (each adopt takes a newer
one), the best of ``repeats`` runs each; ``share`` is verify / (verify + decode + adopt), the
part of a signed model's handling that is the signature.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from broker.messages import LinearParams, Model, Scaler
from broker.model_codec import decode_model, encode_model
from broker.signing import PrivateKey, TrustedKey, TrustSet, sign, verify
from learners.linear import LinearModel
from learners.local import LocalLearner
from learners.optim import make_optimizer


def _models(features: int, count: int, key: PrivateKey) -> list[bytes]:
    names = tuple(f"f{i}" for i in range(features))
    rng = np.random.default_rng(1)
    return [sign(encode_model(Model(
        v, time.time(), 100 * v, ("gw-0", "gw-1"), "y",
        LinearParams(names, rng.normal(size=features), 0.5),
        Scaler(100 * v, rng.normal(size=features + 1), rng.random(features + 1)),
        notes={"strategy": "sync", "merge": "mean", "staleness": {"gw-0": 0, "gw-1": 0}})),
        key, "model") for v in range(1, count + 1)]


def _best_us(run, count: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def bench_signature_cost(features: tuple[int, ...] = (3, 64), count: int = 2000,
                         repeats: int = 3, **_: Any) -> list[dict[str, Any]]:
    """Microseconds per model to verify its signature, and to decode and adopt it."""
    key = PrivateKey.generate()
    trust = TrustSet([TrustedKey(key.kid, "aggregator", "aggregator", key.public)])
    rows = []
    for width in features:
        payloads = _models(width, count, key)
        bodies = [verify(p, trust, "model")[0] for p in payloads]
        names = decode_model(bodies[0]).params.features

        def verify_all(payloads: list[bytes] = payloads) -> None:
            for p in payloads:
                verify(p, trust, "model")

        def adopt_all(names: tuple[str, ...] = names, bodies: list[bytes] = bodies) -> None:
            local = LocalLearner(LinearModel(names, "regression",
                                             make_optimizer("adagrad", None)))
            for body in bodies:
                local.adopt(decode_model(body))

        verify_us = _best_us(verify_all, count, repeats)
        adopt_us = _best_us(adopt_all, count, repeats)
        rows.append({"scenario": "signing", "stream": f"model of {width} features",
                     "bytes": len(payloads[0]), "verify_us": round(verify_us, 1),
                     "decode_adopt_us": round(adopt_us, 1),
                     "ratio": round(verify_us / adopt_us, 2),
                     "share": f"{verify_us / (verify_us + adopt_us):.0%}"})
    return rows
