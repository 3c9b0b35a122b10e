"""One evaluation: a replay plan and a task in, every strategy's figures out.

The gateways are the ones `up --gateways K` would start: the replay's devices dealt out in
order of their first reading (:meth:`fleetlearn.deploy.settings.UpSettings.partitions`).

>>> from broker.messages import Reading
>>> from devices.replay_plan import ReplayPlan
>>> from gateway.features import FeatureSpec
>>> readings = [Reading(f"d{i % 2}", i // 2, float(i), {"a": float(i % 7), "y": 2.0 * (i % 7)})
...             for i in range(400)]
>>> plan = ReplayPlan("s0", readings, ("a", "y"), {})
>>> result = evaluate(plan, EvaluateSettings(FeatureSpec(("a",), "y"), gateways=2))
>>> sorted(result["strategies"]), result["samples"], result["gateways"]
(['central', 'federated', 'local', 'persistence', 'personalised'], 400, {'gw-0': ['d0'], \
'gw-1': ['d1']})
>>> result["strategies"]["central"]["pooled"]["r2"] > 0.99
True
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from devices.replay_plan import ReplayPlan
from fleetlearn.deploy.settings import UpSettings
from fleetlearn.evaluate.samples import clean_samples
from fleetlearn.evaluate.settings import EvaluateSettings
from fleetlearn.evaluate.strategies import (
    central,
    federated,
    local,
    persistence,
    personalised,
)
from fleetlearn.evaluate.table import figures
from gateway.partition import Partition
from learners.imbalance import parse_threshold
from learners.personal import check_mode


def assign(plan: ReplayPlan, gateways: int) -> tuple[list[list[str]], dict[str, int]]:
    """Each gateway's devices, and each device's gateway, as `up` deals them out."""
    devices = list(plan.devices)
    parts = [Partition.parse(p) for p in UpSettings(gateways=gateways).partitions(devices)]
    owner = {d: next(g for g, p in enumerate(parts) if p.owns(plan.site, d)) for d in devices}
    return [[d for d in devices if owner[d] == g] for g in range(gateways)], owner


def evaluate(plan: ReplayPlan, settings: EvaluateSettings) -> dict[str, Any]:
    """Every strategy on the plan's readings, cleaned once; figures and what was measured."""
    started = time.perf_counter()
    members, owner = assign(plan, settings.gateways)
    samples = clean_samples(plan.readings, plan.site, settings.spec, settings.cleaning,
                            settings.kind)
    if not samples.scored.any():
        reasons = ", ".join(f"{why} {n:,}" for why, n in samples.rejected.most_common())
        raise ValueError(f"of {len(plan.readings):,} readings, {len(samples):,} admitted: "
                         f"too few to evaluate (refused: {reasons or 'none'})")
    k = settings.gateways
    gateway = np.array([owner[samples.devices[d]] for d in samples.device.tolist()], np.int64)
    X, y, make = samples.X, samples.y, settings.learner
    fed, models, refused, steps = federated(X, y, gateway, k, make, settings.sync_every,
                                     settings.spec.target)
    predictions = {"persistence": persistence(y, samples.device),
                   "local": local(X, y, gateway, k, make),
                   "central": central(X, y, make), "federated": fed}
    mode = check_mode(settings.personalize)
    personal_steps: dict[str, float] = {}
    if mode != "none":
        predictions["personalised"], personal_steps = personalised(
            X, y, gateway, k, settings.model, fed, mode, plan.site, samples.device,
            samples.devices, settings.search)
    table = figures(settings.kind, predictions, y, gateway, k, samples.scored,
                    parse_threshold(settings.threshold))
    return {"task": {"features": list(settings.spec.features), "target": settings.spec.target},
            "kind": settings.kind, "personalize": mode, "readings": len(plan.readings),
            "samples": len(samples),
            "scored": int(samples.scored.sum()), "rejected": dict(samples.rejected),
            "gateways": {f"gw-{g}": m for g, m in enumerate(members)},
            "sync_every": settings.sync_every, "models": models,
            "lr": settings.lr, "federated_lr": steps, "personal_lr": personal_steps or None,
            "updates_refused": dict(refused),
            "seconds": round(time.perf_counter() - started, 3), "strategies": table}


__all__ = ["EvaluateSettings", "assign", "evaluate"]
