"""What the aggregator tells: one log line a model, its counters, and the fleet's federated
metrics.

>>> federated_metrics({"gw-0": {"n": 10, "mae": 1.0}, "gw-1": {"n": 30, "mae": 3.0}})
{'mae': 2.5, 'n': 40}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from broker.messages import Model

log = logging.getLogger("learners.aggregator")  # the aggregator's own lines


def log_model(node_id: str, model: Model) -> None:
    """One INFO line a model; a drift reaction or a rollback (from its notes) says so."""
    extra = {"node": node_id, "version": model.version}
    log.info("%s: model v%d broadcast: %d samples from %s", node_id, model.version,
             model.n, ", ".join(model.contributors), extra=extra)
    drift, rollback = model.notes.get("drift"), model.notes.get("rollback")
    if drift:
        log.info("%s: drift flagged by %s: model v%d reacts with policy %s", node_id,
                 ", ".join(drift["learners"]), model.version, drift["policy"], extra=extra)
    if rollback:
        log.warning("%s: model v%d rolls back to v%s: %s", node_id, model.version,
                    rollback.get("to_version"), rollback.get("reason"), extra=extra)


def federated_metrics(learner_metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """Sample-weighted mean of the learners' latest prequential metrics (as they claim them:
    for display, never for a decision)."""
    rows = [m for m in learner_metrics.values() if m.get("n", 0) > 0]
    total = sum(m["n"] for m in rows)
    if not total:
        return {}
    keys = {k for m in rows for k in m} - {"n", "recent_loss", "recent_n"}
    out = {k: sum(m.get(k, 0.0) * m["n"] for m in rows) / total for k in sorted(keys)}
    out["n"] = total
    return out


def aggregator_counters(fed: Any, accepted: int, refused: Mapping[str, int], checkpointed: int,
                        checkpoint_errors: int, learner_metrics: dict[str, dict[str, float]],
                        broadcast: int = 0) -> dict:
    """The aggregator's metrics message: its federation's state and what it counted."""
    return {
        "model_version": fed.version, "accepted": accepted, "refused": dict(refused),
        "model_ts": fed.model.ts if fed.model else None, "models_broadcast": broadcast,
        "pending": len(fed.strategy.pending), "strategy": fed.strategy.name,
        "quorum": fed.quorum(), "round_timeout": fed.strategy.round_timeout,
        "learners": sorted(fed.learners), "offline": sorted(fed.offline & fed.learners),
        "rollbacks": fed.rollbacks, "checkpoint_version": checkpointed,
        "checkpoint_errors": checkpoint_errors,
        "samples": fed.model.n if fed.model else 0,
        "step": fed.model.notes.get("step") if fed.model else None,  # lr = "auto"
        "federated": federated_metrics(learner_metrics),
    }
